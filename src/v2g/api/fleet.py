"""Fleet reference data: grid areas."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from v2g.api.deps import GridAreas
from v2g.api.inputs import CheckedJsonRoute

router = APIRouter(tags=["fleet"], route_class=CheckedJsonRoute)


class GridAreaPublic(BaseModel):
    """A grid area as shown to every authenticated actor."""

    id: str
    name: str
    price_area: str
    import_limit_kw: float
    export_limit_kw: float
    hosting_capacity_kw: float
    connection_queue_length: int


@router.get("/grid-areas", response_model=list[GridAreaPublic])
def list_grid_areas(reader: GridAreas) -> list[GridAreaPublic]:
    """The DSO grid areas the platform knows, with their limits and connection queue."""
    areas = reader.grid_areas()
    return [GridAreaPublic.model_validate(a, from_attributes=True) for a in areas]
