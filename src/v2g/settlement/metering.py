"""Metering intervals: imported and exported kWh per EV and 15-minute interval, from the charger's
energy registers, with a quality flag and the rule that produced each value.

Each direction (import, export) is handled alone, from its cumulative register
(``Energy.Active.Import.Register`` / ``Energy.Active.Export.Register``, and a transaction's meter
start and stop). Between two consecutive register readings ``a`` and ``b`` the register advanced by
``Δ = R(b) - R(a)``; the register value at every quarter boundary inside is interpolated, rounded to
0.1 Wh, and a quarter's energy is the difference of its boundary values. So quarters always sum
exactly to the register advance, whatever fills a gap: a rule only decides *when* inside the gap the
energy flowed, never how much. The rules, by what the data allow:

``register`` (measured)
    Readings at most ``max_measured_span_s`` apart: the advance is split by time.
``no_advance`` (measured)
    Readings further apart but the register did not move: no energy, exactly (a register never
    runs backwards).
``gap_power_shaped`` (estimated)
    A longer gap with an advance, and power samples cover the whole gap: split in proportion to the
    integrated power (registers give the amount, power only the shape).
``gap_plugged_time`` (estimated)
    A longer gap with an advance and no such power: split evenly over the time an EV was plugged in
    (the charging transactions) within the gap.
``gap_linear`` (estimated)
    Neither: split evenly over the gap.

Where no register reading lies on both sides (before the first reading, after the last, or across
a register that went backwards: ``register_reset``):

``power_integration`` (estimated)
    Power samples, each held for at most ``max_power_hold_s``, integrated over time.
``idle_zero`` (estimated)
    No data and no EV plugged in: 0 kWh.
``missing_zero`` (missing)
    No data while an EV was plugged in: 0 kWh booked provisionally; late data corrects it.

A quarter's quality is the worst of the pieces it is made of (missing < estimated < measured), and
its rules are all the rules used in it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

from v2g.settlement.money import KWH_QUANTUM, ZERO, SettlementInputError
from v2g.settlement.tariffs import MeteringRules
from v2g.units import QUARTER, ensure_utc, floor_quarter, iter_quarters

_US = timedelta(microseconds=1)
_US_PER_H = 3_600_000_000
_QUANTUM = Fraction(KWH_QUANTUM)


class Quality(StrEnum):
    """How an interval's energy is known."""

    MEASURED = "measured"
    ESTIMATED = "estimated"
    MISSING = "missing"

    @property
    def rank(self) -> int:
        """Higher is better: measured 2, estimated 1, missing 0."""
        return _RANK[self.value]


_RANK = {"missing": 0, "estimated": 1, "measured": 2}


class FillRule(StrEnum):
    """The documented rule behind a value (see the module docstring)."""

    REGISTER = "register"
    NO_ADVANCE = "no_advance"
    GAP_POWER_SHAPED = "gap_power_shaped"
    GAP_PLUGGED_TIME = "gap_plugged_time"
    GAP_LINEAR = "gap_linear"
    POWER_INTEGRATION = "power_integration"
    IDLE_ZERO = "idle_zero"
    MISSING_ZERO = "missing_zero"
    REGISTER_RESET = "register_reset"


@dataclass(frozen=True, slots=True)
class Reading:
    """One sample of a register (kWh, cumulative) or of power (kW, >= 0) at an instant."""

    at: datetime
    value: Decimal


@dataclass(frozen=True, slots=True)
class PluggedPeriod:
    """An EV plugged in (a charging transaction); ``end_at`` None while it lasts."""

    start_at: datetime
    end_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MeterData:
    """What one charger reported, for one EV: registers, power and transactions, in any order."""

    charger_id: str
    ev_id: str
    import_register: Sequence[Reading] = ()
    export_register: Sequence[Reading] = ()
    import_power: Sequence[Reading] = ()
    export_power: Sequence[Reading] = ()
    plugged: Sequence[PluggedPeriod] = ()


