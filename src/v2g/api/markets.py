"""Market operations over HTTP: bidding groups, bids (submission refused with the rule broken),
commitments and delivery records.

Access by role and organisation (see :mod:`v2g.services.markets.access`): a BSP sees and changes only
its own groups; an aggregator operator reads the groups holding EVs of the customers it serves; the
TSO, which runs the markets, reads every group. A group the caller may not read answers 404, without
leaking that it exists; nobody else reads anything here. Only the owning BSP submits bids.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import Field

from v2g.api.deps import MarketUnit
from v2g.api.inputs import BoundedDatetime, CheckedJsonRoute, StrictModel
from v2g.api.journeys import Who
from v2g.fleet.model import PriceArea
from v2g.markets.bids import Bid, BiddingGroup
from v2g.markets.rules import Product, default_rules
from v2g.services.actors.ports import Principal
from v2g.services.markets.access import AGGREGATOR_ROLE, READERS, MarketScope
from v2g.services.markets.ports import MarketStore
from v2g.services.markets.submission import BidConflictError, submit_owned

router = APIRouter(prefix="/markets", tags=["markets"], route_class=CheckedJsonRoute)
MAX_BID_MW = 10_000.0
MAX_PRICE = Decimal(1_000_000)
MAX_DAYS_BACK = 3660


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.platform.clock.now()
    return now


def _scope(request: Request, who: Principal) -> MarketScope:
    """The caller's market scope; 403 for a role that reads no market data."""
    if who.role not in READERS:
        raise HTTPException(403, f"role {who.role!r} may not read market data")
    served: frozenset[str] = frozenset()
    if who.role == AGGREGATOR_ROLE:
        journeys = request.app.state.platform.journeys
        served = journeys.served_vehicle_ids(who) if journeys is not None else frozenset()
    return MarketScope.of(who, served)


def _visible_group(store: MarketStore, scope: MarketScope, group_id: str) -> BiddingGroup:
    group = store.group(group_id)
    if group is None or not scope.sees(store, group):
        raise HTTPException(404, f"bidding group {group_id!r} not found")
    return group


def _group_out(g: BiddingGroup) -> dict[str, Any]:
    return {
        "id": g.id,
        "bsp_org_id": g.bsp_org_id,
        "price_area": g.price_area.value,
        "control_mode": g.control_mode.value,
        "active": g.active,
        "prequalified_mw": {p.value: mw for p, mw in g.prequalified_mw.items()},
        "members": len(g.ev_ids),
    }


def _bid_out(b: Bid) -> dict[str, Any]:
    return {
        "id": b.id,
        "product": b.product.value,
        "price_area": b.price_area.value,
        "delivery_start_at": b.delivery_start_at.isoformat(),
        "volume_mw": b.volume_mw,
        "price_eur_per_mw_h": str(b.price_eur_per_mw_h),
        "status": b.status.value,
        "auction": b.auction,
    }


@router.get("/groups")
def list_groups(request: Request, market_tx: MarketUnit, who: Who) -> list[dict[str, Any]]:
    """Bidding groups the caller may see."""
    scope = _scope(request, who)
    with market_tx() as store:
        return [_group_out(g) for g in scope.groups(store)]


@router.get("/groups/{group_id}")
def get_group(request: Request, market_tx: MarketUnit, who: Who, group_id: str) -> dict[str, Any]:
    """One bidding group."""
    scope = _scope(request, who)
    with market_tx() as store:
        return _group_out(_visible_group(store, scope, group_id))


@router.get("/groups/{group_id}/bids")
def list_bids(request: Request, market_tx: MarketUnit, who: Who, group_id: str) -> list[dict[str, Any]]:
    """The group's bids with their status."""
    scope = _scope(request, who)
    with market_tx() as store:
        _visible_group(store, scope, group_id)
        return [_bid_out(b) for b in store.bids(group_id)]


class BidIn(StrictModel):
    """One bid as submitted over the API (finite numbers only; the market rules check the rest)."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,96}$")]
    product: Product
    price_area: PriceArea
    delivery_start_at: BoundedDatetime
    volume_mw: float = Field(ge=-MAX_BID_MW, le=MAX_BID_MW)
    price_eur_per_mw_h: Decimal = Field(ge=-MAX_PRICE, le=MAX_PRICE, decimal_places=6)


@router.post("/groups/{group_id}/bids")
def submit_group_bids(
    request: Request, market_tx: MarketUnit, who: Who, group_id: str, bids: list[BidIn]
) -> dict[str, Any]:
    """Submit bids for the group; each refused bid comes back with the rule broken, the field and why.

    Bid ids are the BSP's own: sending an id again with the same body answers the same result; with a
    different body it answers 409 and nothing of the request is stored."""
    scope = _scope(request, who)
    with market_tx() as store:
        group = _visible_group(store, scope, group_id)
    if who.role != "bsp":
        raise HTTPException(403, f"role {who.role!r} may not submit bids; the group's BSP does")
    try:
        domain = [
            Bid(b.id, group.id, b.product, b.price_area, b.delivery_start_at, b.volume_mw, b.price_eur_per_mw_h)
            for b in bids
        ]
    except ValueError as exc:
        raise HTTPException(422, [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]) from exc
    try:
        answer = submit_owned(
            market_tx,
            bsp_org_id=who.organisation_id,
            group_id=group.id,
            bids=domain,
            rules=default_rules(),
            now=_now(request),
        )
    except BidConflictError as exc:
        raise HTTPException(409, {"message": str(exc), "field": "id", "bid_ids": list(exc.bid_ids)}) from exc
    return {
        "submitted": [_bid_out(b) for b in answer.submitted],
        "refused": [
            {"id": r.bid.id, "rule": r.rule, "field": r.field_name, "message": r.message} for r in answer.refused
        ],
    }


@router.get("/groups/{group_id}/commitments")
def list_commitments(
    request: Request,
    market_tx: MarketUnit,
    who: Who,
    group_id: str,
    days: Annotated[int, Query(ge=0, le=MAX_DAYS_BACK, description="how many days back")] = 7,
) -> list[dict[str, Any]]:
    """Commitments (accepted bids) from ``days`` ago onwards."""
    scope = _scope(request, who)
    with market_tx() as store:
        _visible_group(store, scope, group_id)
        now = _now(request)
        items = store.commitments(group_id, now - timedelta(days=days), now + timedelta(days=8))
        return [
            {
                "id": c.id,
                "bid_id": c.bid_id,
                "product": c.product.value,
                "start_at": c.start_at.isoformat(),
                "end_at": c.end_at.isoformat(),
                "mw": c.mw,
                "price_eur_per_mw_h": str(c.price_eur_per_mw_h),
                "payment_eur": str(c.payment_eur),
            }
            for c in items
        ]


@router.get("/groups/{group_id}/delivery")
def list_delivery(request: Request, market_tx: MarketUnit, who: Who, group_id: str) -> list[dict[str, Any]]:
    """Delivery verification per hour and product."""
    scope = _scope(request, who)
    with market_tx() as store:
        _visible_group(store, scope, group_id)
        return [
            {
                "product": r.product.value,
                "hour_start_at": r.hour_start_at.isoformat(),
                "committed_mw": r.committed_mw,
                "required_mwh": r.required_mwh,
                "delivered_mwh": r.delivered_mwh,
                "availability": r.availability,
                "undelivered_fraction": r.undelivered_fraction,
                "capacity_payment_eur": str(r.capacity_payment_eur),
                "repayment_eur": str(r.repayment_eur),
            }
            for r in store.delivery(group_id)
        ]
