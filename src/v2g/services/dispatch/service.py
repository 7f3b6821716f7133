"""Frequency dispatch in the operating day: the one dispatch loop, hour by hour, on the platform's clock.

At the start of each delivery hour the service asks for the plan in force and the reserve
commitments of the hour. With nothing committed the hour is idle (no setpoints are sent: the
chargers follow their schedules). With commitments it builds the hour's reserve pool from the plan
(:func:`~v2g.services.operations.reserves.pool_from_plan`), a :class:`CentralDispatcher` whose
setpoints hold until the end of the hour, and runs :func:`run_frequency_dispatch` for the hour on
samples it feeds one by one as the clock passes them. At the end of the hour the loop's delivery
verification closes the hour and the report is kept (the operator view shows the last one).

The hour's delivery is stored as it goes (every ``checkpoint_s`` seconds and at the end of the hour,
one record per bidding group and product, keyed by the clock hour), so a platform killed in a
committed hour loses at most the seconds since the last checkpoint: the restarted platform opens the
hour again, continues its stored record and never stores a second one. A committed hour without a
plan (a restart before the first plan) or without an EV that can answer is looked at again every
few seconds rather than left idle, and an EV whose charger did not accept a setpoint (offline, or
reconnecting after a restart) takes its share again once its charger is back online.

The same service runs on the system clock (paced: a sample is answered when its second has come;
when the loop falls behind it skips to the present rather than answer stale frequency), on the
accelerated demo clock, and on the simulated clock of the twin (``advance_to`` in lock step).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from v2g.dispatch.pool import ReservePool
from v2g.dispatch.verification import DeliveryRecord, merge_delivery, split_delivery
from v2g.markets.commitments import Commitment
from v2g.markets.rules import MarketRules, Product
from v2g.planning.model import FleetPlan
from v2g.services.clock import RuntimeClock
from v2g.services.devices.ports import ChargerGateway
from v2g.services.dispatch.central import CentralDispatcher
from v2g.services.dispatch.loop import DispatchReport, HourPlan, run_frequency_dispatch
from v2g.services.dispatch.ports import DeliveryLog, DispatchedFleet, FrequencyFeed, FrequencySample
from v2g.services.operations.reserves import committed_kw_at, pool_from_plan
from v2g.units import HOUR, QUARTER, ensure_utc, floor_hour

log = logging.getLogger("v2g.dispatch")

SECOND = timedelta(seconds=1)
MAX_LAG = timedelta(seconds=5)  # a live dispatcher answers the present frequency, not a backlog
RETRY = timedelta(seconds=2)  # a committed hour without a plan or an answering EV is looked at again this often
REJOIN_EVERY_S = 5  # how often EVs taken out of the hour's pool are offered their share again


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
    dispatcher: CentralDispatcher
    committed_kw: dict[str, float]
    plan: FleetPlan
    commitments: list[Commitment]
    stored: dict[tuple[str, Product], DeliveryRecord]  # what earlier runs of this hour kept (a restart)
    task: asyncio.Task[DispatchReport] = field(init=False)  # the hour's loop


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
    delivery: DeliveryLog | None = None  # where each hour's delivery is kept (None: in memory only)
    checkpoint_s: int = 60  # how often the delivery of the hour under way is kept
    reports: list[DispatchReport] = field(default_factory=list)
    next_at: datetime | None = None
    last_sample: FrequencySample | None = None
    skipped_s: int = 0
    _hour: _RunningHour | None = None
    _idle_until: datetime | None = None
    _warned_at: datetime | None = None

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
                wait_until = await self._open_hour(floor_hour(at), at)
                if wait_until is not None:
                    self._idle_until = wait_until
                    at = min(self._idle_until, until)
                    continue
            assert self._hour is not None
            if at.second == 0 and at.minute % 15 == 0 and at > self._hour.start_at:
                self._rebase(at)
            if at.second % REJOIN_EVERY_S == 0:
                await self._rejoin(self._hour)
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
    async def _open_hour(self, hour_start_at: datetime, at: datetime) -> datetime | None:
        """Start the hour's loop at ``at``; else the time to look again (the hour's end when nothing is committed)."""
        self._idle_until = None
        end_at = hour_start_at + HOUR
        commitments = list(self.commitments(hour_start_at, end_at))
        committed = committed_kw_at(commitments, hour_start_at)
        if not commitments or not any(v > 0 for v in committed.values()):
            return end_at
        plan = self.latest_plan()
        pool = pool_from_plan(plan, at, self.limits_kw(), self.online()) if plan is not None else None
        if plan is None or pool is None or not len(pool):
            if self._warned_at != hour_start_at:
                self._warned_at = hour_start_at
                why = "no plan yet" if plan is None else "no EV of the plan can answer"
                log.warning("hour %s: %d commitments but %s; looking again", hour_start_at, len(commitments), why)
            return min(at + RETRY, end_at)
        stored: dict[tuple[str, Product], DeliveryRecord] = {}
        if self.delivery is not None:
            kept = await asyncio.to_thread(self.delivery.delivered, hour_start_at)
            stored = {(r.group_id, r.product): r for r in kept}
        dispatcher = CentralDispatcher(
            pool, committed, self.gateway, self.rules, valid_until=hour_start_at + HOUR, deadband_kw=self.deadband_kw
        )
        providing = np.ones(len(pool), dtype=bool)
        source = _Samples()
        hour = _RunningHour(
            hour_start_at,
            source,
            dispatcher,
            {p.value: v for p, v in committed.items()},
            plan,
            commitments,
            stored,
        )

        async def checkpoint(records: list[DeliveryRecord]) -> None:
            try:
                await self._keep(hour, records)
            except Exception:  # storage failing never stops the dispatch; the next checkpoint tries again
                log.exception("dispatch hour %s: delivery so far not stored", hour_start_at.isoformat())

        hour.task = asyncio.create_task(
            run_frequency_dispatch(
                source,
                dispatcher,
                self.fleet_for(pool),
                group_id=self.group_id,
                plan_hour=lambda _at: HourPlan(commitments, committed, providing),
                rules=self.rules,
                checkpoint=checkpoint if self.delivery is not None else None,
                checkpoint_every_s=self.checkpoint_s,
            )
        )
        self._hour = hour
        log.info(
            "dispatch hour %s: %s kW committed, %d EVs in the pool%s",
            hour_start_at.isoformat(),
            {p.value: round(v, 1) for p, v in committed.items()},
            len(pool),
            f", continuing {max(r.seconds for r in stored.values())} s kept before" if stored else "",
        )
        return None

    async def _keep(self, hour: _RunningHour, records: Sequence[DeliveryRecord]) -> None:
        """Store the hour's delivery so far: this run's records per group, after what earlier runs kept."""
        if self.delivery is None:
            return
        rows = []
        for record in records:
            fleet = replace(record, hour_start_at=hour.start_at)  # the clock hour, wherever this run began
            for part in split_delivery(fleet, hour.commitments, self.rules):
                before = hour.stored.get((part.group_id, part.product))
                rows.append(part if before is None else merge_delivery(before, part, self.rules))
        if rows:
            await asyncio.to_thread(self.delivery.save, rows)

    async def _rejoin(self, hour: _RunningHour) -> None:
        """EVs taken out of the pool (their charger did not accept) take their share again once it is online."""
        pool = hour.dispatcher.pool
        if bool(pool.available.all()):
            return
        online = await asyncio.to_thread(self.online)
        for i, charger_id in enumerate(pool.charger_ids):
            if not pool.available[i] and charger_id in online:
                pool.available[i] = True

    def _rebase(self, at: datetime) -> None:
        """A new quarter: each pool EV's baseline power is what the plan in force gives it for the quarter.

        The pool (its EVs and their reserve) stays the hour's; the baseline follows re-plans made since
        the hour began, so that energy an activation took is made up before the EV leaves. An EV the
        plan in force no longer holds (it left, or leaves within the quarter) has a baseline of 0. The
        owner's departure comes first: where a new baseline leaves an EV less room for its share of the
        hour's reserve, the allocation gives the rest to the pool's other EVs (never past a charger's
        limits)."""
        hour = self._hour
        assert hour is not None
        pool = hour.dispatcher.pool
        plan = self.latest_plan()
        if plan is None or not 0 <= int((at - plan.start_at) / QUARTER) < plan.n_intervals:
            fresh = pool_from_plan(hour.plan, at, self.limits_kw())
            if fresh.ev_ids == pool.ev_ids:
                pool.baseline_p_kw[:] = fresh.baseline_p_kw
            return
        k = int((at - plan.start_at) / QUARTER)
        by_ev = {p.ev_id: p for p in plan.ev_plans}
        for i, ev_id in enumerate(pool.ev_ids):
            ev_plan = by_ev.get(ev_id)
            value = float(ev_plan.p_kw[k]) if ev_plan is not None else 0.0
            pool.baseline_p_kw[i] = value if np.isfinite(value) else 0.0

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
        try:
            await self._keep(hour, report.records)
        except Exception:  # the report stays in memory; the operator sees the failure in the log
            log.exception("dispatch hour %s: delivery not stored", hour.start_at.isoformat())
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
