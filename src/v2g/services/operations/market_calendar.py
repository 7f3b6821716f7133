"""The market calendar of the operating day: bids before each gate closure, clearing, commitments.

Every run (a scheduled job, e.g. every 15 minutes) looks at the FCR auctions of the next two local
delivery days:

* **Offer.** When an auction's gate closes within ``lead`` and the BSP has not yet bid for that
  delivery day in it, the reserve bids of the latest plan for the day's hours (the planner's
  ``ReserveBid``, already net of what is committed) become bids of the BSP's bidding group for the
  price area, rounded to the product's bid resolution, validated against every market rule, and
  stored (refused ones with the rule they broke).
* **Clear.** Once an auction's gate has closed, its submitted bids go to the TSO market (the
  simulator by default, a real TSO interface behind the same port) and the answer is stored;
  accepted bids become commitments, which the next plans honour.

What is offered: with a ``forecaster`` (the availability forecast over the plug-in history, see
:mod:`v2g.services.markets.forecast`) every hour of the day is offered at the first gate, before
the EVs arrive, and what that auction did not buy is offered again at the second. Without one, the
plan's reserve bids are offered, and only when the plan already covers the day (the first auction
of a day closes at 00:30 the day before, earlier than the day-ahead prices are published).
Either way a bid asks the provider's cost of holding the capacity (``offer_price``), not a
forecast of the clearing price.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from v2g.fleet.model import PriceArea
from v2g.markets.bids import Bid, BidStatus, ReserveOffer, bids_from_offers
from v2g.markets.offer_price import offer_price_eur_per_mw_h
from v2g.markets.rules import MarketRules, Product
from v2g.planning.model import FleetPlan
from v2g.services.clock import Clock
from v2g.services.markets.bidding import run_auction, submit
from v2g.services.markets.groups import group_id_for
from v2g.services.markets.ports import MarketStore, TsoMarket
from v2g.units import ensure_utc


class ReserveForecaster(Protocol):
    """Offers for a product and local delivery day, made at ``made_at`` from what is known then."""

    def offers(self, product: Product, day: date, made_at: datetime) -> list[ReserveOffer]: ...


log = logging.getLogger("v2g.markets")

FCR_PRODUCTS = (Product.FCR_N, Product.FCR_D_UP, Product.FCR_D_DOWN)


@dataclass
class CalendarRun:
    """What one run of the calendar did."""

    at: datetime
    offered: dict[str, int] = field(default_factory=dict)  # "<auction> <day>" -> bids submitted
    refused: dict[str, int] = field(default_factory=dict)
    cleared: dict[str, tuple[int, int]] = field(default_factory=dict)  # auction -> (accepted, rejected)
    skipped: list[str] = field(default_factory=list)

    def status_line(self) -> str | None:
        parts = [f"offered {n} bids in {k}" for k, n in sorted(self.offered.items())]
        parts += [f"{n} bids refused in {k}" for k, n in sorted(self.refused.items()) if n]
        parts += [f"{k} cleared: {a} accepted, {r} rejected" for k, (a, r) in sorted(self.cleared.items())]
        parts += self.skipped
        return "; ".join(parts) if parts else None


class MarketCalendar:
    """Offers the plan's reserves before each gate closure and records the TSO's answers."""

    def __init__(
        self,
        *,
        rules: MarketRules,
        market_tx: Callable[[], AbstractContextManager[MarketStore]],
        market: TsoMarket,
        latest_plan: Callable[[], FleetPlan | None],
        bsp_org_id: str,
        clock: Clock,
        lead: timedelta = timedelta(minutes=30),
        products: Sequence[Product] = FCR_PRODUCTS,
        forecaster: ReserveForecaster | None = None,
        offer_price: Callable[[Product, datetime], Decimal] | None = None,
    ) -> None:
        self.rules = rules
        self.market_tx = market_tx
        self.market = market
        self.latest_plan = latest_plan
        self.bsp_org_id = bsp_org_id
        self.clock = clock
        self.lead = lead
        self.products = tuple(products)
        self.forecaster = forecaster
        # the provider's cost of holding one MW for the hour (pay-as-cleared: bid the cost, earn the marginal price)
        self.offer_price = offer_price or (lambda p, _h: offer_price_eur_per_mw_h(rules.offer_cost, p, 0.0))
        self.last: CalendarRun | None = None
        self.on_commitments: list[Callable[[int], None]] = []  # told how many bids were accepted in a run

    async def run(self, due_at: datetime) -> str | None:
        """The scheduled job."""
        result = await asyncio.to_thread(self.run_once)
        return result.status_line()

    def run_once(self) -> CalendarRun:
        now = self.clock.now()
        result = CalendarRun(now)
        self._clear_closed(now, result)
        self._offer(now, result)
        self.last = result
        accepted = sum(a for a, _ in result.cleared.values())
        if accepted:
            for listener in self.on_commitments:
                listener(accepted)
        return result

    # ------------------------------------------------------------------ offer
    def _gates(self, now: datetime) -> list[tuple[Product, str, date, datetime]]:
        """(product, auction, delivery day, gate closure) for the next two local delivery days."""
        today = now.astimezone(self.rules.tz).date()
        out = []
        for product in self.products:
            pr = self.rules[product]
            for offset in (1, 2):
                day = today + timedelta(days=offset)
                first_hour = ensure_utc(datetime.combine(day, datetime.min.time(), tzinfo=self.rules.tz))
                for auction, gate in pr.gate_closures(first_hour, self.rules.tz):
                    out.append((product, auction, day, gate))
        return out

    def _offer(self, now: datetime, result: CalendarRun) -> None:
        due = [(p, a, d, g) for p, a, d, g in self._gates(now) if now < g <= now + self.lead]
        if not due:
            return
        plan = self.latest_plan()
        if plan is None and self.forecaster is None:
            result.skipped.append("no plan to offer from")
            return
        for product, auction, day, _gate in due:
            if self.forecaster is not None:
                offers: list[ReserveOffer] | None = self.forecaster.offers(product, day, now)
            else:
                offers = self._offers_for_day(plan, product, day) if plan is not None else None
            if offers is None:
                result.skipped.append(f"{product.value} {day}: the plan does not cover the day")
                continue
            by_area: dict[PriceArea, list[ReserveOffer]] = defaultdict(list)
            for offer in offers:
                by_area[offer.price_area].append(offer)
            for area, area_offers in sorted(by_area.items()):
                gid = group_id_for(self.bsp_org_id, area)
                key = f"{auction} {day} {product.value} {area.value}"
                with self.market_tx() as store:
                    group = store.group(gid)
                    if group is None or not group.active:
                        result.skipped.append(f"{key}: no active bidding group {gid}")
                        continue
                    prefix = f"{gid}-{auction}-{day:%Y%m%d}"
                    existing = store.bids(gid)
                    if any(b.id.startswith(prefix) for b in existing):
                        continue  # already offered in this auction (a restart, or an earlier run)
                    if self.forecaster is not None:  # the forecast is the whole fleet: offer what is not sold yet
                        area_offers = _less_held(area_offers, [b for b in existing if b.group_id == gid])
                    # what the group already holds for these hours (an earlier auction) counts against its limits
                    bids = bids_from_offers(area_offers, group, self.rules, id_prefix=prefix, existing=existing)
                    if not bids:
                        continue
                    outcome = submit(store, bids, self.rules, now=now)
                result.offered[key] = len(outcome.submitted)
                result.refused[key] = len(outcome.refused)
                for bid, err in outcome.refused:
                    log.warning("bid %s refused: %s", bid.id, err)

    def _offers_for_day(self, plan: FleetPlan, product: Product, day: date) -> list[ReserveOffer] | None:
        """The plan's offers for ``product`` in the hours of local day ``day`` (None if it does not cover the day)."""
        start = ensure_utc(datetime.combine(day, datetime.min.time(), tzinfo=self.rules.tz))
        end = ensure_utc(datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=self.rules.tz))
        plan_end = plan.start_at + timedelta(minutes=15) * plan.n_intervals
        if plan.start_at > start or plan_end < end:
            return None
        offers = []
        for bid in plan.bids:
            if bid.product.value != product.value or not start <= bid.hour_start_at < end or bid.mw <= 0:
                continue
            offers.append(
                ReserveOffer(
                    product=product,
                    delivery_start_at=bid.hour_start_at,
                    price_area=bid.price_area,
                    mw=bid.mw,
                    price_eur_per_mw_h=self.offer_price(product, bid.hour_start_at),
                )
            )
        return offers

    # ------------------------------------------------------------------ clear
    def _clear_closed(self, now: datetime, result: CalendarRun) -> None:
        """Send every closed auction's submitted bids to the TSO market."""
        with self.market_tx() as store:
            pending: set[tuple[str, str]] = set()
            for group_id in store.group_ids_of(self.bsp_org_id):
                for bid in store.bids(group_id):
                    if bid.status is not BidStatus.SUBMITTED or bid.auction is None:
                        continue
                    closures = dict(self.rules[bid.product].gate_closures(bid.delivery_start_at, self.rules.tz))
                    gate = closures.get(bid.auction)
                    if gate is not None and gate <= now:
                        pending.add((group_id, bid.auction))
        for group_id, auction in sorted(pending):
            with self.market_tx() as store:
                clearing = run_auction(store, self.market, group_id, auction)
            for outcome in clearing.outcomes:
                if outcome.bid.status is BidStatus.REJECTED:
                    log.info("bid %s rejected in %s: %s", outcome.bid.id, auction, outcome.reason)
            accepted = len(clearing.accepted)
            rejected = len(clearing.outcomes) - accepted
            a0, r0 = result.cleared.get(auction, (0, 0))
            result.cleared[auction] = (a0 + accepted, r0 + rejected)


def _less_held(offers: Sequence[ReserveOffer], bids: Sequence[Bid]) -> list[ReserveOffer]:
    """The offers less what the group's submitted or accepted bids already hold in the same hour."""
    held: dict[tuple[Product, datetime], float] = defaultdict(float)
    for b in bids:
        if b.status in (BidStatus.SUBMITTED, BidStatus.ACCEPTED):
            held[(b.product, b.delivery_start_at)] += abs(b.volume_mw)
    return [
        replace(o, mw=o.mw - held[(o.product, o.delivery_start_at)])
        for o in offers
        if o.mw - held[(o.product, o.delivery_start_at)] > 0
    ]