@dataclass(frozen=True, slots=True)
class MeterInterval:
    """One EV's metered energy in one 15-minute interval (kWh to 0.1 Wh)."""

    start_at: datetime
    import_kwh: Decimal
    export_kwh: Decimal
    import_quality: Quality
    export_quality: Quality
    import_rules: tuple[FillRule, ...]
    export_rules: tuple[FillRule, ...]

    @property
    def quality(self) -> Quality:
        """The worse of the two directions."""
        return min(self.import_quality, self.export_quality, key=lambda q: q.rank)

    @property
    def end_at(self) -> datetime:
        return self.start_at + QUARTER

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict (energy as strings, exact)."""
        return {
            "start_at": self.start_at.isoformat(),
            "import_kwh": str(self.import_kwh),
            "export_kwh": str(self.export_kwh),
            "import_quality": self.import_quality.value,
            "export_quality": self.export_quality.value,
            "import_rules": [r.value for r in self.import_rules],
            "export_rules": [r.value for r in self.export_rules],
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> MeterInterval:
        return cls(
            start_at=ensure_utc(datetime.fromisoformat(str(record["start_at"])), field="interval.start_at"),
            import_kwh=Decimal(str(record["import_kwh"])),
            export_kwh=Decimal(str(record["export_kwh"])),
            import_quality=Quality(record["import_quality"]),
            export_quality=Quality(record["export_quality"]),
            import_rules=tuple(FillRule(r) for r in record["import_rules"]),
            export_rules=tuple(FillRule(r) for r in record["export_rules"]),
        )


# ---------------------------------------------------------------------------------------------- helpers
def _us(a: datetime, b: datetime) -> int:
    """Microseconds from ``a`` to ``b``."""
    return (b - a) // _US


def _round_kwh(value: Fraction) -> Decimal:
    """A kWh value rounded to 0.1 Wh, ties away from zero."""
    units = value / _QUANTUM
    n = math.floor(abs(units) + Fraction(1, 2))
    return Decimal(n if units >= 0 else -n) * KWH_QUANTUM


def _sorted_readings(readings: Iterable[Reading], name: str) -> tuple[list[datetime], list[Fraction]]:
    """Readings by time; two at the same instant keep the larger value (a register never falls)."""
    by_time: dict[datetime, Decimal] = {}
    for r in readings:
        at = ensure_utc(r.at, field=f"{name}.at")
        if not r.value.is_finite():
            msg = f"{name}: value at {at.isoformat()} is not finite"
            raise SettlementInputError(msg)
        by_time[at] = max(r.value, by_time.get(at, r.value))
    times = sorted(by_time)
    return times, [Fraction(by_time[t]) for t in times]


class _Power:
    """Power samples held for at most ``hold``: integral and coverage over any span."""

    def __init__(self, readings: Iterable[Reading], hold: timedelta, name: str) -> None:
        times, values = _sorted_readings(readings, name)
        if any(v < 0 for v in values):
            msg = f"{name}: power must be >= 0 in each direction"
            raise SettlementInputError(msg)
        ends = [min(times[k + 1], times[k] + hold) for k in range(len(times) - 1)]
        if times:
            ends.append(times[-1] + hold)
        self.pieces = list(zip(times, ends, values, strict=True))
        self.starts = times

    def _overlapping(self, x: datetime, y: datetime) -> Iterable[tuple[datetime, datetime, Fraction]]:
        k = max(bisect.bisect_right(self.starts, x) - 1, 0)
        while k < len(self.pieces) and self.pieces[k][0] < y:
            s, e, v = self.pieces[k]
            lo, hi = max(s, x), min(e, y)
            if hi > lo:
                yield lo, hi, v
            k += 1

    def energy_kwh(self, x: datetime, y: datetime) -> Fraction:
        """Integrated energy over ``[x, y)``."""
        return sum((v * _us(lo, hi) / _US_PER_H for lo, hi, v in self._overlapping(x, y)), Fraction(0))

    def covered_us(self, x: datetime, y: datetime) -> int:
        """Microseconds of ``[x, y)`` that a held sample covers."""
        return sum(_us(lo, hi) for lo, hi, _ in self._overlapping(x, y))


class _Plugged:
    def __init__(self, periods: Iterable[PluggedPeriod]) -> None:
        far = datetime.max.replace(tzinfo=UTC)
        self.spans = sorted(
            (ensure_utc(p.start_at, field="plugged.start_at"), ensure_utc(p.end_at) if p.end_at else far)
            for p in periods
        )

    def overlap_us(self, x: datetime, y: datetime) -> int:
        return sum(_us(max(s, x), min(e, y)) for s, e in self.spans if min(e, y) > max(s, x))


@dataclass(slots=True)
class _Cell:
    kwh: Decimal = ZERO
    quality: Quality = Quality.MEASURED
    rules: set[FillRule] = field(default_factory=set)

    def add(self, kwh: Decimal, quality: Quality, *rules: FillRule) -> None:
        self.kwh += kwh
        if quality.rank < self.quality.rank:
            self.quality = quality
        self.rules.update(rules)


@dataclass(frozen=True, slots=True)
class _Segment:
    a: datetime
    b: datetime
    va: Fraction
    delta: Fraction
    rule: FillRule
    quality: Quality
    weight_total: Fraction


class _Direction:
    """One register (and its power) as a function of time, and the energy of any span."""

    def __init__(
        self, register: Sequence[Reading], power: Sequence[Reading], plugged: _Plugged, rules: MeteringRules, name: str
    ) -> None:
        self.times, self.values = _sorted_readings(register, f"{name}_register")
        self.power = _Power(power, timedelta(seconds=rules.max_power_hold_s), f"{name}_power")
        self.plugged = plugged
        self.max_span = timedelta(seconds=rules.max_measured_span_s)
        self.segments = [self._segment(i) for i in range(len(self.times) - 1)]

    def _segment(self, i: int) -> _Segment:
        a, b = self.times[i], self.times[i + 1]
        va, delta = self.values[i], self.values[i + 1] - self.values[i]
        span = Fraction(_us(a, b))
        if delta < 0:
            return _Segment(a, b, va, delta, FillRule.REGISTER_RESET, Quality.MISSING, span)
        if b - a <= self.max_span:
            return _Segment(a, b, va, delta, FillRule.REGISTER, Quality.MEASURED, span)
        if delta == 0:
            return _Segment(a, b, va, delta, FillRule.NO_ADVANCE, Quality.MEASURED, span)
        if self.power.covered_us(a, b) == _us(a, b):
            energy = self.power.energy_kwh(a, b)
            if energy > 0:
                return _Segment(a, b, va, delta, FillRule.GAP_POWER_SHAPED, Quality.ESTIMATED, energy)
        plugged = self.plugged.overlap_us(a, b)
        if plugged > 0:
            return _Segment(a, b, va, delta, FillRule.GAP_PLUGGED_TIME, Quality.ESTIMATED, Fraction(plugged))
        return _Segment(a, b, va, delta, FillRule.GAP_LINEAR, Quality.ESTIMATED, span)

    def _value_at(self, seg: _Segment, t: datetime) -> Decimal:
        """The register at ``t`` inside ``seg``, rounded to 0.1 Wh."""
        if t <= seg.a:
            return _round_kwh(seg.va)
        if t >= seg.b:
            return _round_kwh(seg.va + seg.delta)
        if seg.rule is FillRule.GAP_POWER_SHAPED:
            weight = self.power.energy_kwh(seg.a, t)
        elif seg.rule is FillRule.GAP_PLUGGED_TIME:
            weight = Fraction(self.plugged.overlap_us(seg.a, t))
        else:
            weight = Fraction(_us(seg.a, t))
        return _round_kwh(seg.va + seg.delta * weight / seg.weight_total)

    def _open(self, cell: _Cell, x: datetime, y: datetime, *extra: FillRule) -> None:
        """A span with no register on both sides: power, else idle or missing."""
        total = _us(x, y)
        covered = self.power.covered_us(x, y)
        if covered:
            cell.add(_round_kwh(self.power.energy_kwh(x, y)), Quality.ESTIMATED, FillRule.POWER_INTEGRATION, *extra)
        if covered < total:
            if self.plugged.overlap_us(x, y) > 0:
                cell.add(ZERO, Quality.MISSING, FillRule.MISSING_ZERO, *extra)
            else:
                cell.add(ZERO, Quality.ESTIMATED, FillRule.IDLE_ZERO, *extra)

    def cell(self, qs: datetime, qe: datetime) -> _Cell:
        """The energy of the quarter ``[qs, qe)``."""
        cell = _Cell()
        times = self.times
        if not times:
            self._open(cell, qs, qe)
            return cell
        if qs < times[0]:
            self._open(cell, qs, min(qe, times[0]))
        if qe > times[-1]:
            self._open(cell, max(qs, times[-1]), qe)
        first = max(bisect.bisect_right(times, qs) - 1, 0)
        i = first
        while i < len(self.segments) and self.segments[i].a < qe:
            seg = self.segments[i]
            lo, hi = max(seg.a, qs), min(seg.b, qe)
            if hi > lo:
                if seg.rule is FillRule.REGISTER_RESET:
                    self._open(cell, lo, hi, FillRule.REGISTER_RESET)
                else:
                    cell.add(self._value_at(seg, hi) - self._value_at(seg, lo), seg.quality, seg.rule)
            i += 1
        return cell


def meter_intervals(data: MeterData, start_at: datetime, end_at: datetime, rules: MeteringRules) -> list[MeterInterval]:
    """The EV's intervals over ``[start_at, end_at)`` (both on quarter boundaries)."""
    start_at = ensure_utc(start_at, field="start_at")
    end_at = ensure_utc(end_at, field="end_at")
    for name, value in (("start_at", start_at), ("end_at", end_at)):
        if value != floor_quarter(value):
            msg = f"{name}: {value.isoformat()} is not on a quarter-hour boundary"
            raise SettlementInputError(msg)
    if end_at < start_at:
        msg = "end_at: before start_at"
        raise SettlementInputError(msg)
    plugged = _Plugged(data.plugged)
    where = f"meter[{data.ev_id}]"
    imports = _Direction(data.import_register, data.import_power, plugged, rules, f"{where}.import")
    exports = _Direction(data.export_register, data.export_power, plugged, rules, f"{where}.export")
    intervals = []
    for qs in iter_quarters(start_at, end_at):
        qe = qs + QUARTER
        i, e = imports.cell(qs, qe), exports.cell(qs, qe)
        intervals.append(
            MeterInterval(
                start_at=qs,
                import_kwh=i.kwh.quantize(KWH_QUANTUM),
                export_kwh=e.kwh.quantize(KWH_QUANTUM),
                import_quality=i.quality,
                export_quality=e.quality,
                import_rules=tuple(sorted(i.rules)),
                export_rules=tuple(sorted(e.rules)),
            )
        )
    return intervals


