"""Service blueprints: the list of shipped blueprints, the JSON export and the HTML swimlane page.

Blueprints are loaded from the ``blueprints_dir`` setting once per application (on the first
request that needs them), never per request. Files that fail validation are left out and logged.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from v2g.api.inputs import CheckedJsonRoute
from v2g.blueprint.catalogue import Catalogue, load_catalogue
from v2g.blueprint.export import export_blueprint
from v2g.blueprint.model import Blueprint
from v2g.blueprint.render import render_html

router = APIRouter(prefix="/blueprints", tags=["blueprints"], route_class=CheckedJsonRoute)
log = structlog.get_logger("v2g.api.blueprints")
_lock = threading.Lock()


class BlueprintSummary(BaseModel):
    """One shipped blueprint."""

    id: str
    name: str
    version: int
    source: str
    file: str
    stages: int
    lanes: int
    items: int
    gates: int
    export_url: str
    render_url: str


class StageOut(BaseModel):
    """A stage of the export contract."""

    id: str
    name: str
    timeline: str


class LaneOut(BaseModel):
    """A lane of the export contract."""

    id: str
    name: str
    layer: str


class ItemOut(BaseModel):
    """An item of the export contract."""

    id: str
    text: str
    mode: str


class CellOut(BaseModel):
    """A cell of the export contract."""

    stage: str
    lane: str
    items: list[ItemOut]


class BlueprintExport(BaseModel):
    """The blueprint export contract."""

    stages: list[StageOut]
    lanes: list[LaneOut]
    cells: list[CellOut]


def catalogue(request: Request) -> Catalogue:
    """The application's blueprint catalogue, loaded once from the ``blueprints_dir`` setting."""
    state = request.app.state
    loaded: Catalogue | None = getattr(state, "blueprint_catalogue", None)
    if loaded is None:
        with _lock:
            loaded = getattr(state, "blueprint_catalogue", None)
            if loaded is None:
                folder = state.platform.settings.blueprints_dir
                loaded = load_catalogue(folder)
                for problem in loaded.problems:
                    log.error("blueprint_rejected", problem=str(problem))
                log.info("blueprints_loaded", folder=str(folder), ids=sorted(loaded.entries))
                state.blueprint_catalogue = loaded
    return loaded


def _get(request: Request, blueprint_id: str) -> Blueprint:
    try:
        return catalogue(request).get(blueprint_id)
    except KeyError:
        known = ", ".join(sorted(catalogue(request).entries)) or "none"
        raise HTTPException(404, f"blueprint_id: unknown blueprint {blueprint_id!r} (known: {known})") from None


@router.get("", response_model=list[BlueprintSummary])
def list_blueprints(request: Request) -> list[BlueprintSummary]:
    """The shipped blueprints with their size and links to the export and the rendered page."""
    out = []
    for bp_id, entry in sorted(catalogue(request).entries.items()):
        bp = entry.blueprint
        out.append(
            BlueprintSummary(
                id=bp_id,
                name=bp.blueprint.name,
                version=bp.blueprint.version,
                source=bp.blueprint.source,
                file=entry.path.name,
                stages=len(bp.stages),
                lanes=len(bp.lanes),
                items=len(bp.items()),
                gates=len(bp.gates),
                export_url=str(request.url_for("get_blueprint", blueprint_id=bp_id).path),
                render_url=str(request.url_for("render_blueprint", blueprint_id=bp_id).path),
            )
        )
    return out


@router.get("/{blueprint_id}", response_model=BlueprintExport)
def get_blueprint(request: Request, blueprint_id: str) -> dict[str, Any]:
    """The blueprint as the JSON export contract (stages, lanes, cells with items)."""
    return export_blueprint(_get(request, blueprint_id))


@router.get("/{blueprint_id}/render", response_class=HTMLResponse)
def render_blueprint(request: Request, blueprint_id: str) -> HTMLResponse:
    """The blueprint as a standalone HTML swimlane page."""
    return HTMLResponse(render_html(_get(request, blueprint_id)))
