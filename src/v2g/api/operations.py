"""The operator's view over HTTP: plan, bids, commitments, delivery, dispatch and alerts of now.

The aggregator operator sees the fleet it serves (its customers' EVs, chargers and bidding
groups); a BSP sees the market records of its own bidding groups and the fleet's aggregates only;
the TSO sees the market side (bids, commitments, delivery) only. No other role reads it (403).
Per-EV data stays with the operator: see :mod:`v2g.services.operations.view` for the exact cut.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from v2g.api.deps import Operations
from v2g.api.inputs import CheckedJsonRoute
from v2g.api.journeys import Who
from v2g.services.operations.view import ROLE_AUDIENCE, Audience, ServedFleet, audience_for_role

router = APIRouter(prefix="/operations", tags=["operations"], route_class=CheckedJsonRoute)


@router.get("")
def get_operations(request: Request, view: Operations, who: Who) -> dict[str, Any]:
    """The operations status now, cut to what the caller's role and organisation may see (``audience``
    says which cut; an aggregator sees the EVs, chargers and bidding groups of the customers it serves)."""
    audience = audience_for_role(who.role)
    if audience is None:
        allowed = ", ".join(sorted(ROLE_AUDIENCE))
        raise HTTPException(403, f"role {who.role!r} may not read the operations view (allowed: {allowed})")
    served = None
    if audience is Audience.OPERATOR:
        journeys = request.app.state.platform.journeys
        if journeys is None:
            served = ServedFleet(frozenset(), frozenset())
        else:
            served = ServedFleet(journeys.served_vehicle_ids(who), journeys.served_charger_ids(who))
    return view.for_audience(audience, organisation_id=who.organisation_id, served=served)
