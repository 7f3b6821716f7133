"""The aggregator operator's page: fleet status from the operations view (plan vs bids vs delivery per
hour, chargers offline, departures at risk) and the service blueprint with the journeys per stage."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from v2g.blueprint.render import render_html
from v2g.services.markets.access import AGGREGATOR_ROLE
from v2g.web.base import PortalError, Viewer, call, platform_of, render, require_role, viewer

router = APIRouter(prefix="/operator", include_in_schema=False)


def _operator(who: Viewer = Depends(viewer)) -> Viewer:  # noqa: B008 - FastAPI dependency
    require_role(who, AGGREGATOR_ROLE)
    return who


def _hour_rows(status: dict[str, Any]) -> list[dict[str, Any]]:
    """Each plan hour with its planned reserve, the bids offered, the commitments and the delivery verified."""
    delivered: dict[str, list[float]] = defaultdict(list)
    for d in status.get("delivery", []):
        if d["delivered_ratio"] is not None:
            delivered[d["hour_start_at"]].append(d["delivered_ratio"])
    rows = []
    for h in status.get("hours", []):
        ratios = delivered.get(h["hour_start_at"], [])
        rows.append(
            {
                **h,
                "reserve_kw": sum(h["planned_reserve_kw"].values()),
                "offered": sum(h["offered_mw"].values()),
                "committed": sum(h["committed_mw"].values()),
                "delivered": min(ratios) if ratios else None,
            }
        )
    return rows


@router.get("")
def fleet(request: Request, who: Viewer = Depends(_operator)) -> HTMLResponse:  # noqa: B008
    platform = platform_of(request)
    if platform.operations is None:
        raise PortalError(503, "not_found_title", "the platform has no operations view")
    view = platform.operations
    status = call(lambda: view.for_caller(who.principal, platform.journeys))
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    if platform.journeys is not None:
        journeys = platform.journeys
        counts = call(lambda: journeys.stage_counts(who.principal))
        names = {s.id: s.name for s in journeys.blueprint.stages}
    return render(
        request, "operator.html.j2", who=who, ops=status, hours=_hour_rows(status), counts=counts, names=names
    )


@router.get("/blueprint")
def blueprint(request: Request, who: Viewer = Depends(_operator)) -> HTMLResponse:  # noqa: B008
    """The swimlane the blueprint package renders, with the operator's journeys counted per stage."""
    journeys = platform_of(request).journeys
    if journeys is None:
        raise PortalError(503, "not_found_title", "no blueprint loaded")
    counts = call(lambda: journeys.stage_counts(who.principal))
    return HTMLResponse(render_html(journeys.blueprint, counts))
