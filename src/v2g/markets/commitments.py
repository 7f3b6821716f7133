"""Commitments (accepted bids) that plans must honour, and the BRP schedule that includes V2G."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from v2g.fleet.model import PriceArea
from v2g.fleet.schedule import PowerSchedule
from v2g.markets.rules import Product
from v2g.units import QUARTER, ensure_utc, iter_quarters, money


@dataclass(frozen=True, slots=True)
class Commitment:
    """Capacity (or energy) the BSP must deliver: an accepted bid at the marginal price."""

    id: str
    bid_id: str
    group_id: str
    product: Product
    price_area: PriceArea
    start_at: datetime
    end_at: datetime
    mw: float
    price_eur_per_mw_h: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_at", ensure_utc(self.start_at, field=f"commitment[{self.id}].start_at"))
        object.__setattr__(self, "end_at", ensure_utc(self.end_at, field=f"commitment[{self.id}].end_at"))
        if self.end_at <= self.start_at:
            msg = f"commitment[{self.id}].end_at: must be after start_at"
            raise ValueError(msg)

    @property
    def hours(self) -> float:
        """Length of the delivery period in hours."""
        return (self.end_at - self.start_at).total_seconds() / 3600.0

    @property
    def payment_eur(self) -> Decimal:
        """Capacity payment (or energy value) of the commitment, to the cent."""
        return money(Decimal(repr(self.mw)) * self.price_eur_per_mw_h * Decimal(repr(self.hours)))

    def covers(self, at: datetime) -> bool:
        """True while ``at`` lies in the delivery period."""
        return self.start_at <= at < self.end_at


@dataclass(frozen=True, slots=True)
class PlanShortfall:
    """A plan that does not hold enough reserve for a commitment."""

    group_id: str
    product: Product
    start_at: datetime
    committed_kw: float
    planned_kw: float

    def __str__(self) -> str:
        return (
            f"group {self.group_id} {self.product.value} at {self.start_at.isoformat()}: plan holds "
            f"{self.planned_kw:.1f} kW of {self.committed_kw:.1f} kW committed"
        )


class CommitmentBook:
    """The commitments in force; answers what must be held when."""

    def __init__(self, commitments: Iterable[Commitment] = ()) -> None:
        self._items: list[Commitment] = list(commitments)

    def add(self, commitment: Commitment) -> None:
        """Record a new commitment (duplicates by id are refused)."""
        if any(c.id == commitment.id for c in self._items):
            msg = f"commitment[{commitment.id}]: already recorded"
            raise ValueError(msg)
        self._items.append(commitment)

    def __iter__(self) -> Iterator[Commitment]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def active(self, at: datetime, *, group_id: str | None = None) -> list[Commitment]:
        """Commitments whose delivery period contains ``at``."""
        at = ensure_utc(at)
        return [c for c in self._items if c.covers(at) and (group_id is None or c.group_id == group_id)]

    def committed_kw(self, product: Product, at: datetime, *, group_id: str | None = None) -> float:
        """Capacity committed for ``product`` at ``at`` (kW)."""
        return sum(c.mw for c in self.active(at, group_id=group_id) if c.product is product) * 1000.0

    def check_plan(
        self, planned_kw: Mapping[tuple[str, Product, datetime], float], *, tolerance_kw: float = 1e-6
    ) -> list[PlanShortfall]:
        """Every commitment the plan does not honour; ``planned_kw`` maps (group, product, period start) to kW held."""
        out: list[PlanShortfall] = []
        totals: dict[tuple[str, Product, datetime], float] = defaultdict(float)
        for c in self._items:
            for q in iter_quarters(c.start_at, c.end_at):
                totals[(c.group_id, c.product, q)] += c.mw * 1000.0
        for (group_id, product, q), committed in sorted(totals.items(), key=lambda kv: (kv[0][2], kv[0][1].value)):
            hour = q.replace(minute=0)
            planned = planned_kw.get((group_id, product, q), planned_kw.get((group_id, product, hour), 0.0))
            if planned + tolerance_kw < committed:
                out.append(PlanShortfall(group_id, product, q, committed, planned))
        return out


@dataclass(frozen=True, slots=True)
class BrpScheduleRow:
    """One quarter of the BRP's forecast for one price area, V2G included."""

    quarter_start_at: datetime
    price_area: PriceArea
    planned_mwh: float  # > 0 consumption (charging), < 0 production (discharging)
    reserve_mw: dict[Product, float]


def brp_schedule(
    schedules: Sequence[PowerSchedule],
    price_area_by_ev: Mapping[str, PriceArea],
    commitments: Iterable[Commitment],
    start_at: datetime,
    end_at: datetime,
) -> list[BrpScheduleRow]:
    """Per quarter and price area: planned V2G energy and the reserve capacity held ("include V2G in forecasts")."""
    start_at, end_at = ensure_utc(start_at, field="start_at"), ensure_utc(end_at, field="end_at")
    commitments = list(commitments)
    areas = sorted({*price_area_by_ev.values(), *(c.price_area for c in commitments)}, key=lambda a: a.value)
    rows: list[BrpScheduleRow] = []
    for q in iter_quarters(start_at, end_at):
        for area in areas:
            mwh = 0.0
            for s in schedules:
                area_of = price_area_by_ev.get(s.ev_id)
                if area_of is None:
                    msg = f"schedule[{s.ev_id}]: EV has no price area"
                    raise ValueError(msg)
                if area_of is area:
                    mwh += s.at(q) * QUARTER.total_seconds() / 3600.0 / 1000.0
            reserve = dict.fromkeys(Product, 0.0)
            for c in commitments:
                if c.price_area is area and c.covers(q):
                    reserve[c.product] += c.mw
            rows.append(BrpScheduleRow(q, area, round(mwh, 9), reserve))
    return rows
