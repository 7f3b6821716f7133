"""The operator's reconciliation of a period and the BSP statement of each bidding group.

Reconciliation (to the öre): what the reserve market paid for the period's verified hours,
converted and split exactly as the settlement run splits it, against what the ledger holds for the
period (every transaction settling it, corrections included, wherever posted):

* market side: gross revenue = capacity + activation payments; repayments paid back;
* ledger side: the owners' shares (``reserve.owner_share``), the aggregator's share of allocated
  money (``reserve.aggregator_share``) and the money no EV earned (``reserve.unallocated``);
* the identity: gross = owners + aggregator + unallocated + repayments, and the net the ledger drew
  from ``market:reserve`` = gross - repayments. Any subject whose posted reserve money differs
  from its allocation is listed (an EV not run yet, a delivery record changed after the run).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from v2g.settlement.allocation import ReserveAllocation
from v2g.settlement.economics import Line
from v2g.settlement.ledger import MARKET_RESERVE, RESERVE_UNALLOCATED, Posting
from v2g.settlement.money import ORE, ZERO
from v2g.settlement.periods import SettlementPeriod


def _sek(amount: Decimal) -> str:
    return str(amount.quantize(ORE))


RESERVE_LINES = (Line.RESERVE_OWNER.value, Line.RESERVE_AGGREGATOR.value, RESERVE_UNALLOCATED)


@dataclass(frozen=True, slots=True)
class SubjectDifference:
    """A subject whose posted reserve money is not what the allocation gives it."""

    subject: str
    allocated_sek: Decimal
    posted_sek: Decimal

    @property
    def difference_sek(self) -> Decimal:
        return self.posted_sek - self.allocated_sek


@dataclass(frozen=True, slots=True)
class ProductLine:
    """One product's market money within a group's period."""

    product: str
    hours: int
    capacity_sek: Decimal
    activation_sek: Decimal
    repayment_sek: Decimal
    hours_with_repayment: int

    @property
    def net_sek(self) -> Decimal:
        return self.capacity_sek + self.activation_sek - self.repayment_sek


@dataclass(frozen=True, slots=True)
class GroupStatement:
    """The BSP statement of one bidding group for a period: the market's money by product and how
    it was split over the EVs (allocated) or kept by the aggregator (unallocated)."""

    period: SettlementPeriod
    group_id: str
    bsp_org_id: str
    products: tuple[ProductLine, ...]
    evs: int
    allocated_sek: Decimal
    unallocated_sek: Decimal

    @property
    def capacity_sek(self) -> Decimal:
        return sum((p.capacity_sek for p in self.products), ZERO)

    @property
    def activation_sek(self) -> Decimal:
        return sum((p.activation_sek for p in self.products), ZERO)

    @property
    def repayment_sek(self) -> Decimal:
        return sum((p.repayment_sek for p in self.products), ZERO)

    @property
    def net_sek(self) -> Decimal:
        return self.capacity_sek + self.activation_sek - self.repayment_sek

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (amounts as strings, exact)."""
        return {
            "period": self.period.code,
            "group_id": self.group_id,
            "bsp_org_id": self.bsp_org_id,
            "evs": self.evs,
            "capacity_sek": _sek(self.capacity_sek),
            "activation_sek": _sek(self.activation_sek),
            "repayment_sek": _sek(self.repayment_sek),
            "net_sek": _sek(self.net_sek),
            "allocated_to_evs_sek": _sek(self.allocated_sek),
            "unallocated_sek": _sek(self.unallocated_sek),
            "products": [
                {
                    "product": p.product,
                    "hours": p.hours,
                    "hours_with_repayment": p.hours_with_repayment,
                    "capacity_sek": _sek(p.capacity_sek),
                    "activation_sek": _sek(p.activation_sek),
                    "repayment_sek": _sek(p.repayment_sek),
                    "net_sek": _sek(p.net_sek),
                }
                for p in self.products
            ],
        }


