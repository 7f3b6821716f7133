"""The planning cycle of the operating day: plugged-in EVs and their needs in, plans to the chargers out.

Every quarter hour (a scheduled job) the cycle collects the EVs plugged in now, what is known of
their needs (ISO 15118 needs, SoC telemetry, the owner's preferences, defaults), the grid areas'
limits (static records tightened by accepted DSO/utility signals), the prices and the reserve
commitments already sold, runs the :class:`~v2g.planning.planner.FleetPlanner` and sends each EV's
schedule through the :class:`ChargerGateway`. Between cycles, a change (plug-in, unplug, new
needs, a rejected profile, a missed setpoint or a SoC deviation) marks the EV, and the next
re-plan check re-plans on the same horizon with :meth:`FleetPlanner.replan`, which solves only
what changed.

The planner runs in a worker thread, so the event loop (CSMS, API, dispatch) keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol

import numpy as np

from v2g.devices.commands import summarise_acks
from v2g.fleet.model import PriceArea
from v2g.planning.files import plan_to_json
from v2g.planning.model import (
    PRODUCTS,
    EvSession,
    FleetPlan,
    GridAreaLimits,
    PlanningProblem,
    Product,
    ReserveCommitment,
    SiteLimits,
    Strategy,
)
from v2g.planning.planner import FleetPlanner
from v2g.planning.rules import PlanningRules
from v2g.services.clock import Clock
from v2g.services.devices.ports import Ack, AckStatus, ChargerGateway
from v2g.services.planning.ports import FleetStateReader, PlanStore, PluggedEv
from v2g.services.planning.sessions import (
    charge_only,
    planned_soc_at,
    top_up_departure_quarters,
    within_horizon,
)
from v2g.services.planning.signal_book import GridSignalBook
from v2g.units import QUARTER, STOCKHOLM, floor_hour, floor_quarter, to_local

log = logging.getLogger("v2g.planning")


class PriceProvider(Protocol):
    """Day-ahead and reserve prices for a horizon (recorded, replayed or live)."""

    def day_ahead_eur_per_mwh(self, area: PriceArea, start_at: datetime, n_quarters: int) -> tuple[float, ...]: ...

    def reserve_eur_per_mw_h(self, product: Product, start_at: datetime, n_hours: int) -> tuple[float, ...]: ...


class CommitmentReader(Protocol):
    """Reserve capacity already sold (accepted bids) in a time window, per price area, product and hour."""

    def reserve_commitments(self, start_at: datetime, end_at: datetime) -> Sequence[ReserveCommitment]: ...


SessionBuilder = Callable[[PluggedEv, datetime, datetime], tuple[EvSession, dict[str, str]]]
"""Builds an EV's planner session from what is known about it: (ev, now, horizon end) -> (session, sources)."""


@dataclass(frozen=True, slots=True)
class CycleConfig:
    """How the cycle plans: the horizon, the strategy, how often from scratch, and the change tolerances.

    The horizon runs from the current clock hour to the end of the last local day whose day-ahead
    prices are published (``prices_published_local``, 13:00 Swedish time for the next day), and is
    at least ``min_horizon`` long. A fresh plan is made every ``full_plan_every``; in between, the
    quarter-hourly cycle re-plans only the EVs that changed (their old sessions are kept unchanged,
    so the planner re-uses their optimum).
    """

    strategy: Strategy = Strategy.V2G_RESERVES
    prices_published_local: time = time(13, 0)
    min_horizon: timedelta = timedelta(hours=12)
    full_plan_every: timedelta = timedelta(hours=1)
    soc_tolerance_kwh: float = 2.0  # re-plan an EV whose SoC left the plan's path by more than this
    # ... or, in the last hours before its departure, fell behind the path by more than this (reserve
    # activations move energy; what they took is made up while there is still time)
    departure_soc_tolerance_kwh: float = 0.1
    departure_window: timedelta = timedelta(hours=2)
    setpoint_tolerance_kw: float = 1.5  # ... or whose measured power missed the plan by more than this


