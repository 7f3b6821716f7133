"""Fleet reference data: grid areas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from v2g.api.deps import GridAreas, platform_of
from v2g.api.inputs import CheckedJsonRoute
from v2g.api.journeys import principal

router = APIRouter(tags=["fleet"], route_class=CheckedJsonRoute)


class GridAreaPublic(BaseModel):
    """A grid area as shown to every signed-in actor (to anyone when V2G_GRID_AREAS_PUBLIC is set)."""

    id: str
    name: str
    price_area: str
    import_limit_kw: float
    export_limit_kw: float
    hosting_capacity_kw: float
    connection_queue_length: int


@router.get("/grid-areas", response_model=list[GridAreaPublic], responses={401: {"description": "sign in first"}})
def list_grid_areas(
    reader: GridAreas, request: Request, authorization: Annotated[str | None, Header()] = None
) -> list[GridAreaPublic]:
    """The DSO grid areas the platform knows, with their limits and connection queue.

    Signed-in actors only, unless the platform is configured to publish them (V2G_GRID_AREAS_PUBLIC).
    """
    if not platform_of(request).settings.grid_areas_public:
        principal(request, authorization)
    areas = reader.grid_areas()
    return [GridAreaPublic.model_validate(a, from_attributes=True) for a in areas]
