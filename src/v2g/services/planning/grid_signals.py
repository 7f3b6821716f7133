"""Utility and DSO signals (OpenADR 2.0b events) mapped onto the planner's inputs, with opt-in rules.

Pure: the OpenADR adapter turns events into :class:`SignalInterval` lists; this module decides
opt-in or opt-out and produces :class:`PriceSignal` (EUR/MWh per interval) and :class:`LimitSignal`
(import limit of a grid area in kW per interval) for the planner, through a :class:`GridSignalSink`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

PRICE_SIGNALS = {"ELECTRICITY_PRICE", "ENERGY_PRICE"}
LIMIT_SIGNALS = {"LOAD_DISPATCH", "LOAD_CONTROL", "SIMPLE", "simple"}


@dataclass(frozen=True, slots=True)
class SignalInterval:
    """One interval of an event signal."""

    start_at: datetime
    duration: timedelta
    value: float

    @property
    def end_at(self) -> datetime:
        return self.start_at + self.duration


@dataclass(frozen=True, slots=True)
class PriceSignal:
    grid_area_id: str
    start_at: datetime
    end_at: datetime
    price_eur_per_mwh: float
    ref: str | None = None  # the event it came from (withdrawn with it), e.g. "openadr3:event/42"


@dataclass(frozen=True, slots=True)
class LimitSignal:
    """A grid area's import limit (and optionally its export limit) in kW from ``start_at`` to ``end_at``.

    ``import_limit_kw=None`` (or ``inf``) leaves the import side to other signals (an export-only limit);
    ``export_limit_kw=None`` (the default) leaves the export side alone. ``source`` names the interface
    that owns the signal where it replaces its own signals as a whole (IEEE 2030.5 controls).
    """

    grid_area_id: str
    start_at: datetime
    end_at: datetime
    import_limit_kw: float | None
    export_limit_kw: float | None = None
    source: str = ""
    ref: str | None = None  # the event it came from (withdrawn with it), e.g. "openadr3:event/42"


@dataclass(frozen=True, slots=True)
class Decision:
    opt: str  # "optIn" | "optOut"
    reason: str
    prices: tuple[PriceSignal, ...] = ()
    limits: tuple[LimitSignal, ...] = ()


class GridSignalSink(Protocol):
    """Where accepted signals go (the planner's price and grid-limit inputs)."""

    def prices(self, signals: Sequence[PriceSignal]) -> None: ...

    def limits(self, signals: Sequence[LimitSignal]) -> None: ...


@runtime_checkable
class LimitReplacer(Protocol):
    """A sink that takes the whole set of one source's limits for an area at once (withdrawing the previous set)."""

    def replace_limits(self, area_id: str, source: str, signals: Sequence[LimitSignal]) -> None: ...


@dataclass
class OptRules:
    """When the aggregator takes part in an event.

    * Prices are information: taken unless ``accept_prices`` is off.
    * A load limit is taken when notified at least ``min_notice`` ahead and when it leaves the
      area at least ``min_limit_kw`` (what the fleet needs to meet the owners' departure targets);
      otherwise the VEN opts out and says why.
    * ``simple`` levels 1-3 map to fractions of the area's import limit (``level_fractions``).
    """

    area_import_limit_kw: Mapping[str, float]
    min_limit_kw: float = 0.0
    min_notice: timedelta = timedelta(0)
    accept_prices: bool = True
    price_per_kwh: bool = True
    level_fractions: Mapping[int, float] = field(default_factory=lambda: {0: 1.0, 1: 0.75, 2: 0.5, 3: 0.25})

    def decide(
        self,
        *,
        signal_name: str,
        signal_type: str,
        grid_area_id: str,
        intervals: Sequence[SignalInterval],
        now: datetime,
    ) -> Decision:
        if not intervals:
            return Decision("optOut", "event has no intervals")
        if grid_area_id not in self.area_import_limit_kw:
            return Decision("optOut", f"grid area {grid_area_id!r} is not served by this aggregator")
        if signal_name in PRICE_SIGNALS:
            if not self.accept_prices:
                return Decision("optOut", "price events are not taken")
            factor = 1000.0 if self.price_per_kwh else 1.0
            prices = tuple(PriceSignal(grid_area_id, i.start_at, i.end_at, i.value * factor) for i in intervals)
            return Decision("optIn", "price information", prices=prices)
        if signal_name in LIMIT_SIGNALS:
            area_kw = self.area_import_limit_kw[grid_area_id]
            limits = []
            kws: list[float] = []
            for i in intervals:
                if signal_type in ("setpoint", "x-loadControlSetpoint"):
                    limit_kw = i.value
                elif signal_type in ("x-loadControlCapacity", "multiplier"):
                    limit_kw = area_kw * i.value
                elif signal_type == "level":
                    fraction = self.level_fractions.get(int(i.value))
                    if fraction is None:
                        return Decision("optOut", f"level {i.value} has no configured limit")
                    limit_kw = area_kw * fraction
                else:
                    return Decision("optOut", f"signal type {signal_type!r} is not supported for {signal_name}")
                limits.append(LimitSignal(grid_area_id, i.start_at, i.end_at, limit_kw))
                kws.append(limit_kw)
            first = min(i.start_at for i in intervals)
            if first - now < self.min_notice:
                return Decision("optOut", f"notice {first - now} is shorter than {self.min_notice}")
            tightest = min(kws)
            if tightest < self.min_limit_kw:
                return Decision(
                    "optOut", f"limit {tightest:.1f} kW is below the fleet's minimum {self.min_limit_kw:.1f} kW"
                )
            return Decision("optIn", "grid limit accepted", limits=tuple(limits))
        return Decision("optOut", f"signal {signal_name!r} is not used by the platform")
