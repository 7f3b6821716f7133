"""The grid signals the platform accepted (OpenADR price and limit events, DSO limits), as planner inputs.

Every grid-operator interface delivers accepted signals here (it is a ``GridSignalSink``); the
planning cycle asks it for the import/export limits and price overrides that hold in each quarter
of its horizon. A limit signal (import, export or both) only ever tightens the static limit of the
area's record; a later signal for the same area and time replaces an earlier one (a DSO's update or
cancellation); :meth:`GridSignalBook.withdraw` forgets every signal of a cancelled event, and
:meth:`GridSignalBook.replace_limits` takes an interface's whole set of limits at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from v2g.services.planning.grid_signals import LimitSignal, PriceSignal
from v2g.units import QUARTER, ensure_utc

log = logging.getLogger("v2g.signals")


@dataclass
class GridSignalBook:
    """Accepted price and limit signals, newest first per area, pruned once they have ended."""

    _limits: dict[str, list[LimitSignal]] = field(default_factory=dict)
    _prices: dict[str, list[PriceSignal]] = field(default_factory=dict)
    listeners: list[Callable[[str], None]] = field(default_factory=list)
    received: int = 0

    # ------------------------------------------------------------------ GridSignalSink
    def prices(self, signals: Sequence[PriceSignal]) -> None:
        for s in signals:
            self._prices.setdefault(s.grid_area_id, []).insert(0, s)
            self.received += 1
        self._changed({s.grid_area_id for s in signals})

    def limits(self, signals: Sequence[LimitSignal]) -> None:
        for s in signals:
            self._check(s)
            self._limits.setdefault(s.grid_area_id, []).insert(0, s)
            self.received += 1
        self._changed({s.grid_area_id for s in signals})

    def withdraw(self, ref: str) -> set[str]:
        """Forget every signal that came from ``ref`` (a cancelled or replaced event); the areas it touched."""
        areas: set[str] = set()
        for book in (self._limits, self._prices):
            for area, signals in book.items():
                kept = [s for s in signals if s.ref != ref]
                if len(kept) != len(signals):
                    areas.add(area)
                    book[area] = kept  # type: ignore[assignment]
        if areas:
            self._changed(areas)
        return areas

    def replace_limits(self, area_id: str, source: str, signals: Sequence[LimitSignal]) -> None:
        """Withdraw every limit of ``source`` for ``area_id`` and take ``signals`` (all of that area and source).

        An interface that knows the whole set of limits in force (IEEE 2030.5 controls, cancellations
        included) hands the set over each time it changes; an empty set lifts its limits.
        """
        if not source:
            msg = f"limit[{area_id}].source: a replacing interface must name itself"
            raise ValueError(msg)
        for s in signals:
            if (s.grid_area_id, s.source) != (area_id, source):
                msg = f"limit[{s.grid_area_id}].source: {s.source!r} is not {source!r} for area {area_id}"
                raise ValueError(msg)
            self._check(s)
        kept = [s for s in self._limits.get(area_id, []) if s.source != source]
        self._limits[area_id] = list(reversed(signals)) + kept
        self.received += len(signals)
        self._changed({area_id})

    @staticmethod
    def _check(s: LimitSignal) -> None:
        if s.end_at <= s.start_at:
            msg = f"limit[{s.grid_area_id}].end_at: {s.end_at.isoformat()} is not after start_at"
            raise ValueError(msg)
        for name, value in (("import_limit_kw", s.import_limit_kw), ("export_limit_kw", s.export_limit_kw)):
            if value is not None and not value >= 0:
                msg = f"limit[{s.grid_area_id}].{name}: {value} must be >= 0"
                raise ValueError(msg)
        if s.export_limit_kw is not None and not math.isfinite(s.export_limit_kw):
            msg = f"limit[{s.grid_area_id}].export_limit_kw: {s.export_limit_kw} must be a finite number >= 0"
            raise ValueError(msg)
        if s.import_limit_kw is None and s.export_limit_kw is None:
            msg = f"limit[{s.grid_area_id}]: neither import_limit_kw nor export_limit_kw is set"
            raise ValueError(msg)

    def _changed(self, areas: set[str]) -> None:
        for area in sorted(areas):
            log.info("grid signal accepted for area %s", area)
            for listener in self.listeners:
                listener(area)

    # ------------------------------------------------------------------ planner inputs
    def import_limits_kw(self, area_id: str, static_kw: float, start_at: datetime, n: int) -> tuple[float, ...]:
        """The import limit in each of ``n`` quarters from ``start_at``: the static one, or a signal's if lower."""
        return self._limits_kw(area_id, static_kw, start_at, n, export=False)

    def export_limits_kw(self, area_id: str, static_kw: float, start_at: datetime, n: int) -> tuple[float, ...]:
        """The export limit in each of ``n`` quarters from ``start_at``: the static one, or a signal's if lower."""
        return self._limits_kw(area_id, static_kw, start_at, n, export=True)

    def _limits_kw(
        self, area_id: str, static_kw: float, start_at: datetime, n: int, *, export: bool
    ) -> tuple[float, ...]:
        start_at = ensure_utc(start_at, field="start_at")
        signals = [(s, s.export_limit_kw if export else s.import_limit_kw) for s in self._limits.get(area_id, [])]
        out: list[float] = []
        for k in range(n):
            q0 = start_at + k * QUARTER
            q1 = q0 + QUARTER
            limit = static_kw
            for s, value in signals:  # newest first: the first one covering the quarter (on this side) holds
                if value is not None and math.isfinite(value) and s.start_at < q1 and s.end_at > q0:
                    limit = min(static_kw, value)
                    break
            out.append(limit)
        return tuple(out)

    def price_overrides(self, area_id: str, start_at: datetime, n: int) -> dict[int, float]:
        """Quarter index -> price (EUR/MWh) where a price signal for the area covers the quarter."""
        start_at = ensure_utc(start_at, field="start_at")
        signals = self._prices.get(area_id, [])
        out: dict[int, float] = {}
        for k in range(n):
            q0 = start_at + k * QUARTER
            for s in signals:
                if s.start_at <= q0 < s.end_at:
                    out[k] = s.price_eur_per_mwh
                    break
        return out

    def active_limits(self, at: datetime) -> list[LimitSignal]:
        """Limit signals in force or announced at ``at``."""
        return [s for signals in self._limits.values() for s in signals if s.end_at > at]

    def prune(self, before: datetime, keep: timedelta = timedelta(days=1)) -> int:
        """Forget signals that ended more than ``keep`` before ``before``."""
        cut = before - keep
        dropped = 0
        for book in (self._limits, self._prices):
            for area, signals in book.items():
                kept = [s for s in signals if s.end_at > cut]
                dropped += len(signals) - len(kept)
                book[area] = kept  # type: ignore[assignment]
        return dropped
