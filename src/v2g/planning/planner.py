"""The fleet planner: strategies, decomposition by grid area, parallel solve, bids and value.

EVs couple only through their grid area's limits, through a fuse they share (for a site with one
EV the fuse folds into the EV's own power limits; a site with several EVs adds its own coupling
rows inside the area) and through the aggregated reserve bids. The planner therefore solves each
grid area as an independent LP (exact: the sum of the area optima is the optimum of the whole
fleet LP), in a process pool on the local cores or on a Ray cluster when one is configured, and
applies the bid rules (confidence, 0.1 MW minimum and granularity) afterwards by scaling the
per-EV reserve allocations down, which keeps every schedule feasible.

Reserve commitments (capacity already sold, per price area) are split over the price area's grid
areas in proportion to their reserve capability and held by a row per product and hour in each
area LP; what an area cannot hold is offered once to the areas with spare capability. Bids then
cover only what the plan holds beyond the commitments.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np

from v2g.fleet.model import PriceArea
from v2g.planning.area import (
    AreaCommitment,
    AreaOptions,
    AreaResult,
    EvSolution,
    SharedSite,
    held_kw,
    same_lp,
    solve_area,
)
from v2g.planning.lp import EvInputs, EvLp, EvSolver, FloatArray, LerFactors, make_ev_lp, reachable_energy
from v2g.planning.model import (
    PRODUCTS,
    AreaStats,
    CommitmentShortfall,
    ConfidenceCost,
    EvPlan,
    EvSession,
    FleetPlan,
    PlanningProblem,
    Product,
    ReserveBid,
    SiteLimits,
    Strategy,
    TargetShortfall,
)
from v2g.units import DT_QUARTER_H, HOUR, QUARTER, QUARTERS_PER_HOUR, ceil_quarter, ensure_utc, floor_quarter

SHORTFALL_TOL_KWH = 1e-6
COMMITMENT_TOL_KW = 1e-4


@dataclass(frozen=True, slots=True)
class PlannerOptions:
    """How the planner runs: local workers, an optional Ray cluster, and the area solver settings."""

    workers: int = 2
    ray_address: str | None = None  # "local" starts a local Ray instance; else a cluster address
    keep_state: bool = True  # remember per-EV optima so that re-planning reuses them
    area: AreaOptions = field(default_factory=AreaOptions)


def _series(values: Sequence[float], n: int) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    return np.full(n, float(arr[0])) if arr.size == 1 else arr


def ler_factors(problem: PlanningProblem) -> LerFactors:
    """The reserve factors of the problem's rules."""
    r = problem.rules
    return LerFactors(r.fcr_n_power_range_factor, r.fcr_n_endurance_h, r.fcr_d_nem_power_factor, r.fcr_d_endurance_h)


@dataclass(frozen=True, slots=True)
class _Prepared:
    inputs: EvInputs
    area_id: str
    price_area: str
    availability: FloatArray  # per horizon hour
    physical_shortfall: TargetShortfall | None
    commit_weight: FloatArray  # per horizon hour: deliverable kW per allocated kW (lower bound)
    capability_kw: FloatArray  # (3, horizon hours): reserve the EV could hold alone, weighted


def commitment_weight(availability: FloatArray, z: float) -> FloatArray:
    """Per allocated kW, a lower bound of what it adds to the capacity deliverable at the confidence.

    ``E - z sigma >= sum(p_i - z sqrt(p_i (1 - p_i))) r_i`` (the 2-norm is at most the 1-norm), so a
    linear row on these weights guarantees the deliverable capacity; 1 for an EV surely plugged in.
    """
    p = np.clip(availability, 0.0, 1.0)
    return np.asarray(p - z * np.sqrt(p * (1.0 - p)), dtype=np.float64)