@dataclass
class CycleResult:
    """What one planning run did."""

    at: datetime
    trigger: str
    plan: FleetPlan | None
    problem: PlanningProblem | None
    acks: list[Ack]
    sources: dict[str, dict[str, str]]
    plan_id: int | None = None
    excluded: dict[str, str] = field(default_factory=dict)

    def status_line(self) -> str:
        if self.plan is None:
            return f"{self.trigger}: no EV plugged in"
        counts = {k.value: v for k, v in summarise_acks(self.acks).items()}
        bids = sum(1 for b in self.plan.bids if b.mw > 0)
        discharging = sum(1 for p in self.plan.ev_plans if float(np.min(p.p_kw, initial=0.0)) < 0)
        return (
            f"{self.trigger}: {len(self.plan.ev_plans)} EVs planned ({self.plan.status}), "
            f"{discharging} with discharge, {bids} reserve bids offered, "
            f"objective {self.plan.objective_eur:.2f} EUR, {len(self.plan.shortfalls)} shortfalls; "
            f"schedules {counts}"
        )


class PlanningCycle:
    """Plans the plugged-in fleet and sends the schedules; re-plans what changed in between."""

    def __init__(
        self,
        *,
        fleet: FleetStateReader,
        prices: PriceProvider,
        signals: GridSignalBook,
        plans: PlanStore,
        gateway: ChargerGateway,
        clock: Clock,
        rules: PlanningRules,
        build_session: SessionBuilder,
        commitments: CommitmentReader | None = None,
        planner: FleetPlanner | None = None,
        config: CycleConfig | None = None,
    ) -> None:
        self.fleet = fleet
        self.prices = prices
        self.signals = signals
        self.plans = plans
        self.gateway = gateway
        self.clock = clock
        self.rules = rules
        self.build_session = build_session
        self.commitments = commitments
        self.planner = planner or FleetPlanner()
        self.config = config or CycleConfig()
        self.last: CycleResult | None = None
        self.changed: dict[str, str] = {}  # ev or charger id -> why it needs a new plan
        self.rejected: dict[str, str] = {}  # charger id -> why it refused its last schedule
        # EVs the last plan left out because they were due to leave before its first quarter -> that quarter's
        # start (still plugged in then, the owner did not leave: they are planned for their next departure)
        self.leaving: dict[str, datetime] = {}
        self._lock = asyncio.Lock()
        signals.listeners.append(lambda area: self.mark_changed(f"area:{area}", "new grid signal"))

    # ------------------------------------------------------------------ events
    def commitments_changed(self, accepted: int) -> None:
        """Bids were accepted: the next re-plan check plans the whole fleet so that it holds them."""
        self.mark_changed("market", f"{accepted} bids accepted")

    def mark_changed(self, key: str, reason: str) -> None:
        """An EV (or a charger, or an area) changed: the next re-plan check plans again."""
        self.changed.setdefault(key, reason)

    # ------------------------------------------------------------------ jobs
    def horizon_end(self, start_at: datetime, now: datetime) -> datetime:
        """The end of the last local day with published prices (at least ``min_horizon`` after ``start_at``)."""
        local = to_local(now)
        day_end_local = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=STOCKHOLM)
        if local.time() >= self.config.prices_published_local:
            day_end_local += timedelta(days=1)
        end_at = day_end_local.astimezone(UTC)
        while end_at - start_at < self.config.min_horizon:
            end_at += timedelta(days=1)
        return end_at

    async def run(self, due_at: datetime) -> str:
        """The quarter-hourly job: a fresh plan every ``full_plan_every``, else a re-plan of what changed."""
        start_at = floor_hour(due_at)
        last = self.last.problem if self.last is not None else None
        fresh = (
            last is None
            or start_at >= last.start_at + self.config.full_plan_every
            or self.horizon_end(start_at, self.clock.now()) != last.end_at
        )
        if fresh:
            result = await self.plan_now(trigger="planning cycle", start_at=start_at)
        else:
            await asyncio.to_thread(self._detect_deviations)
            reasons = sorted(set(self.changed.values()))
            trigger = f"planning cycle, re-plan ({', '.join(reasons)})" if reasons else "planning cycle, plan holds"
            if not reasons and self.last is not None and self.last.plan is not None:
                return f"{trigger}: {len(self.last.plan.ev_plans)} EVs follow plan {self.last.plan_id}"
            assert last is not None
            result = await self.plan_now(trigger=trigger, start_at=last.start_at, reuse=True)
        return result.status_line()

    async def start_up(self, due_at: datetime) -> str:
        """The first plan of a (re)started platform, made at once rather than at the next job.

        After a restart nothing of the last plan is in memory: this plans the EVs plugged in on
        record, so a charger that reconnects gets the plan in force again and frequency dispatch has
        a plan for the hour under way.
        """
        return (await self.plan_now(trigger="start-up", start_at=floor_hour(due_at))).status_line()

    async def check_changes(self, due_at: datetime) -> str | None:
        """The re-plan job: detect deviations, and re-plan on the current horizon when anything changed."""
        await asyncio.to_thread(self._detect_deviations)
        if not self.changed or self.last is None or self.last.problem is None:
            if self.changed and (self.last is None or self.last.problem is None):
                return (await self.plan_now(trigger="re-plan", start_at=floor_hour(due_at))).status_line()
            return None
        reasons = sorted(set(self.changed.values()))
        result = await self.plan_now(
            trigger=f"re-plan ({', '.join(reasons)})", start_at=self.last.problem.start_at, reuse=True
        )
        return result.status_line()

    # ------------------------------------------------------------------ the use case
    async def plan_now(self, *, trigger: str, start_at: datetime, reuse: bool = False) -> CycleResult:
        """Collect, plan, send, store; returns what was done."""
        async with self._lock:
            changed = dict(self.changed)
            self.changed.clear()
            now = self.clock.now()
            evs = await asyncio.to_thread(self.fleet.plugged_in)
            if not evs:
                self.last = CycleResult(now, trigger, None, None, [], {})
                return self.last
            keep = self._unchanged(evs, changed) if reuse else set()
            problem, sources, excluded = await asyncio.to_thread(self.build_problem, evs, start_at, now, keep)
            if not problem.evs:
                self.last = CycleResult(now, trigger, None, None, [], sources, excluded=excluded)
                return self.last
            replan = reuse and self.last is not None and self.last.problem is not None
            solve = self.planner.replan if replan else self.planner.plan
            plan = await asyncio.to_thread(solve, problem, self.config.strategy)
            self._keep_current_quarter(plan, problem, now)
            top_up_departure_quarters(plan, problem)
            # on record before any charger gets it: a crash during the push never leaves a charger
            # running a plan the platform does not know (after a restart the plan in force is sent again)
            plan_id = await asyncio.to_thread(self._store, plan, problem, trigger, now, sources)
            schedules = [p.schedule(problem.start_at) for p in plan.ev_plans if p.charger_id]
            acks = await self.gateway.send_schedules(schedules)
            for ack in acks:
                if ack.status is AckStatus.REJECTED:
                    self.rejected[ack.charger_id] = ack.detail or "schedule rejected"
                    self.mark_changed(ack.charger_id, "rejected profile")
                else:
                    self.rejected.pop(ack.charger_id, None)
            self.changed = {k: v for k, v in self.changed.items() if v == "rejected profile"}
            self.last = CycleResult(now, trigger, plan, problem, acks, sources, plan_id, excluded)
            log.debug("%s", self.last.status_line())
            return self.last

    def latest_plan(self) -> FleetPlan | None:
        """The plan in force (the last one made and sent), or None."""
        return self.last.plan if self.last is not None else None

    def _keep_current_quarter(self, plan: FleetPlan, problem: PlanningProblem, now: datetime) -> None:
        """Inside a quarter, the new plan keeps what each EV's charger runs now until the quarter ends."""
        k = int((floor_quarter(now) - problem.start_at) / QUARTER)
        if now == floor_quarter(now) or not 0 <= k < problem.n_intervals:
            return
        running = self._running_kw(now)
        for p in plan.ev_plans:
            if p.p_kw[k] == 0.0:
                p.p_kw[k] = running.get(p.ev_id, 0.0)

    def _running_kw(self, now: datetime) -> dict[str, float]:
        """What each EV's charger runs in the current quarter under the last plan (EVs it had none for: absent)."""
        last = self.last
        if last is None or last.plan is None:
            return {}
        k = int((floor_quarter(now) - last.plan.start_at) / QUARTER)
        if not 0 <= k < last.plan.n_intervals:
            return {}
        return {p.ev_id: float(p.p_kw[k]) for p in last.plan.ev_plans if np.isfinite(p.p_kw[k])}

    def _unchanged(self, evs: Sequence[PluggedEv], changed: Mapping[str, str]) -> set[str]:
        """EVs whose last session still holds (planned last time, nothing about them changed since)."""
        if self.last is None or self.last.problem is None:
            return set()
        if "market" in changed or any(key.startswith("area:") for key in changed):  # new commitments or signals
            return set()
        planned = {s.ev_id for s in self.last.problem.evs}
        return {ev.ev_id for ev in evs if ev.ev_id in planned and not {ev.ev_id, ev.charger_id} & changed.keys()}

    def build_problem(
        self, evs: Sequence[PluggedEv], start_at: datetime, now: datetime, keep: set[str] | None = None
    ) -> tuple[PlanningProblem, dict[str, dict[str, str]], dict[str, str]]:
        """The planner's problem for these EVs from ``start_at`` (a clock hour) to the horizon end.

        EVs in ``keep`` get their previous session unchanged (same horizon only).
        """
        end_at = self.horizon_end(start_at, now)
        previous = self.last.problem if self.last is not None else None
        if keep and previous is not None and previous.start_at == start_at:
            end_at = previous.end_at
            old = {s.ev_id: s for s in previous.evs}
        else:
            old = {}
        n = int((end_at - start_at) / QUARTER)
        sessions: list[EvSession] = []
        running = self._running_kw(now)
        sources: dict[str, dict[str, str]] = {}
        excluded: dict[str, str] = {}
        leaving: dict[str, datetime] = {}
        next_start = floor_quarter(now) + (QUARTER if now > floor_quarter(now) else timedelta(0))
        for ev in evs:
            # a kept session holds only while its EV is still due to stay past the next quarter's start;
            # one whose departure has come is built again (and left out when nothing is left to plan)
            if keep and ev.ev_id in keep and ev.ev_id in old and old[ev.ev_id].departure_at > next_start:
                sessions.append(old[ev.ev_id])
                sources[ev.ev_id] = (self.last.sources if self.last is not None else {}).get(ev.ev_id, {})
                continue
            try:
                session, why = self.build_session(ev, now, end_at)
            except ValueError as exc:
                excluded[ev.ev_id] = str(exc)
                log.warning("EV %s left out of the plan: %s", ev.ev_id, exc)
                continue
            try:
                session, why = within_horizon(session, why, now, end_at, running.get(ev.ev_id, 0.0))
            except ValueError as exc:
                excluded[ev.ev_id] = str(exc)
                if session.departure_at <= next_start:
                    leaving[ev.ev_id] = next_start
                continue
            if ev.charger_id in self.rejected:  # a charger that refused its schedule gets charge-only plans
                session = charge_only(session)
                why = {**why, "max_discharge_kw": f"charger refused its schedule: {self.rejected[ev.charger_id]}"}
            sessions.append(session)
            sources[ev.ev_id] = why
        kept = {s.ev_id for s in sessions}
        evs = [ev for ev in evs if ev.ev_id in kept]
        sites = {
            ev.site_id: SiteLimits(ev.site_id, ev.grid_area_id, ev.fuse_limit_kw, (ev.household_peak_kw,)) for ev in evs
        }
        area_ids = sorted({ev.grid_area_id for ev in evs})
        areas = []
        for limits in self.fleet.area_limits(area_ids):
            imports = self.signals.import_limits_kw(limits.area_id, limits.import_limit_kw, start_at, n)
            exports = self.signals.export_limits_kw(limits.area_id, limits.export_limit_kw, start_at, n)
            areas.append(GridAreaLimits(limits.area_id, limits.price_area, imports, exports))
        price_areas = sorted({a.price_area for a in areas})
        day_ahead = {pa: self.prices.day_ahead_eur_per_mwh(pa, start_at, n) for pa in price_areas}
        n_hours = n // 4
        reserve = {product: self.prices.reserve_eur_per_mw_h(product, start_at, n_hours) for product in PRODUCTS}
        problem = PlanningProblem(
            start_at=start_at,
            n_intervals=n,
            evs=tuple(sessions),
            sites=tuple(sites.values()),
            grid_areas=tuple(areas),
            day_ahead_eur_per_mwh=day_ahead,
            reserve_eur_per_mw_h=reserve,
            rules=self.rules,
        )
        if self.commitments is not None:
            sold = self.commitments.reserve_commitments(start_at, end_at)
            held = tuple(c for c in sold if c.price_area in price_areas and start_at <= c.hour_start_at < end_at)
            problem = replace(problem, commitments=held)
        problem.validate()
        self.leaving = leaving
        return problem, sources, excluded

    def _store(
        self, plan: FleetPlan, problem: PlanningProblem, trigger: str, now: datetime, sources: dict[str, Any]
    ) -> int:
        body = plan_to_json(plan)
        body["sources"] = sources
        return self.plans.save_plan(
            created_at=now,
            start_at=problem.start_at,
            n_intervals=problem.n_intervals,
            strategy=plan.strategy.value,
            status=plan.status,
            trigger=trigger[:200],
            n_evs=len(plan.ev_plans),
            objective_eur=float(plan.objective_eur),
            plan=body,
        )

    # ------------------------------------------------------------------ deviations
    def _detect_deviations(self) -> None:
        """Mark EVs whose SoC or measured power left the last plan, EVs that arrived or left, and EVs
        still plugged in after their planned departure (the owner did not leave: plan the next one)."""
        last = self.last
        evs = self.fleet.plugged_in()
        now = self.clock.now()
        planned = {p.ev_id: p for p in last.plan.ev_plans} if last is not None and last.plan is not None else {}
        current = {ev.ev_id for ev in evs}
        for ev_id in current - planned.keys():
            if last is None or ev_id not in last.excluded:
                self.mark_changed(ev_id, "plug-in")
            elif ev_id in self.leaving and now >= self.leaving[ev_id]:
                self.mark_changed(ev_id, "stayed past its departure")
        for ev_id in planned.keys() - current:
            self.mark_changed(ev_id, "departure")
        if last is None or last.problem is None:
            return
        for session in last.problem.evs:
            if session.ev_id in current and session.departure_at <= now:
                self.mark_changed(session.ev_id, "stayed past its departure")
        departures = {session.ev_id: session.departure_at for session in last.problem.evs}
        closing = now + self.config.departure_window
        for ev in evs:
            p = planned.get(ev.ev_id)
            planned_soc = planned_soc_at(p.soc_kwh, last.problem.start_at, now) if p is not None else float("nan")
            if p is None or ev.soc_percent is None or not np.isfinite(planned_soc):
                continue
            soc_kwh = ev.soc_percent / 100.0 * ev.battery_kwh
            if abs(soc_kwh - planned_soc) > self.config.soc_tolerance_kwh:
                self.mark_changed(ev.ev_id, "SoC deviation")
            elif ev.ev_id in departures and departures[ev.ev_id] <= closing:
                # the reading against the path at the time it was taken; a reading in whole percent may be
                # up to a percent off, so it counts only beyond that
                path_kwh = planned_soc_at(p.soc_kwh, last.problem.start_at, ev.soc_measured_at or now)
                resolution_kwh = 0.01 * ev.battery_kwh if float(ev.soc_percent).is_integer() else 0.0
                tolerance_kwh = max(self.config.departure_soc_tolerance_kwh, resolution_kwh)
                if np.isfinite(path_kwh) and path_kwh - soc_kwh > tolerance_kwh:
                    self.mark_changed(ev.ev_id, "behind its path before departure")
