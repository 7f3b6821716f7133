"""A TSO market simulator: clears submitted bids against recorded marginal prices.

The fleet is a price taker: a bid is accepted when its price is at or below the recorded marginal
price of its product, period and auction (for the TSO's volume need, cheapest first), and every
accepted bid is paid that marginal price (pay-as-cleared). Bids whose period has no recorded price
are rejected with that reason. Svk clears each FCR hour in two auctions (gates 00:30 and 18:00 the
day before); a recording per auction is used when given, else the recorded total of both.
:func:`replay_season` runs the cycle day after day: the day's bids go to the first auction, what it
did not buy goes to the second.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from v2g.fleet.model import PriceArea
from v2g.markets.bids import Bid, BiddingGroup, BidRuleError, BidStatus, period_end, submit_bids
from v2g.markets.commitments import Commitment
from v2g.markets.prices import PriceSeries
from v2g.markets.rules import MarketRules, Product
from v2g.units import ensure_utc, money

# What the TSO buys per product (MW), Svenska kraftnät's 2026 volume need
# (svk.se "Behov av reserver nu och i framtiden"); mFRR: capacity up 2026.
DEFAULT_DEMAND_MW: dict[Product, float] = {
    Product.FCR_N: 226.0,
    Product.FCR_D_UP: 547.0,
    Product.FCR_D_DOWN: 528.0,
    Product.MFRR: 1300.0,
}


@dataclass(frozen=True, slots=True)
class BidOutcome:
    """The simulator's answer to one bid."""

    bid: Bid
    clearing_price_eur_per_mw_h: Decimal | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClearingResult:
    """Outcome of one auction: every bid accepted or rejected, and the commitments made."""

    auction: str
    outcomes: tuple[BidOutcome, ...]
    commitments: tuple[Commitment, ...]

    @property
    def accepted(self) -> list[Bid]:
        """Accepted bids."""
        return [o.bid for o in self.outcomes if o.bid.status is BidStatus.ACCEPTED]


class TsoMarketSimulator:
    """Clears bids of one auction against a price series with marginal pricing."""

    def __init__(
        self,
        rules: MarketRules,
        prices: PriceSeries,
        demand_mw: dict[Product, float] | None = None,
        auction_prices: dict[str, PriceSeries] | None = None,
    ) -> None:
        self.rules = rules
        self.prices = prices
        self.auction_prices = dict(auction_prices or {})
        self.demand_mw = dict(DEFAULT_DEMAND_MW if demand_mw is None else demand_mw)

    def clear(self, bids: Sequence[Bid], auction: str) -> ClearingResult:
        """Clear the SUBMITTED bids of ``auction``; other bids are refused as not part of it."""
        outcomes: list[BidOutcome] = []
        books: dict[tuple[Product, datetime, PriceArea], list[Bid]] = defaultdict(list)
        for bid in bids:
            if bid.status is not BidStatus.SUBMITTED or bid.auction != auction:
                msg = f"bid[{bid.id}].status: {bid.status.value} for {bid.auction!r}, not submitted to {auction!r}"
                raise ValueError(msg)
            books[(bid.product, bid.delivery_start_at, bid.price_area)].append(bid)
        commitments: list[Commitment] = []
        prices = self.auction_prices.get(auction, self.prices)
        for (product, start, _area), book in sorted(books.items(), key=lambda kv: (kv[0][1], kv[0][0].value)):
            price = prices.price(product, start)
            if price is None:
                outcomes.extend(
                    BidOutcome(replace(b, status=BidStatus.REJECTED), None, "no clearing price recorded for the period")
                    for b in book
                )
                continue
            remaining = self.demand_mw.get(product, 0.0)
            for bid in sorted(book, key=lambda b: (b.price_eur_per_mw_h, b.id)):
                volume = abs(bid.volume_mw)
                if bid.price_eur_per_mw_h > price:
                    reason = f"price {bid.price_eur_per_mw_h} above the marginal price {price}"
                    outcomes.append(BidOutcome(replace(bid, status=BidStatus.REJECTED), price, reason))
                elif volume > remaining + 1e-9:
                    reason = f"the TSO's remaining need of {remaining:.1f} MW is smaller than the bid (indivisible)"
                    outcomes.append(BidOutcome(replace(bid, status=BidStatus.REJECTED), price, reason))
                else:
                    remaining -= volume
                    accepted = replace(bid, status=BidStatus.ACCEPTED)
                    outcomes.append(BidOutcome(accepted, price))
                    commitments.append(
                        Commitment(
                            id=f"c-{bid.id}",
                            bid_id=bid.id,
                            group_id=bid.group_id,
                            product=bid.product,
                            price_area=bid.price_area,
                            start_at=bid.delivery_start_at,
                            end_at=period_end(bid, self.rules),
                            mw=bid.volume_mw,
                            price_eur_per_mw_h=price,
                        )
                    )
        return ClearingResult(auction, tuple(outcomes), tuple(commitments))


