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
from v2g.services.actors.ports import ForbiddenError

router = APIRouter(prefix="/operations", tags=["operations"], route_class=CheckedJsonRoute)


@router.get("")
def get_operations(request: Request, view: Operations, who: Who) -> dict[str, Any]:
    """The operations status now, cut to what the caller's role and organisation may see (``audience``
    says which cut; an aggregator sees the EVs, chargers and bidding groups of the customers it serves)."""
    try:
        return view.for_caller(who, request.app.state.platform.journeys)
    except ForbiddenError as exc:
        raise HTTPException(403, str(exc)) from exc