def group_statements(
    period: SettlementPeriod, allocations: Sequence[ReserveAllocation], bsp_of: Mapping[str, str]
) -> list[GroupStatement]:
    """One statement per bidding group with market money in the period (groups in id order)."""
    by_group: dict[str, list[ReserveAllocation]] = defaultdict(list)
    for a in allocations:
        by_group[a.hour.group_id].append(a)
    out = []
    for group_id in sorted(by_group):
        allocs = by_group[group_id]
        by_product: dict[str, list[ReserveAllocation]] = defaultdict(list)
        for a in allocs:
            by_product[a.hour.product].append(a)
        products = tuple(
            ProductLine(
                product=product,
                hours=len(items),
                capacity_sek=sum((a.hour.capacity_payment_sek for a in items), ZERO),
                activation_sek=sum((a.hour.activation_payment_sek for a in items), ZERO),
                repayment_sek=sum((a.hour.repayment_sek for a in items), ZERO),
                hours_with_repayment=sum(1 for a in items if a.hour.repayment_sek > 0),
            )
            for product, items in sorted(by_product.items())
        )
        evs = {ev for a in allocs for ev in a.ev_ids}
        allocated = sum((a.net_sek(ev) for a in allocs for ev in a.ev_ids), ZERO)
        unallocated = sum((a.unallocated_sek for a in allocs), ZERO)
        out.append(
            GroupStatement(period, group_id, bsp_of.get(group_id, ""), products, len(evs), allocated, unallocated)
        )
    return out


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """A period's market money against the ledger, to the öre."""

    period: SettlementPeriod
    capacity_sek: Decimal
    activation_sek: Decimal
    repayment_sek: Decimal
    owners_sek: Decimal
    aggregator_share_sek: Decimal
    unallocated_sek: Decimal
    ledger_market_sek: Decimal
    differences: tuple[SubjectDifference, ...]
    groups: tuple[GroupStatement, ...]

    @property
    def gross_sek(self) -> Decimal:
        """What the market paid before repayments."""
        return self.capacity_sek + self.activation_sek

    @property
    def net_sek(self) -> Decimal:
        return self.gross_sek - self.repayment_sek

    @property
    def aggregator_sek(self) -> Decimal:
        """The aggregator's share of allocated money and the money no EV earned."""
        return self.aggregator_share_sek + self.unallocated_sek

    @property
    def unexplained_sek(self) -> Decimal:
        """gross - (owners + aggregator + repayments): zero when the books agree with the market."""
        return self.gross_sek - (self.owners_sek + self.aggregator_sek + self.repayment_sek)

    @property
    def balanced(self) -> bool:
        return self.unexplained_sek == 0 and self.ledger_market_sek == self.net_sek and not self.differences

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (amounts as strings, exact)."""
        return {
            "period": self.period.code,
            "balanced": self.balanced,
            "gross_sek": _sek(self.gross_sek),
            "capacity_sek": _sek(self.capacity_sek),
            "activation_sek": _sek(self.activation_sek),
            "repayment_sek": _sek(self.repayment_sek),
            "owners_sek": _sek(self.owners_sek),
            "aggregator_share_sek": _sek(self.aggregator_share_sek),
            "unallocated_sek": _sek(self.unallocated_sek),
            "unexplained_sek": _sek(self.unexplained_sek),
            "net_sek": _sek(self.net_sek),
            "ledger_market_sek": _sek(self.ledger_market_sek),
            "differences": [
                {"subject": d.subject, "allocated_sek": _sek(d.allocated_sek), "posted_sek": _sek(d.posted_sek)}
                for d in self.differences
            ],
            "groups": [g.to_json() for g in self.groups],
        }


def reconcile(
    period: SettlementPeriod,
    allocations: Sequence[ReserveAllocation],
    settling_postings: Iterable[Posting],
    bsp_of: Mapping[str, str],
) -> Reconciliation:
    """Reconcile ``period``: ``allocations`` are the market hours split as the settlement run splits
    them; ``settling_postings`` every posting of every transaction settling the period."""
    by_line: dict[str, Decimal] = defaultdict(lambda: ZERO)
    posted: dict[str, Decimal] = defaultdict(lambda: ZERO)
    ledger_market = ZERO
    for p in settling_postings:
        if p.line not in RESERVE_LINES:
            continue
        if p.account == MARKET_RESERVE:
            ledger_market += p.amount_sek
            posted[p.subject] += p.amount_sek
        else:
            by_line[p.line] -= p.amount_sek  # the payees are credited (negative amounts)
    expected: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for a in allocations:
        for ev in a.ev_ids:
            expected[ev] += a.net_sek(ev)
        if a.unallocated_sek:
            expected[f"group:{a.hour.group_id}"] += a.unallocated_sek
    differences = tuple(
        SubjectDifference(s, expected.get(s, ZERO), posted.get(s, ZERO))
        for s in sorted(set(expected) | set(posted))
        if expected.get(s, ZERO) != posted.get(s, ZERO)
    )
    return Reconciliation(
        period=period,
        capacity_sek=sum((a.hour.capacity_payment_sek for a in allocations), ZERO),
        activation_sek=sum((a.hour.activation_payment_sek for a in allocations), ZERO),
        repayment_sek=sum((a.hour.repayment_sek for a in allocations), ZERO),
        owners_sek=by_line[Line.RESERVE_OWNER.value],
        aggregator_share_sek=by_line[Line.RESERVE_AGGREGATOR.value],
        unallocated_sek=by_line[RESERVE_UNALLOCATED],
        ledger_market_sek=ledger_market,
        differences=differences,
        groups=tuple(group_statements(period, allocations, bsp_of)),
    )