@dataclass
class SeasonSummary:
    """What a replayed season produced."""

    days: int = 0
    bids: int = 0
    refused: int = 0
    accepted: int = 0
    rejected: int = 0
    committed_mwh_by_product: dict[Product, float] = field(default_factory=lambda: defaultdict(float))
    revenue_eur_by_product: dict[Product, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    commitments: list[Commitment] = field(default_factory=list)

    @property
    def revenue_eur(self) -> Decimal:
        """Total capacity revenue."""
        return money(sum(self.revenue_eur_by_product.values(), Decimal(0)))


OfferFn = Callable[[date], Sequence[Bid]]


def replay_season(
    simulator: TsoMarketSimulator,
    group: BiddingGroup,
    bids_for_day: OfferFn,
    first_day: date,
    days: int,
    *,
    submit_minutes_before_gate: int = 30,
) -> SeasonSummary:
    """For each delivery day: bid before the first gate closure and clear; bids the first auction did not
    buy go again (same volume and price, id suffixed with the auction) to the next auction."""
    rules = simulator.rules
    summary = SeasonSummary()
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        pending = list(bids_for_day(day))
        summary.days += 1
        summary.bids += len(pending)
        if not pending:
            continue
        midnight = ensure_utc(datetime.combine(day, time(0, 0), tzinfo=rules.tz))
        gates = sorted(
            {gct for b in pending for _, gct in rules[b.product].gate_closures(b.delivery_start_at, rules.tz)}
        )
        held: list[Bid] = []
        for round_, gate in enumerate(gates):
            if not pending:
                break
            now = min(gate, midnight) - timedelta(minutes=submit_minutes_before_gate)
            result = submit_bids(pending, rules, now=now, groups={group.id: group}, existing=held)
            if round_ == 0:
                summary.refused += len(result.refused)
            else:  # rejected in the previous auction and not accepted for this one
                summary.rejected += len(result.refused)
            by_auction: dict[str, list[Bid]] = defaultdict(list)
            for b in result.submitted:
                by_auction[b.auction or ""].append(b)
            unsold: list[Bid] = []
            for auction, auction_bids in by_auction.items():
                cleared = simulator.clear(auction_bids, auction)
                summary.accepted += len(cleared.accepted)
                held.extend(cleared.accepted)
                for outcome in cleared.outcomes:
                    if outcome.bid.status is BidStatus.REJECTED:
                        unsold.append(outcome.bid)
                for c in cleared.commitments:
                    summary.commitments.append(c)
                    summary.committed_mwh_by_product[c.product] += c.mw * c.hours
                    summary.revenue_eur_by_product[c.product] += c.payment_eur
            last = round_ == len(gates) - 1
            if last:
                summary.rejected += len(unsold)
            pending = [
                replace(b, id=f"{b.id}-{round_ + 2}", status=BidStatus.DRAFT, auction=None, submitted_at=None)
                for b in unsold
            ]
    return summary


__all__ = [
    "DEFAULT_DEMAND_MW",
    "BidOutcome",
    "BidRuleError",
    "ClearingResult",
    "SeasonSummary",
    "TsoMarketSimulator",
    "replay_season",
]
