"""The DSO's page of its grid areas: hosting capacity against the export committed, the connection
queue of the platform's customers (their feasibility indications) and the V2G sites, as the API's
``/dso/areas`` answers them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from v2g.services.journey.stakeholders import DSO_ROLE
from v2g.web.base import PortalError, Viewer, call, platform_of, render, require_role, viewer

router = APIRouter(prefix="/work", include_in_schema=False)


def _dso(who: Viewer = Depends(viewer)) -> Viewer:  # noqa: B008 - FastAPI dependency
    require_role(who, DSO_ROLE)
    return who


@router.get("/areas")
def areas(request: Request, who: Viewer = Depends(_dso)) -> HTMLResponse:  # noqa: B008
    journeys = platform_of(request).journeys
    if journeys is None:
        raise PortalError(503, "not_found_title", "the platform has no journey service (no blueprint loaded)")
    found = call(lambda: journeys.dso_areas(who.principal))
    stage_names = {s.id: s.name for s in journeys.blueprint.stages}
    return render(request, "dso_areas.html.j2", who=who, areas=found, stage_names=stage_names)
