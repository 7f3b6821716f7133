"""The operator's view over HTTP: plan, bids, commitments, delivery, dispatch and alerts of now.

The aggregator operator sees everything; a BSP sees the market records of its own bidding groups
and the fleet's aggregates only; the TSO sees the market side (bids, commitments, delivery) only.
No other role reads it (403). Per-EV data stays with the operator: see
:mod:`v2g.services.operations.view` for the exact cut.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from v2g.api.deps import Operations
from v2g.api.inputs import CheckedJsonRoute
from v2g.api.journeys import Who
from v2g.services.operations.view import ROLE_AUDIENCE, audience_for_role

router = APIRouter(prefix="/operations", tags=["operations"], route_class=CheckedJsonRoute)


@router.get("")
def get_operations(view: Operations, who: Who) -> dict[str, Any]:
    """The operations status now, cut to what the caller's role may see (``audience`` says which cut)."""
    audience = audience_for_role(who.role)
    if audience is None:
        allowed = ", ".join(sorted(ROLE_AUDIENCE))
        raise HTTPException(403, f"role {who.role!r} may not read the operations view (allowed: {allowed})")
    return view.for_audience(audience, organisation_id=who.organisation_id)
