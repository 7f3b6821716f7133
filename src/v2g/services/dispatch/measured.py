"""The dispatched fleet as the chargers report it: power and SoC from their latest meter values."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from v2g.dispatch.ler import EnergyState
from v2g.dispatch.pool import BoolArray, FloatArray, ReservePool
from v2g.planning.model import EvSession
from v2g.services.clock import Clock
from v2g.services.dispatch.ports import FrequencySample


@dataclass(frozen=True, slots=True)
class LatestReading:
    """A charger's latest reported power (kW, positive = charging the EV) and the EV's SoC."""

    p_kw: float | None
    soc_percent: float | None
    measured_at: datetime | None
    online: bool


ReadingsReader = Callable[[Sequence[str]], Mapping[str, LatestReading]]
"""The latest readings of these chargers (one query for all)."""


class MeasuredFleet:
    """A :class:`~v2g.services.dispatch.ports.DispatchedFleet` over reported meter values.

    Readings are fetched at most every ``refresh`` of platform time (chargers report every few
    seconds); a charger is counted as answering while it is online and its last reading is younger
    than ``stale``.
    """

    def __init__(
        self,
        pool: ReservePool,
        sessions: Mapping[str, EvSession],
        readings: ReadingsReader,
        clock: Clock,
        *,
        refresh: timedelta = timedelta(seconds=5),
        stale: timedelta = timedelta(seconds=60),
    ) -> None:
        self.pool = pool
        self.readings = readings
        self.clock = clock
        self.refresh = refresh
        self.stale = stale
        n = len(pool)
        missing = [e for e in pool.ev_ids if e not in sessions]
        if missing:  # the pool comes from the plan, and the plan from these sessions
            msg = f"sessions: no planning session for the pooled EV(s) {', '.join(missing)}"
            raise ValueError(msg)
        planned = [sessions[e] for e in pool.ev_ids]
        self.battery_kwh = np.array([s.battery_kwh for s in planned])
        self.min_kwh = np.array([s.min_soc_kwh for s in planned])
        self.soc_kwh = np.array([s.soc_kwh for s in planned])
        self.p_kw = pool.baseline_p_kw.copy()
        self.answering = np.zeros(n, dtype=bool)
        self._fetched_at: datetime | None = None

    def energy(self) -> EnergyState:
        return EnergyState(self.soc_kwh.copy(), self.min_kwh.copy(), self.battery_kwh.copy())

    async def measure(self, sample: FrequencySample, step_s: float) -> tuple[FloatArray, BoolArray]:
        now = self.clock.now()
        if self._fetched_at is None or now - self._fetched_at >= self.refresh:
            latest = await asyncio.to_thread(self.readings, self.pool.charger_ids)
            self._fetched_at = now
            for i, charger_id in enumerate(self.pool.charger_ids):
                r = latest.get(charger_id)
                fresh = r is not None and r.online and r.measured_at is not None and now - r.measured_at <= self.stale
                self.answering[i] = fresh
                if r is not None and r.p_kw is not None:
                    self.p_kw[i] = r.p_kw
                if r is not None and r.soc_percent is not None:
                    self.soc_kwh[i] = r.soc_percent / 100.0 * self.battery_kwh[i]
        return self.p_kw.copy(), self.answering.copy()
