"""The journey's automated services owned by market operations: ``create_bidding_group``,
``submit_bids`` and ``deregister_unit``.
"""

from __future__ import annotations

from collections.abc import Callable

from v2g.fleet.model import PriceArea
from v2g.markets.bids import BidStatus
from v2g.services.journey.automation import Handler, ServiceContext, ServiceOutcome
from v2g.services.markets.groups import MarketError, deregister_unit, join_bidding_group, qualified_products
from v2g.services.markets.ports import MarketStore


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