def _capability(inputs: EvInputs, ler: LerFactors, hours: int) -> FloatArray:
    """FCR-N, FCR-D up and down kW per horizon hour the EV could hold with no energy schedule of its own."""
    out = np.zeros((3, hours))
    if not inputs.allow_reserves or inputs.b <= inputs.a:
        return out
    k0 = (-inputs.a) % QUARTERS_PER_HOUR
    n_h = max(0, (inputs.b - inputs.a - k0) // QUARTERS_PER_HOUR)
    if not n_h:
        return out
    first = (inputs.a + k0) // QUARTERS_PER_HOUR
    quarters = k0 + QUARTERS_PER_HOUR * np.arange(n_h)[:, None] + np.arange(QUARTERS_PER_HOUR)[None, :]
    pc = inputs.p_charge_kw[quarters].min(axis=1)
    pd = inputs.p_discharge_kw[quarters].min(axis=1) if inputs.allow_discharge else np.zeros(n_h)
    room = max(0.0, inputs.e_max_kwh - min(inputs.e_min_kwh, inputs.e0_kwh))
    g = ler.fcr_d_nem_power
    big = np.full(n_h, np.inf)
    out[0, first : first + n_h] = np.minimum(
        np.minimum(pc, pd) / ler.fcr_n_power_range,
        room / (ler.fcr_n_endurance_h * (1.0 / inputs.eta_d + inputs.eta_c)),
    )
    out[1, first : first + n_h] = np.minimum.reduce(
        [pd, pc / g if g > 0 else big, np.full(n_h, room * inputs.eta_d / ler.fcr_d_endurance_h)]
    )
    out[2, first : first + n_h] = np.minimum.reduce(
        [pc, pd / g if g > 0 else big, np.full(n_h, room / (ler.fcr_d_endurance_h * inputs.eta_c))]
    )
    return out


def _charge_now(inputs: EvInputs, until_quarter: int, goal_kwh: float) -> FloatArray:
    """Full power from the window start until ``until_quarter`` (horizon index) or until ``goal_kwh``."""
    forced = np.zeros(inputs.b - inputs.a)
    level = inputs.e0_kwh
    for k in range(min(inputs.b, until_quarter) - inputs.a):
        p = min(float(inputs.p_charge_kw[k]), max(0.0, (goal_kwh - level) / (inputs.eta_c * DT_QUARTER_H)))
        forced[k] = p
        level += inputs.eta_c * DT_QUARTER_H * p
    return forced


def _fit_forced(problem: PlanningProblem, prepared: list[_Prepared]) -> list[_Prepared]:
    """Scale forced (charge-now) power down where it alone would break a shared fuse or an area import limit."""
    n = problem.n_intervals
    forced = [p for p in prepared if p.inputs.p_charge_min_kw is not None and p.inputs.b > p.inputs.a]
    if not forced:
        return prepared
    sites = {s.site_id: s for s in problem.sites}
    areas = {a.area_id: a for a in problem.grid_areas}
    scale = {p.inputs.index: np.ones(n) for p in forced}
    groups: dict[tuple[str, str], list[_Prepared]] = {}
    for prep in forced:
        ev = problem.evs[prep.inputs.index]
        groups.setdefault(("site", ev.site_id), []).append(prep)
        groups.setdefault(("area", prep.area_id), []).append(prep)
    for (kind, key), members in groups.items():
        total = np.zeros(n)
        for prep in members:
            assert prep.inputs.p_charge_min_kw is not None
            total[prep.inputs.a : prep.inputs.b] += prep.inputs.p_charge_min_kw
        if kind == "site":
            if len(members) < 2:
                continue
            site = sites[key]
            room = np.maximum(site.fuse_limit_kw - _series(site.household_load_kw, n) + _series(site.pv_kw, n), 0.0)
        else:
            room = _series(areas[key].import_limit_kw, n)
        factor = np.where(total > room, room / np.maximum(total, 1e-12), 1.0)
        for prep in members:
            scale[prep.inputs.index] = np.minimum(scale[prep.inputs.index], factor)
    out = []
    for prep in prepared:
        inp = prep.inputs
        if inp.index in scale and inp.p_charge_min_kw is not None:
            fitted = inp.p_charge_min_kw * scale[inp.index][inp.a : inp.b]
            prep = replace(prep, inputs=replace(inp, p_charge_min_kw=fitted))
        out.append(prep)
    return out


class _PrepareContext:
    """What every EV's preparation shares in one problem: prices, site rooms, reserve values, LER factors."""

    def __init__(self, problem: PlanningProblem, strategy: Strategy) -> None:
        self.problem = problem
        self.n, self.hours = problem.n_intervals, problem.n_hours
        self.start, self.end = ensure_utc(problem.start_at), problem.end_at
        self.rules = problem.rules
        self.sites = {s.site_id: s for s in problem.sites}
        self.areas = {a.area_id: a for a in problem.grid_areas}
        self.site_cache: dict[str, tuple[FloatArray, FloatArray]] = {}
        self.price_cache: dict[str, tuple[FloatArray, FloatArray]] = {}
        self.reserve_prices = np.stack([problem.reserve_prices(p) for p in PRODUCTS]) / 1000.0  # EUR per kW per h
        self.strategy_discharge = strategy in (Strategy.V2G_SPOT, Strategy.V2G_RESERVES)
        self.strategy_reserves = strategy == Strategy.V2G_RESERVES
        self.ler = ler_factors(problem)
        self.z = confidence_z(self.rules.confidence, self.rules.confidence_method)
        # everything above is a function of these (the EVs, sites and areas are keyed one by one)
        self.key = (
            problem.start_at,
            problem.n_intervals,
            strategy,
            problem.rules,
            tuple(sorted((str(k), v) for k, v in problem.day_ahead_eur_per_mwh.items())),
            tuple(sorted((str(k), v) for k, v in problem.reserve_eur_per_mw_h.items())),
        )

    def ev_key(self, ev: EvSession) -> tuple[object, ...]:
        """What one EV's preparation depends on beyond the shared context."""
        site = self.sites[ev.site_id]
        area = self.areas[site.grid_area_id]
        return (ev, site, area.area_id, area.price_area)

    def prepare(self, index: int, ev: EvSession) -> _Prepared:
        n, hours, start, end, rules = self.n, self.hours, self.start, self.end, self.rules
        site: SiteLimits = self.sites[ev.site_id]
        area = self.areas[site.grid_area_id]
        if site.site_id not in self.site_cache:
            load, pv = _series(site.household_load_kw, n), _series(site.pv_kw, n)
            self.site_cache[site.site_id] = (
                np.maximum(site.fuse_limit_kw - load + pv, 0.0),
                np.maximum(site.fuse_limit_kw + load - pv, 0.0),
            )
        imp_room, exp_room = self.site_cache[site.site_id]
        if area.price_area not in self.price_cache:
            spot = self.problem.quarter_prices(area.price_area)
            self.price_cache[area.price_area] = (
                np.asarray(rules.import_price_eur_per_kwh(spot), dtype=np.float64),
                np.asarray(rules.export_price_eur_per_kwh(spot), dtype=np.float64),
            )
        imp_price, exp_price = self.price_cache[area.price_area]
        arrival, departure = ensure_utc(ev.arrival_at), ensure_utc(ev.departure_at)
        a = max(0, int((ceil_quarter(arrival) - start) // QUARTER))
        b = min(n, int((floor_quarter(departure) - start) // QUARTER))
        availability = np.ones(hours) if ev.availability is None else np.asarray(ev.availability, dtype=np.float64)
        target = ev.target_soc_kwh
        if departure > end:
            rest_h = (departure - end) / HOUR
            target = max(0.0, target - ev.charge_efficiency * min(ev.max_charge_kw, site.fuse_limit_kw) * rest_h)
        b = max(a, b)
        pc = np.minimum(ev.max_charge_kw, imp_room[a:b])
        pd = np.minimum(ev.max_discharge_kw, exp_room[a:b])
        inputs = EvInputs(
            index=index,
            ev_id=ev.ev_id,
            a=a,
            b=b,
            e0_kwh=ev.soc_kwh,
            e_min_kwh=ev.min_soc_kwh,
            e_max_kwh=ev.battery_kwh,
            e_target_kwh=target,
            eta_c=ev.charge_efficiency,
            eta_d=ev.discharge_efficiency,
            p_charge_kw=pc,
            p_discharge_kw=pd,
            import_eur_per_kwh=imp_price[a:b],
            export_eur_per_kwh=exp_price[a:b],
            wear_eur_per_kwh=rules.battery_wear_eur_per_kwh,
            reserve_value_eur_per_kw_h=self.reserve_prices * availability[None, :],
            allow_discharge=self.strategy_discharge and ev.discharge_allowed,
            allow_reserves=self.strategy_reserves and ev.reserves_allowed,
            shortfall_penalty_eur_per_kwh=rules.target_shortfall_penalty_eur_per_kwh,
        )
        if ev.charge_now_until is not None and b > a:
            until_q = int((ceil_quarter(ensure_utc(ev.charge_now_until)) - start) // QUARTER)
            if until_q > a:
                goal = min(target, ev.battery_kwh)
                inputs = replace(inputs, p_charge_min_kw=_charge_now(inputs, until_q, goal))
        shortfall = None
        reach = float(reachable_energy(inputs)[-1]) if b > a else ev.soc_kwh
        if target > reach + SHORTFALL_TOL_KWH:
            reason = (
                "not plugged in during the horizon"
                if b == a
                else f"at most {reach:.3f} kWh reachable at full power in the plug-in window"
            )
            shortfall = TargetShortfall(ev.ev_id, ev.target_soc_kwh, reach, reason)
            inputs = _with_target(inputs, reach)
        weight = commitment_weight(availability, self.z)
        capability = _capability(inputs, self.ler, hours) * np.maximum(weight, 0.0)[None, :]
        return _Prepared(inputs, area.area_id, str(area.price_area), availability, shortfall, weight, capability)


class _PreparedCache:
    """Each EV's preparation of the last problem, re-used while the EV, its site and the shared context
    are unchanged (a re-plan after one EV changed prepares that EV only)."""

    def __init__(self) -> None:
        self.key: tuple[object, ...] | None = None
        self.by_ev: dict[str, tuple[tuple[object, ...], _Prepared]] = {}

    def prepare(self, problem: PlanningProblem, strategy: Strategy) -> list[_Prepared]:
        ctx = _PrepareContext(problem, strategy)
        if ctx.key != self.key:
            self.key, self.by_ev = ctx.key, {}
        out: list[_Prepared] = []
        kept: dict[str, tuple[tuple[object, ...], _Prepared]] = {}
        for index, ev in enumerate(problem.evs):
            ev_key = ctx.ev_key(ev)
            cached = self.by_ev.get(ev.ev_id)
            if cached is not None and _same_key(cached[0], ev_key):
                prep = cached[1]
                if prep.inputs.index != index:
                    prep = replace(prep, inputs=replace(prep.inputs, index=index))
            else:
                prep = ctx.prepare(index, ev)
            kept[ev.ev_id] = (ev_key, prep)
            out.append(prep)
        self.by_ev = kept
        return _fit_forced(problem, out)


def _same_key(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    try:
        return a == b
    except ValueError:  # a series given as an array: compared element-wise, so not re-used
        return False


def _prepare(problem: PlanningProblem, strategy: Strategy) -> list[_Prepared]:
    ctx = _PrepareContext(problem, strategy)
    return _fit_forced(problem, [ctx.prepare(index, ev) for index, ev in enumerate(problem.evs)])


def _with_target(inputs: EvInputs, target: float) -> EvInputs:
    return replace(inputs, e_target_kwh=target)


def _shared_sites(problem: PlanningProblem) -> dict[str, tuple[SharedSite, ...]]:
    """Sites with more than one EV, by grid area: their fuse couples the EVs."""
    n = problem.n_intervals
    members: dict[str, list[int]] = {}
    for index, ev in enumerate(problem.evs):
        members.setdefault(ev.site_id, []).append(index)
    out: dict[str, list[SharedSite]] = {}
    for site in problem.sites:
        idx = members.get(site.site_id, [])
        if len(idx) < 2:
            continue
        load, pv = _series(site.household_load_kw, n), _series(site.pv_kw, n)
        out.setdefault(site.grid_area_id, []).append(
            SharedSite(
                site.site_id,
                tuple(idx),
                np.maximum(site.fuse_limit_kw - load + pv, 0.0),
                np.maximum(site.fuse_limit_kw + load - pv, 0.0),
            )
        )
    return {k: tuple(v) for k, v in out.items()}


# ----------------------------------------------------------------- area tasks (run in workers)

_WORKER_SOLVER: EvSolver | None = None


@dataclass(frozen=True, slots=True)
class _AreaTask:
    area_id: str
    inputs: tuple[EvInputs, ...]
    import_limit_kw: FloatArray
    export_limit_kw: FloatArray
    ler: LerFactors
    options: AreaOptions
    sites: tuple[SharedSite, ...] = ()
    commitment: AreaCommitment | None = None


def _solve_task(task: _AreaTask) -> AreaResult:
    global _WORKER_SOLVER
    if _WORKER_SOLVER is None:
        _WORKER_SOLVER = EvSolver()
    lps = [make_ev_lp(inp, task.ler) for inp in task.inputs if inp.b > inp.a]
    return solve_area(
        task.area_id,
        lps,
        task.import_limit_kw,
        task.export_limit_kw,
        _WORKER_SOLVER,
        task.options,
        sites=task.sites,
        commitment=task.commitment,
    )


def _run_tasks(tasks: list[_AreaTask], options: PlannerOptions) -> list[AreaResult]:
    if options.ray_address:
        return _run_ray(tasks, options)
    if options.workers <= 1 or len(tasks) <= 1:
        return [_solve_task(t) for t in tasks]
    ctx = multiprocessing.get_context("fork")
    chunk = max(1, len(tasks) // (options.workers * 8))
    with ProcessPoolExecutor(max_workers=options.workers, mp_context=ctx) as pool:
        return list(pool.map(_solve_task, tasks, chunksize=chunk))


def _run_ray(tasks: list[_AreaTask], options: PlannerOptions) -> list[AreaResult]:
    import ray  # optional: only when a Ray address is configured

    if not ray.is_initialized():
        if options.ray_address == "local":
            ray.init(num_cpus=max(1, options.workers), include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=options.ray_address, log_to_driver=False)
    remote = ray.remote(_solve_task)
    return list(ray.get([remote.remote(t) for t in tasks]))


# ----------------------------------------------------------------- the planner


class FleetPlanner:
    """Plans fleets; keeps the last solution so that :meth:`replan` only re-solves what changed."""

    def __init__(self, options: PlannerOptions | None = None) -> None:
        self.options = options or PlannerOptions()
        self._solver = EvSolver()
        self._state: dict[str, tuple[_AreaTask, dict[int, EvLp], AreaResult]] = {}
        self._state_key: tuple[Any, ...] | None = None
        self._prepared = _PreparedCache()
        self._lps: dict[str, tuple[EvInputs, LerFactors, EvLp]] = {}

    def plan(self, problem: PlanningProblem, strategy: Strategy = Strategy.V2G_RESERVES) -> FleetPlan:
        """Plan the whole fleet from scratch."""
        self._state = {}
        return self._plan(problem, strategy, reuse=False)

    def replan(self, problem: PlanningProblem, strategy: Strategy = Strategy.V2G_RESERVES) -> FleetPlan:
        """Plan again after a change (an arrival, a new departure time, a SoC deviation).

        Areas whose EVs and limits did not change keep their solution; in a changed area only the
        changed EVs' own LPs are solved again, then the area limits are checked (and repaired).
        The result is the same optimum a fresh :meth:`plan` finds.
        """
        key = (problem.start_at, problem.n_intervals, strategy)
        return self._plan(problem, strategy, reuse=self._state_key == key)

    def _plan(self, problem: PlanningProblem, strategy: Strategy, *, reuse: bool) -> FleetPlan:
        started = time.perf_counter()
        problem.validate()
        n = problem.n_intervals
        prepared = self._prepared.prepare(problem, strategy) if self.options.keep_state else _prepare(problem, strategy)
        if strategy == Strategy.UNCONTROLLED:
            return _uncontrolled(problem, prepared, started)
        ler = ler_factors(problem)
        by_area: dict[str, list[EvInputs]] = {a.area_id: [] for a in problem.grid_areas}
        for prep in prepared:
            by_area[prep.area_id].append(prep.inputs)
        shared = _shared_sites(problem)
        shares = commitment_shares(problem, prepared)
        tasks = [
            _AreaTask(
                area.area_id,
                tuple(by_area[area.area_id]),
                _series(area.import_limit_kw, n),
                _series(area.export_limit_kw, n),
                ler,
                self.options.area,
                shared.get(area.area_id, ()),
                shares.get(area.area_id),
            )
            for area in problem.grid_areas
        ]
        results: dict[str, AreaResult] = {}
        fresh = not (reuse and self.options.keep_state)
        if not fresh:
            for task in tasks:
                results[task.area_id] = self._solve_reusing(task)
        else:
            for res in _run_tasks(tasks, self.options):
                results[res.area_id] = res
        again = _redistribute(problem, prepared, tasks, results, self._lp)
        if again:
            tasks = [again.get(t.area_id, t) for t in tasks]
            for res in _run_tasks(list(again.values()), self.options):
                results[res.area_id] = res
        if self.options.keep_state:
            if fresh:
                self._state = {}
            for task in tasks if fresh else again.values():
                lps = {inp.index: self._lp(inp, ler) for inp in task.inputs if inp.b > inp.a}
                self._state[task.area_id] = (task, lps, results[task.area_id])
        self._state_key = (problem.start_at, problem.n_intervals, strategy)
        return _assemble(problem, strategy, prepared, results, started)

    def _lp(self, inp: EvInputs, ler: LerFactors) -> EvLp:
        """The EV's LP block; the same inputs (a re-used preparation) give the same block without rebuilding it."""
        cached = self._lps.get(inp.ev_id)
        if cached is not None and cached[0] is inp and cached[1] == ler:
            return cached[2]
        lp = make_ev_lp(inp, ler)
        self._lps[inp.ev_id] = (inp, ler, lp)
        return lp

    def _solve_reusing(self, task: _AreaTask) -> AreaResult:
        lps = [self._lp(inp, task.ler) for inp in task.inputs if inp.b > inp.a]
        old = self._state.get(task.area_id)
        if old is not None:
            old_task, old_lps, old_res = old
            same = (
                _same_sites(old_task.sites, task.sites)
                and _same_commitment(old_task.commitment, task.commitment)
                and np.array_equal(old_task.import_limit_kw, task.import_limit_kw)
                and np.array_equal(old_task.export_limit_kw, task.export_limit_kw)
                and len(old_lps) == len(lps)
                and all(lp.index in old_lps and same_lp(old_lps[lp.index], lp) for lp in lps)
                and all(old_lps[lp.index].ev_id == lp.ev_id for lp in lps)
            )
            if same:
                return AreaResult(
                    old_res.area_id,
                    old_res.solutions,
                    old_res.per_ev,
                    old_res.method,
                    old_res.status,
                    old_res.objective_eur,
                    0.0,
                    0,
                    old_res.max_violation_kw,
                    ["reused"],
                    old_res.direction_fixes,
                )
            previous = {old_lps[i].ev_id: (old_lps[i], sol) for i, sol in old_res.per_ev.items() if i in old_lps}
        else:
            previous = None
        res = solve_area(
            task.area_id,
            lps,
            task.import_limit_kw,
            task.export_limit_kw,
            self._solver,
            task.options,
            previous,
            sites=task.sites,
            commitment=task.commitment,
        )
        self._state[task.area_id] = (task, {lp.index: lp for lp in lps}, res)
        return res


def _same_sites(a: tuple[SharedSite, ...], b: tuple[SharedSite, ...]) -> bool:
    """Whether two areas' shared-fuse sites couple the same EVs with the same rooms."""
    return len(a) == len(b) and all(
        x.site_id == y.site_id
        and x.members == y.members
        and np.array_equal(x.import_room_kw, y.import_room_kw)
        and np.array_equal(x.export_room_kw, y.export_room_kw)
        for x, y in zip(a, b, strict=True)
    )


def _same_commitment(a: AreaCommitment | None, b: AreaCommitment | None) -> bool:
    """Whether two shares of the commitments ask the same of the same EVs."""
    if a is None or b is None:
        return a is b
    return (
        a.penalty_eur_per_kw_h == b.penalty_eur_per_kw_h
        and np.array_equal(a.required_kw, b.required_kw)
        and a.weight.keys() == b.weight.keys()
        and all(np.array_equal(w, b.weight[i]) for i, w in a.weight.items())
    )


LpOf = Callable[[EvInputs, LerFactors], EvLp]


def _commit_keys(problem: PlanningProblem) -> dict[str, FloatArray]:
    """Committed kW as (3, hours) per price area (order of ``PRODUCTS``)."""
    out: dict[str, FloatArray] = {}
    for (price_area, product), series in problem.committed_kw().items():
        out.setdefault(str(price_area), np.zeros((3, problem.n_hours)))[PRODUCTS.index(product)] += series
    return out


def commitment_shares(problem: PlanningProblem, prepared: list[_Prepared]) -> dict[str, AreaCommitment]:
    """Each grid area's share of its price area's commitments, in proportion to the areas' reserve capability.

    The per-EV capability is what the EV could hold with no energy schedule of its own (power,
    LER endurance, availability); the shares only decide where the rows go, the area LPs then find
    the best allocation within each area.
    """
    committed = _commit_keys(problem)
    if not committed:
        return {}
    capability: dict[str, FloatArray] = {}
    weights: dict[str, dict[int, FloatArray]] = {}
    price_of = {a.area_id: str(a.price_area) for a in problem.grid_areas}
    for area_id, price_area in price_of.items():
        if price_area in committed:
            capability[area_id] = np.zeros((3, problem.n_hours))
            weights[area_id] = {}
    for prep in prepared:
        if prep.area_id in capability:
            capability[prep.area_id] += prep.capability_kw
            weights[prep.area_id][prep.inputs.index] = prep.commit_weight
    totals: dict[str, FloatArray] = {}
    for area_id, cap in capability.items():
        totals.setdefault(price_of[area_id], np.zeros_like(cap))
        totals[price_of[area_id]] += cap
    penalty = problem.rules.commitment_shortfall_penalty_eur_per_kw_h
    out: dict[str, AreaCommitment] = {}
    for area_id, cap in capability.items():
        total = totals[price_of[area_id]]
        share = np.where(total > 0.0, committed[price_of[area_id]] * cap / np.maximum(total, 1e-12), 0.0)
        if np.any(share > 0.0):
            out[area_id] = AreaCommitment(share, weights[area_id], penalty)
    return out


def _area_held(task: _AreaTask, result: AreaResult, lp_of: LpOf = make_ev_lp) -> FloatArray:
    assert task.commitment is not None
    lps = [lp_of(inp, task.ler) for inp in task.inputs if inp.b > inp.a and inp.index in result.solutions]
    return held_kw(lps, [result.solutions[lp.index].x for lp in lps], task.commitment)


def _redistribute(
    problem: PlanningProblem,
    prepared: list[_Prepared],
    tasks: list[_AreaTask],
    results: dict[str, AreaResult],
    lp_of: LpOf = make_ev_lp,
) -> dict[str, _AreaTask]:
    """Offer what some grid areas could not hold of their share to the areas with spare capability (once)."""
    committed = _commit_keys(problem)
    if not committed or len(tasks) < 2:
        return {}
    price_of = {a.area_id: str(a.price_area) for a in problem.grid_areas}
    capability: dict[str, FloatArray] = {}
    for prep in prepared:
        capability.setdefault(prep.area_id, np.zeros((3, problem.n_hours)))
        capability[prep.area_id] += prep.capability_kw
    held: dict[str, FloatArray] = {}
    for task in tasks:
        if task.commitment is not None:
            held[task.area_id] = _area_held(task, results[task.area_id], lp_of)
    again: dict[str, _AreaTask] = {}
    for price_area, need in committed.items():
        members = [t for t in tasks if price_of[t.area_id] == price_area and t.commitment is not None]
        if len(members) < 2:
            continue
        total_held = sum((held[t.area_id] for t in members), np.zeros_like(need))
        missing = np.maximum(need - total_held, 0.0)
        if not np.any(missing > COMMITMENT_TOL_KW):
            continue
        spare = {}
        for t in members:
            assert t.commitment is not None
            met = held[t.area_id] >= t.commitment.required_kw - COMMITMENT_TOL_KW
            spare[t.area_id] = np.where(met, np.maximum(capability[t.area_id] - held[t.area_id], 0.0), 0.0)
        total_spare = sum(spare.values(), np.zeros_like(need))
        for t in members:
            assert t.commitment is not None
            extra = np.where(total_spare > 0.0, missing * spare[t.area_id] / np.maximum(total_spare, 1e-12), 0.0)
            if np.any(extra > COMMITMENT_TOL_KW):
                required = np.maximum(t.commitment.required_kw, held[t.area_id]) + extra
                again[t.area_id] = replace(t, commitment=replace(t.commitment, required_kw=required))
    return again


def plan(
    problem: PlanningProblem, strategy: Strategy = Strategy.V2G_RESERVES, options: PlannerOptions | None = None
) -> FleetPlan:
    """Plan a fleet with one of the strategies (the same interface for all four)."""
    return FleetPlanner(options or PlannerOptions(keep_state=False)).plan(problem, strategy)


# ----------------------------------------------------------------- assembling the result


def confidence_z(confidence: float, method: str) -> float:
    """Safety factor on the standard deviation of the available capacity."""
    if method == "cantelli":
        return math.sqrt(confidence / (1.0 - confidence))
    return NormalDist().inv_cdf(confidence)


def deliverable_kw(alloc_kw: FloatArray, availability: FloatArray, z: float) -> tuple[float, float]:
    """(expected, deliverable at the confidence) capacity of independent EVs with allocations and availabilities."""
    expected = float(np.dot(availability, alloc_kw))
    sigma = math.sqrt(float(np.dot(availability * (1.0 - availability), alloc_kw**2)))
    return expected, max(0.0, expected - z * sigma)


def _assemble(
    problem: PlanningProblem,
    strategy: Strategy,
    prepared: list[_Prepared],
    results: dict[str, AreaResult],
    started: float,
) -> FleetPlan:
    n, hours = problem.n_intervals, problem.n_hours
    rules = problem.rules
    dt = DT_QUARTER_H
    solutions: dict[int, EvSolution] = {}
    for res in results.values():
        solutions.update(res.solutions)
    charges: list[FloatArray] = []
    discharges: list[FloatArray] = []
    energies: list[FloatArray] = []
    reserves = np.zeros((len(prepared), 3, hours))
    shortfalls: list[TargetShortfall] = []
    for prep in prepared:
        inp = prep.inputs
        c, d, e = np.zeros(n), np.zeros(n), np.full(n + 1, np.nan)
        sol = solutions.get(inp.index)
        if sol is not None:
            m = inp.b - inp.a
            x = sol.x
            c[inp.a : inp.b] = np.maximum(x[:m], 0.0)
            d[inp.a : inp.b] = np.maximum(x[m : 2 * m], 0.0)
            e[inp.a] = inp.e0_kwh
            e[inp.a + 1 : inp.b + 1] = x[2 * m : 3 * m]
            lp_h = (len(x) - 3 * m - 1) // 3
            if lp_h:
                k0 = (-inp.a) % QUARTERS_PER_HOUR
                h0 = (inp.a + k0) // QUARTERS_PER_HOUR
                r = np.maximum(x[3 * m : 3 * m + 3 * lp_h].reshape(3, lp_h), 0.0)
                reserves[inp.index, :, h0 : h0 + lp_h] = r
            slack = float(x[-1])
            final = float(x[3 * m - 1])
            if prep.physical_shortfall is not None:
                reason = prep.physical_shortfall.reason
                if slack > SHORTFALL_TOL_KWH:
                    reason += "; grid area limits"
                shortfalls.append(replace(prep.physical_shortfall, planned_soc_kwh=final, reason=reason))
            elif slack > SHORTFALL_TOL_KWH:
                ev = problem.evs[inp.index]
                shortfalls.append(TargetShortfall(ev.ev_id, ev.target_soc_kwh, final, "grid area limits"))
        else:
            if prep.physical_shortfall is not None:
                shortfalls.append(prep.physical_shortfall)
            if inp.a < n:
                e[inp.a] = inp.e0_kwh
        charges.append(c)
        discharges.append(d)
        energies.append(e)
    # bids: per product, hour and price area
    z = confidence_z(rules.confidence, rules.confidence_method)
    bids: list[ReserveBid] = []
    revenue = np.zeros(len(prepared))
    expected_total = 0.0
    bid_total = 0.0
    confident_total = 0.0
    prices = np.stack([problem.reserve_prices(p) for p in PRODUCTS])
    avail = np.stack([prep.availability for prep in prepared]) if prepared else np.zeros((0, hours))
    groups: dict[str, list[int]] = {}
    for prep in prepared:
        groups.setdefault(prep.price_area, []).append(prep.inputs.index)
    committed = _commit_keys(problem)
    commitment_shortfalls: list[CommitmentShortfall] = []
    gran, min_bid = rules.bid_granularity_mw, rules.min_bid_mw
    for price_area in sorted(set(groups) | set(committed)):
        idx = np.asarray(groups.get(price_area, []), dtype=np.int64)
        need = committed.get(price_area)
        for pi, product in enumerate(PRODUCTS):
            for hour in range(hours):
                commit_kw = float(need[pi, hour]) if need is not None else 0.0
                alloc = reserves[idx, pi, hour]
                if not np.any(alloc > 0):
                    if commit_kw > COMMITMENT_TOL_KW:
                        reason = _no_reserve_reason(strategy, len(idx))
                        commitment_shortfalls.append(
                            _commitment_shortfall(problem, price_area, product, hour, commit_kw, 0.0, reason)
                        )
                    continue
                p = avail[idx, hour]
                expected, deliverable = deliverable_kw(alloc, p, z)
                if deliverable < commit_kw - COMMITMENT_TOL_KW:
                    reason = "the price area's EVs cannot hold more (power, energy, departure targets, grid limits)"
                    commitment_shortfalls.append(
                        _commitment_shortfall(problem, price_area, product, hour, commit_kw, deliverable, reason)
                    )
                    continue  # everything allocated is held for the commitment; nothing is bid
                expected_total += prices[pi, hour] * max(expected - commit_kw, 0.0) / 1000.0
                confident_total += prices[pi, hour] * max(deliverable - commit_kw, 0.0) / 1000.0
                mw = math.floor(max(deliverable - commit_kw, 0.0) / 1000.0 / gran + 1e-9) * gran
                mw = round(mw, 9)
                if mw < min_bid - 1e-12:
                    if commit_kw <= 0.0:
                        reserves[idx, pi, hour] = 0.0
                        continue
                    mw = 0.0
                factor = (commit_kw + mw * 1000.0) / deliverable
                reserves[idx, pi, hour] = alloc * factor
                if mw <= 0.0:
                    continue
                bid_total += prices[pi, hour] * mw
                share = p * alloc / expected
                revenue[idx] += prices[pi, hour] * mw * share
                bids.append(
                    ReserveBid(
                        product=product,
                        hour_start_at=problem.start_at + HOUR * hour,
                        price_area=PriceArea(price_area),
                        mw=mw,
                        expected_mw=(expected * factor - commit_kw) / 1000.0,
                        price_eur_per_mw_h=float(prices[pi, hour]),
                    )
                )
    ev_plans: list[EvPlan] = []
    for prep, c, d, e in zip(prepared, charges, discharges, energies, strict=True):
        inp = prep.inputs
        ev = problem.evs[inp.index]
        imp_full = np.zeros(n)
        exp_full = np.zeros(n)
        imp_full[inp.a : inp.b] = inp.import_eur_per_kwh
        exp_full[inp.a : inp.b] = inp.export_eur_per_kwh
        energy_cost = float(dt * (np.dot(imp_full, c) - np.dot(exp_full, d)))
        wear = float(dt * rules.battery_wear_eur_per_kwh * (c.sum() + d.sum()))
        ev_plans.append(
            EvPlan(
                ev_id=ev.ev_id,
                p_kw=c - d,
                soc_kwh=e,
                reserve_kw={p: reserves[inp.index, i].copy() for i, p in enumerate(PRODUCTS)},
                energy_cost_eur=energy_cost,
                reserve_revenue_eur=float(revenue[inp.index]),
                wear_cost_eur=wear,
                first_interval=inp.a,
                end_interval=inp.b,
                charger_id=ev.charger_id,
            )
        )
    stats = tuple(
        AreaStats(r.area_id, len(r.solutions), r.method, r.status, r.objective_eur, r.wall_s, r.ev_lps_solved)
        for r in results.values()
    )
    lp_obj = float(sum(r.objective_eur for r in results.values()))
    return FleetPlan(
        strategy=strategy,
        start_at=problem.start_at,
        n_intervals=n,
        ev_plans=tuple(ev_plans),
        bids=tuple(bids),
        shortfalls=tuple(shortfalls),
        area_stats=stats,
        lp_objective_eur=lp_obj,
        confidence_cost=ConfidenceCost(rules.confidence, expected_total, bid_total, confident_total),
        grid_limits_enforced=True,
        # with direction fixes the plan is feasible but no longer the LP optimum (see area.fix_direction)
        status="feasible" if any(r.direction_fixes for r in results.values()) else "optimal",
        wall_s=time.perf_counter() - started,
        extra={
            "ev_lps_solved": float(sum(r.ev_lps_solved for r in results.values())),
            "direction_fixes": float(sum(r.direction_fixes for r in results.values())),
        },
        commitment_shortfalls=tuple(commitment_shortfalls),
    )


def _no_reserve_reason(strategy: Strategy, n_evs: int) -> str:
    if strategy != Strategy.V2G_RESERVES:
        return f"strategy {strategy} plans no reserves"
    if not n_evs:
        return "no EV of the price area is in the plan"
    return "no EV of the price area can hold this reserve in this hour"


def _commitment_shortfall(
    problem: PlanningProblem,
    price_area: str,
    product: Product,
    hour: int,
    committed: float,
    planned: float,
    reason: str,
) -> CommitmentShortfall:
    return CommitmentShortfall(
        price_area=PriceArea(price_area),
        product=product,
        hour_start_at=problem.start_at + HOUR * hour,
        committed_kw=committed,
        planned_kw=planned,
        reason=reason,
    )


def _uncontrolled(problem: PlanningProblem, prepared: Iterable[_Prepared], started: float) -> FleetPlan:
    """Charge at full power from arrival until the target (or the departure); no discharge, no reserves."""
    n, hours = problem.n_intervals, problem.n_hours
    dt = DT_QUARTER_H
    rules = problem.rules
    plans: list[EvPlan] = []
    shortfalls: list[TargetShortfall] = []
    # EVs behind one fuse share it, first come first served (what a load-balancing wallbox does)
    site_room = {
        s.site_id: np.maximum(s.fuse_limit_kw - _series(s.household_load_kw, n) + _series(s.pv_kw, n), 0.0)
        for s in problem.sites
    }
    for prep in prepared:
        inp = prep.inputs
        ev = problem.evs[inp.index]
        room = site_room[ev.site_id]
        p = np.zeros(n)
        e = np.full(n + 1, np.nan)
        if inp.a < n:
            e[inp.a] = inp.e0_kwh
        level = inp.e0_kwh
        goal = min(ev.target_soc_kwh, inp.e_max_kwh)
        for k in range(inp.b - inp.a):
            need = max(0.0, goal - level)
            p_kw = max(0.0, min(float(inp.p_charge_kw[k]), need / (inp.eta_c * dt), float(room[inp.a + k])))
            room[inp.a + k] -= p_kw
            p[inp.a + k] = p_kw
            level += inp.eta_c * dt * p_kw
            e[inp.a + k + 1] = level
        if prep.physical_shortfall is not None:
            shortfalls.append(replace(prep.physical_shortfall, planned_soc_kwh=level))
        elif level < inp.e_target_kwh - SHORTFALL_TOL_KWH:
            shortfalls.append(TargetShortfall(ev.ev_id, ev.target_soc_kwh, level, "shared fuse"))
        imp = np.zeros(n)
        imp[inp.a : inp.b] = inp.import_eur_per_kwh
        plans.append(
            EvPlan(
                ev.ev_id,
                p,
                e,
                {pr: np.zeros(hours) for pr in PRODUCTS},
                float(dt * np.dot(imp, p)),
                0.0,
                float(dt * rules.battery_wear_eur_per_kwh * p.sum()),
                inp.a,
                inp.b,
                ev.charger_id,
            )
        )
    obj = float(sum(pl.net_cost_eur for pl in plans))
    return FleetPlan(
        strategy=Strategy.UNCONTROLLED,
        start_at=problem.start_at,
        n_intervals=n,
        ev_plans=tuple(plans),
        bids=(),
        shortfalls=tuple(shortfalls),
        area_stats=(AreaStats("*", len(plans), "simulated", "simulated", obj, 0.0, 0),),
        lp_objective_eur=obj,
        confidence_cost=ConfidenceCost(rules.confidence, 0.0, 0.0),
        grid_limits_enforced=False,
        status="simulated",
        wall_s=time.perf_counter() - started,
        commitment_shortfalls=tuple(
            _commitment_shortfall(
                problem,
                area,
                PRODUCTS[pi],
                hour,
                float(need[pi, hour]),
                0.0,
                _no_reserve_reason(Strategy.UNCONTROLLED, 1),
            )
            for area, need in sorted(_commit_keys(problem).items())
            for pi, hour in np.argwhere(need > COMMITMENT_TOL_KW).tolist()
        ),
    )


def solve_monolithic(problem: PlanningProblem, strategy: Strategy = Strategy.V2G_RESERVES) -> tuple[float, str]:
    """The whole fleet as one LP (all grid areas at once), with HiGHS's interior point method.

    For comparison with the decomposed planner only: it is exact but scales badly. Reserve
    commitments enter as the same per-area shares the planner starts from (before any
    redistribution). Returns the optimal objective (EUR, without the commitment slack penalty,
    like the planner's ``lp_objective_eur``) and the HiGHS model status.
    """
    import scipy.sparse as sp

    from v2g.planning.area import area_lp
    from v2g.planning.lp import new_highs, pass_model

    problem.validate()
    n = problem.n_intervals
    ler = ler_factors(problem)
    prepared = _prepare(problem, strategy)
    shared = _shared_sites(problem)
    shares = commitment_shares(problem, prepared)
    parts = []
    for area in problem.grid_areas:
        lps = [make_ev_lp(p.inputs, ler) for p in prepared if p.area_id == area.area_id and p.inputs.b > p.inputs.a]
        if lps:
            limits = _series(area.import_limit_kw, n), _series(area.export_limit_kw, n)
            parts.append(area_lp(lps, *limits, shared.get(area.area_id, ()), shares.get(area.area_id)))
    if not parts:
        return 0.0, "Optimal"
    mat = sp.block_diag([part[0] for part in parts], format="csc")
    h = new_highs(ipm=True)
    pass_model(
        h,
        mat,
        *(np.concatenate([part[i] for part in parts]) for i in range(1, 6)),
    )
    h.run()
    x = np.asarray(h.getSolution().col_value)
    penalty = problem.rules.commitment_shortfall_penalty_eur_per_kw_h
    slack, offset = 0.0, 0
    for part in parts:
        n_ev_cols = int(part[6][-1])
        slack += float(np.sum(x[offset + n_ev_cols : offset + part[0].shape[1]]))
        offset += part[0].shape[1]
    objective = float(h.getInfo().objective_function_value) - penalty * slack
    return objective, h.modelStatusToString(h.getModelStatus())
