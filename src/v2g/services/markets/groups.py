"""Bidding-group use cases: joining a BSP's group, deregistering a unit, the products a group qualified for."""

from __future__ import annotations

from datetime import datetime

from v2g.fleet.model import PriceArea
from v2g.markets.bids import BiddingGroup, ControlMode
from v2g.markets.rules import Product
from v2g.services.markets.ports import GroupMember, MarketStore


class MarketError(ValueError):
    """A market use case was asked for something impossible; the message names the id and field."""


def group_id_for(bsp_org_id: str, price_area: PriceArea) -> str:
    """The default bidding group of a BSP in a price area."""
    return f"{bsp_org_id}-{price_area.value.lower()}"


def join_bidding_group(
    store: MarketStore,
    *,
    bsp_org_id: str,
    price_area: PriceArea,
    ev_id: str,
    charger_id: str,
    now: datetime,
    control_mode: ControlMode = ControlMode.LOCAL,
) -> tuple[BiddingGroup, bool]:
    """Put an EV in its BSP's group for the price area (created on first use); idempotent."""
    current = store.group_of_ev(ev_id)
    if current is not None:
        group = store.group(current.group_id)
        assert group is not None
        return group, False
    gid = group_id_for(bsp_org_id, price_area)
    group = store.group(gid)
    if group is None:
        store.add_group(BiddingGroup(gid, bsp_org_id, price_area, control_mode), now)
    elif not group.active:
        msg = f"bidding_group[{gid}]: deregistered; register a new group"
        raise MarketError(msg)
    added = store.add_member(GroupMember(gid, ev_id, charger_id, now))
    group = store.group(gid)
    assert group is not None
    return group, added


def deregister_unit(store: MarketStore, *, ev_id: str, now: datetime) -> tuple[str | None, int]:
    """Take an EV out of its bidding group; an emptied group is deregistered. Returns (group, members left)."""
    member = store.group_of_ev(ev_id)
    if member is None:
        return None, 0
    store.remove_member(member.group_id, ev_id, now)
    left = len(store.members(member.group_id))
    if left == 0:
        store.deactivate_group(member.group_id, now)
    return member.group_id, left


def qualified_products(store: MarketStore, group_id: str) -> dict[Product, float]:
    """Products the group passed pre-qualification for, with the latest qualified capacity (kW)."""
    out: dict[Product, float] = {}
    for r in store.prequal_results(group_id):
        if r.passed:
            out[r.product] = r.qualified_capacity_kw
        else:
            out.pop(r.product, None)
    return out
