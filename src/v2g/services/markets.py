"""Market-operation use cases: bidding groups, bid submission, clearing, pre-qualification results,
deregistration, and the journey's automated services ``create_bidding_group``, ``submit_bids`` and
``deregister_unit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from v2g.fleet.model import PriceArea
from v2g.markets.bids import Bid, BiddingGroup, BidStatus, ControlMode, SubmissionResult, submit_bids
from v2g.markets.rules import MarketRules, Product
from v2g.markets.simulator import ClearingResult
from v2g.prequal.report import PrequalResult
from v2g.services.journey.automation import Handler, ServiceContext, ServiceOutcome
from v2g.services.market_ports import GroupMember, MarketStore, TsoMarket


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


def submit(store: MarketStore, bids: Sequence[Bid], rules: MarketRules, *, now: datetime) -> SubmissionResult:
    """Validate and store bids; refused ones are stored too, with the rule they broke."""
    group_ids = {b.group_id for b in bids}
    groups = {g: grp for g in group_ids if (grp := store.group(g)) is not None}
    existing = [b for g in groups for b in store.bids(g)]
    result = submit_bids(bids, rules, now=now, groups=groups, existing=existing)
    store.save_bids(result.submitted, result.refused)
    return result


def run_auction(store: MarketStore, market: TsoMarket, group_id: str, auction: str) -> ClearingResult:
    """Send the group's submitted bids of ``auction`` to the market and store the answer."""
    pending = [b for b in store.bids(group_id) if b.status is BidStatus.SUBMITTED and b.auction == auction]
    result = market.clear(pending, auction)
    record_clearing(store, result)
    return result


def record_clearing(store: MarketStore, result: ClearingResult) -> None:
    """Store the auction's answers and the commitments it created."""
    store.save_bids([o.bid for o in result.outcomes])
    store.save_commitments(result.commitments)


def record_prequal(store: MarketStore, result: PrequalResult) -> None:
    """Store a pre-qualification run; a pass sets the group's prequalified capacity for the product."""
    store.save_prequal(result)
    if result.passed and store.group(result.group_id) is not None:
        store.set_prequalified(result.group_id, result.product, round(result.qualified_capacity_kw / 1000.0, 3))


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


# ------------------------------------------------------------------ journey services


def market_handlers(store_for: Callable[[ServiceContext], MarketStore], *, bsp_org_id: str) -> dict[str, Handler]:
    """The journey's automated services owned by market operations."""

    def _ev_and_charger(ctx: ServiceContext) -> tuple[str, str, PriceArea] | ServiceOutcome:
        file = ctx.repo.customer_file(ctx.journey.customer_id)
        if not file.vehicles:
            return ServiceOutcome.waiting("no vehicle registered for the customer")
        if not file.chargers or not file.sites:
            return ServiceOutcome.waiting("no charger installed at the customer's site")
        return file.vehicles[0].id, file.chargers[0].id, file.sites[0].price_area

    def create_bidding_group(ctx: ServiceContext) -> ServiceOutcome:
        found = _ev_and_charger(ctx)
        if isinstance(found, ServiceOutcome):
            return found
        ev_id, charger_id, area = found
        serving = [o.id for o in ctx.repo.serving_organisations(ctx.journey.customer_id) if o.role == "bsp"]
        bsp = serving[0] if serving else bsp_org_id  # the BSP serving the customer, else the platform's own
        try:
            group, added = join_bidding_group(
                store_for(ctx), bsp_org_id=bsp, price_area=area, ev_id=ev_id, charger_id=charger_id, now=ctx.now
            )
        except MarketError as exc:
            return ServiceOutcome.waiting(str(exc))
        return ServiceOutcome.done(
            {
                "group_id": group.id,
                "ev_id": ev_id,
                "charger_id": charger_id,
                "added": added,
                "members": len(group.ev_ids),
            }
        )

    def submit_bids_service(ctx: ServiceContext) -> ServiceOutcome:
        found = _ev_and_charger(ctx)
        if isinstance(found, ServiceOutcome):
            return found
        store = store_for(ctx)
        member = store.group_of_ev(found[0])
        if member is None:
            return ServiceOutcome.waiting("the EV is not in a bidding group yet (create_bidding_group)")
        products = qualified_products(store, member.group_id)
        if not products:
            return ServiceOutcome.waiting(f"bidding group {member.group_id} has not passed pre-qualification yet")
        pending = [b for b in store.bids(member.group_id) if b.status in (BidStatus.SUBMITTED, BidStatus.ACCEPTED)]
        return ServiceOutcome.done(
            {
                "group_id": member.group_id,
                "qualified_kw": {p.value: kw for p, kw in products.items()},
                "bids_in_market": len(pending),
            },
            outcome="bidding",
        )

    def deregister_unit_service(ctx: ServiceContext) -> ServiceOutcome:
        file = ctx.repo.customer_file(ctx.journey.customer_id)
        store = store_for(ctx)
        removed = []
        for vehicle in file.vehicles:
            group_id, left = deregister_unit(store, ev_id=vehicle.id, now=ctx.now)
            if group_id is not None:
                removed.append({"ev_id": vehicle.id, "group_id": group_id, "members_left": left})
        return ServiceOutcome.done({"removed": removed})

    return {
        "create_bidding_group": create_bidding_group,
        "submit_bids": submit_bids_service,
        "deregister_unit": deregister_unit_service,
    }


__all__ = [
    "MarketError",
    "deregister_unit",
    "join_bidding_group",
    "market_handlers",
    "qualified_products",
    "record_clearing",
    "record_prequal",
    "run_auction",
    "submit",
]