def merge_intervals(stored: Iterable[MeterInterval], fresh: Iterable[MeterInterval]) -> list[MeterInterval]:
    """Merge a fresh computation of one day into its stored snapshot: the fresh intervals replace the
    stored ones as a whole, unless any interval would lose quality (in either direction); then the
    stored ones stay as a whole. Intervals only one side has are kept.

    Telemetry is only ever added to, so a fresh computation knows at least as much as the last one,
    except where retention removed old samples: that shows as a loss of quality, and the snapshot
    made while the samples were there stays. Whole days, never single intervals, are swapped, so
    the energy of a register advance split over several intervals is never counted from two
    different computations.
    """
    old = {iv.start_at: iv for iv in stored}
    new = {iv.start_at: iv for iv in fresh}
    worse = any(
        new[at].import_quality.rank < iv.import_quality.rank or new[at].export_quality.rank < iv.export_quality.rank
        for at, iv in old.items()
        if at in new
    )
    winner, other = (old, new) if worse else (new, old)
    merged = {**other, **winner}
    return [merged[k] for k in sorted(merged)]


def quality_counts(intervals: Iterable[MeterInterval]) -> dict[str, int]:
    """How many intervals are measured, estimated, missing."""
    counts = {q.value: 0 for q in Quality}
    for iv in intervals:
        counts[iv.quality.value] += 1
    return counts
