"""Frequency dispatch in the operating day: the one dispatch loop, hour by hour, on the platform's clock.

At the start of each delivery hour the service asks for the plan in force and the reserve
commitments of the hour. With nothing committed the hour is idle (no setpoints are sent: the
chargers follow their schedules). With commitments it builds the hour's reserve pool from the plan
(:func:`~v2g.services.operations.reserves.pool_from_plan`), a :class:`CentralDispatcher` whose
setpoints hold until the end of the hour, and runs :func:`run_frequency_dispatch` for the hour on
samples it feeds one by one as the clock passes them. At the end of the hour the loop's delivery
verification closes the hour and the report is kept (the operator view shows the last one).

The same service runs on the system clock (paced: a sample is answered when its second has come;
when the loop falls behind it skips to the present rather than answer stale frequency), on the
accelerated demo clock, and on the simulated clock of the twin (``advance_to`` in lock step).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from v2g.dispatch.pool import ReservePool
from v2g.markets.commitments import Commitment
from v2g.markets.rules import MarketRules
from v2g.planning.model import FleetPlan
from v2g.services.clock import RuntimeClock
from v2g.services.devices.ports import ChargerGateway
from v2g.services.dispatch.central import CentralDispatcher
from v2g.services.dispatch.loop import DispatchReport, HourPlan, run_frequency_dispatch
from v2g.services.dispatch.ports import DispatchedFleet, FrequencyFeed, FrequencySample
from v2g.services.operations.reserves import committed_kw_at, pool_from_plan
from v2g.units import HOUR, ensure_utc, floor_hour

log = logging.getLogger("v2g.dispatch")

SECOND = timedelta(seconds=1)
MAX_LAG = timedelta(seconds=5)  # a live dispatcher answers the present frequency, not a backlog


@dataclass(frozen=True, slots=True)
class DispatchStatus:
    """The last sample answered and the last hour verified (for the operator's view)."""

    at: datetime
    f_hz: float
    evs: int
    committed_kw: dict[str, float]
    hours_run: int
    last_hour: DispatchReport | None


class _Samples:
    """The hour's frequency source: samples are put in as the clock passes them; ``None`` ends the hour.

    ``ready`` is set while the loop waits for its next sample, i.e. once it has answered the last one.
    """

    step_s = 1.0

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[FrequencySample | None] = asyncio.Queue()
        self.ready = asyncio.Event()

    async def samples(self) -> AsyncIterator[FrequencySample]:
        while True:
            self.ready.set()
            sample = await self.inbox.get()
            if sample is None:
                return
            yield sample


@dataclass
class _RunningHour:
    start_at: datetime
    source: _Samples
    task: asyncio.Task[DispatchReport]
    dispatcher: CentralDispatcher
    committed_kw: dict[str, float]
    plan: FleetPlan


@dataclass
class FrequencyDispatch:
    """Drives the dispatch loop hour by hour from a :class:`FrequencyFeed` (see the module docstring)."""

    feed: FrequencyFeed
    gateway: ChargerGateway
    rules: MarketRules
    clock: RuntimeClock
    latest_plan: Callable[[], FleetPlan | None]
    commitments: Callable[[datetime, datetime], Sequence[Commitment]]
    limits_kw: Callable[[], Mapping[str, tuple[float, float]]]
    online: Callable[[], set[str]]
    fleet_for: Callable[[ReservePool], DispatchedFleet]
    group_id: str = "fleet"
    deadband_kw: float = 0.1  # a charger gets a new setpoint when its share moves by this much
    reports: list[DispatchReport] = field(default_factory=list)
    next_at: datetime | None = None
    last_sample: FrequencySample | None = None
    skipped_s: int = 0
    _hour: _RunningHour | None = None
    _idle_until: datetime | None = None

    # ------------------------------------------------------------------ stepping
    async def advance_to(self, until: datetime) -> None:
        """Answer every second before ``until`` (idle hours are passed over at once)."""
        until = ensure_utc(until, field="until")
        at = self.next_at or min(self.clock.now(), until).replace(microsecond=0)
        while at < until:
            if self._hour is None or at >= self._hour.start_at + HOUR:
                if self._idle_until is not None and at < self._idle_until:
                    at = min(self._idle_until, until)
                    continue
                await self._close_hour()
                if not await self._open_hour(floor_hour(at), at):
                    self._idle_until = floor_hour(at) + HOUR
                    at = min(self._idle_until, until)
                    continue
            assert self._hour is not None
            if at.second == 0 and at.minute % 15 == 0 and at > self._hour.start_at:
                self._rebase(at)
            f_hz = self.feed.f_hz_at(at)
            sample = FrequencySample(at, f_hz)
            await self._feed(self._hour, sample)
            self.last_sample = sample
            at += SECOND
        self.next_at = at

    async def run_forever(self) -> None:
        """Paced by the clock: each second is answered when it has come."""
        while True:
            now = self.clock.now()
            at = self.next_at or now.replace(microsecond=0)
            if now - at > MAX_LAG:
                self.skipped_s += int((now - at).total_seconds())
                at = now.replace(microsecond=0)
                self.next_at = at
            if self._hour is None and self._idle_until is not None and at < self._idle_until:
                await self.clock.sleep_until(self._idle_until)
                continue
            await self.clock.sleep_until(at)
            await self.advance_to(at + SECOND)

    async def stop(self) -> None:
        """Close the running hour (its delivery is verified on what was answered so far)."""
        await self._close_hour()

    # ------------------------------------------------------------------ hours
    async def _open_hour(self, hour_start_at: datetime, at: datetime) -> bool:
        self._idle_until = None
        plan = self.latest_plan()
        commitments = list(self.commitments(hour_start_at, hour_start_at + HOUR))
        committed = committed_kw_at(commitments, hour_start_at)
        if plan is None or not commitments or not any(v > 0 for v in committed.values()):
            return False
        pool = pool_from_plan(plan, at, self.limits_kw(), self.online())
        if not len(pool):
            log.warning("hour %s: %d commitments but no EV of the plan can answer", hour_start_at, len(commitments))
            return False
        dispatcher = CentralDispatcher(
            pool, committed, self.gateway, self.rules, valid_until=hour_start_at + HOUR, deadband_kw=self.deadband_kw
        )
        providing = np.ones(len(pool), dtype=bool)
        source = _Samples()
        task = asyncio.create_task(
            run_frequency_dispatch(
                source,
                dispatcher,
                self.fleet_for(pool),
                group_id=self.group_id,
                plan_hour=lambda _at: HourPlan(commitments, committed, providing),
                rules=self.rules,
            )
        )
        self._hour = _RunningHour(
            hour_start_at, source, task, dispatcher, {p.value: v for p, v in committed.items()}, plan
        )
        log.info(
            "dispatch hour %s: %s kW committed, %d EVs in the pool",
            hour_start_at.isoformat(),
            {p.value: round(v, 1) for p, v in committed.items()},
            len(pool),
        )
        return True

    def _rebase(self, at: datetime) -> None:
        """A new quarter: the EVs' baseline power is the plan's for it (same EVs, same order)."""
        hour = self._hour
        assert hour is not None
        fresh = pool_from_plan(hour.plan, at, self.limits_kw())
        if fresh.ev_ids == hour.dispatcher.pool.ev_ids:
            hour.dispatcher.pool.baseline_p_kw[:] = fresh.baseline_p_kw

    async def _feed(self, hour: _RunningHour, sample: FrequencySample | None) -> None:
        """Hand one sample to the hour's loop and wait until it has answered it."""
        await self._answered(hour)
        hour.source.ready.clear()
        await hour.source.inbox.put(sample)
        if sample is not None:
            await self._answered(hour)

    @staticmethod
    async def _answered(hour: _RunningHour) -> None:
        if not hour.source.ready.is_set():
            waiter = asyncio.ensure_future(hour.source.ready.wait())
            await asyncio.wait({waiter, hour.task}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
        if hour.task.done() and hour.task.exception() is not None:  # the loop failed: surface its error
            hour.task.result()

    async def _close_hour(self) -> None:
        hour = self._hour
        if hour is None:
            return
        self._hour = None
        if not hour.task.done():
            await self._feed(hour, None)
        try:
            report = await hour.task
        except Exception:
            log.exception("dispatch hour %s failed", hour.start_at.isoformat())
            return
        self.reports.append(report)
        del self.reports[:-48]
        log.info(
            "dispatch hour %s verified: %d s, required %.3f MWh, delivered %.3f MWh, repayment %s EUR",
            hour.start_at.isoformat(),
            report.seconds,
            report.required_mwh,
            report.delivered_mwh,
            report.repayment_eur,
        )

    # ------------------------------------------------------------------ view
    def status(self) -> DispatchStatus | None:
        """The last sample answered (None before the first)."""
        if self.last_sample is None:
            return None
        hour = self._hour
        return DispatchStatus(
            at=self.last_sample.at,
            f_hz=self.last_sample.f_hz,
            evs=len(hour.dispatcher.pool) if hour is not None else 0,
            committed_kw=dict(hour.committed_kw) if hour is not None else {},
            hours_run=len(self.reports),
            last_hour=self.reports[-1] if self.reports else None,
        )
