"""The fleet planner: strategies, decomposition by grid area, parallel solve, bids and value.

EVs couple only through their grid area's limits (one EV per site, so the fuse folds into the
EV's own power limits) and through the aggregated reserve bids. The planner therefore solves each
grid area as an independent LP (exact: the sum of the area optima is the optimum of the whole
fleet LP), in a process pool on the local cores or on a Ray cluster when one is configured, and
applies the bid rules (confidence, 0.1 MW minimum and granularity) afterwards by scaling the
per-EV reserve allocations down, which keeps every schedule feasible.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np

from v2g.fleet.model import PriceArea
from v2g.planning.area import AreaOptions, AreaResult, EvSolution, same_lp, solve_area
from v2g.planning.lp import EvInputs, EvLp, EvSolver, FloatArray, LerFactors, make_ev_lp, reachable_energy
from v2g.planning.model import (
    PRODUCTS,
    AreaStats,
    ConfidenceCost,
    EvPlan,
    FleetPlan,
    PlanningProblem,
    ReserveBid,
    SiteLimits,
    Strategy,
    TargetShortfall,
)
from v2g.units import DT_QUARTER_H, HOUR, QUARTER, QUARTERS_PER_HOUR, ceil_quarter, ensure_utc, floor_quarter

SHORTFALL_TOL_KWH = 1e-6


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


def _prepare(problem: PlanningProblem, strategy: Strategy) -> list[_Prepared]:
    n, hours = problem.n_intervals, problem.n_hours
    start, end = ensure_utc(problem.start_at), problem.end_at
    rules = problem.rules
    sites = {s.site_id: s for s in problem.sites}
    areas = {a.area_id: a for a in problem.grid_areas}
    site_cache: dict[str, tuple[FloatArray, FloatArray]] = {}
    price_cache: dict[str, tuple[FloatArray, FloatArray]] = {}
    reserve_prices = np.stack([problem.reserve_prices(p) for p in PRODUCTS]) / 1000.0  # EUR per kW per h
    allow_discharge = strategy in (Strategy.V2G_SPOT, Strategy.V2G_RESERVES)
    allow_reserves = strategy == Strategy.V2G_RESERVES
    out: list[_Prepared] = []
    for index, ev in enumerate(problem.evs):
        site: SiteLimits = sites[ev.site_id]
        area = areas[site.grid_area_id]
        if site.site_id not in site_cache:
            load, pv = _series(site.household_load_kw, n), _series(site.pv_kw, n)
            site_cache[site.site_id] = (
                np.maximum(site.fuse_limit_kw - load + pv, 0.0),
                np.maximum(site.fuse_limit_kw + load - pv, 0.0),
            )
        imp_room, exp_room = site_cache[site.site_id]
        if area.price_area not in price_cache:
            spot = problem.quarter_prices(area.price_area)
            price_cache[area.price_area] = (
                np.asarray(rules.import_price_eur_per_kwh(spot), dtype=np.float64),
                np.asarray(rules.export_price_eur_per_kwh(spot), dtype=np.float64),
            )
        imp_price, exp_price = price_cache[area.price_area]
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
            reserve_value_eur_per_kw_h=reserve_prices * availability[None, :],
            allow_discharge=allow_discharge,
            allow_reserves=allow_reserves,
            shortfall_penalty_eur_per_kwh=rules.target_shortfall_penalty_eur_per_kwh,
        )
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
        out.append(_Prepared(inputs, area.area_id, str(area.price_area), availability, shortfall))
    return out


def _with_target(inputs: EvInputs, target: float) -> EvInputs:
    return replace(inputs, e_target_kwh=target)


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


def _solve_task(task: _AreaTask) -> AreaResult:
    global _WORKER_SOLVER
    if _WORKER_SOLVER is None:
        _WORKER_SOLVER = EvSolver()
    lps = [make_ev_lp(inp, task.ler) for inp in task.inputs if inp.b > inp.a]
    return solve_area(task.area_id, lps, task.import_limit_kw, task.export_limit_kw, _WORKER_SOLVER, task.options)


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
        self._state: dict[str, tuple[FloatArray, FloatArray, dict[int, EvLp], AreaResult]] = {}
        self._state_key: tuple[Any, ...] | None = None

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
        prepared = _prepare(problem, strategy)
        if strategy == Strategy.UNCONTROLLED:
            return _uncontrolled(problem, prepared, started)
        ler = ler_factors(problem)
        by_area: dict[str, list[EvInputs]] = {a.area_id: [] for a in problem.grid_areas}
        for prep in prepared:
            by_area[prep.area_id].append(prep.inputs)
        tasks = [
            _AreaTask(
                area.area_id,
                tuple(by_area[area.area_id]),
                _series(area.import_limit_kw, n),
                _series(area.export_limit_kw, n),
                ler,
                self.options.area,
            )
            for area in problem.grid_areas
        ]
        results: dict[str, AreaResult] = {}
        if reuse and self.options.keep_state:
            for task in tasks:
                results[task.area_id] = self._solve_reusing(task)
        else:
            for res in _run_tasks(tasks, self.options):
                results[res.area_id] = res
            if self.options.keep_state:
                self._state = {}
                for task in tasks:
                    lps = {inp.index: make_ev_lp(inp, ler) for inp in task.inputs if inp.b > inp.a}
                    self._state[task.area_id] = (task.import_limit_kw, task.export_limit_kw, lps, results[task.area_id])
        self._state_key = (problem.start_at, problem.n_intervals, strategy)
        return _assemble(problem, strategy, prepared, results, started)

    def _solve_reusing(self, task: _AreaTask) -> AreaResult:
        lps = [make_ev_lp(inp, task.ler) for inp in task.inputs if inp.b > inp.a]
        old = self._state.get(task.area_id)
        if old is not None:
            old_imp, old_exp, old_lps, old_res = old
            same = (
                np.array_equal(old_imp, task.import_limit_kw)
                and np.array_equal(old_exp, task.export_limit_kw)
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
            task.area_id, lps, task.import_limit_kw, task.export_limit_kw, self._solver, task.options, previous
        )
        self._state[task.area_id] = (task.import_limit_kw, task.export_limit_kw, {lp.index: lp for lp in lps}, res)
        return res


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
    gran, min_bid = rules.bid_granularity_mw, rules.min_bid_mw
    for price_area, members in sorted(groups.items()):
        idx = np.asarray(members)
        for pi, product in enumerate(PRODUCTS):
            for hour in range(hours):
                alloc = reserves[idx, pi, hour]
                if not np.any(alloc > 0):
                    continue
                p = avail[idx, hour]
                expected, deliverable = deliverable_kw(alloc, p, z)
                expected_total += prices[pi, hour] * expected / 1000.0
                confident_total += prices[pi, hour] * deliverable / 1000.0
                mw = math.floor(deliverable / 1000.0 / gran + 1e-9) * gran
                mw = round(mw, 9)
                if mw < min_bid - 1e-12:
                    reserves[idx, pi, hour] = 0.0
                    continue
                factor = mw * 1000.0 / deliverable
                reserves[idx, pi, hour] = alloc * factor
                bid_total += prices[pi, hour] * mw
                share = p * alloc / expected
                revenue[idx] += prices[pi, hour] * mw * share
                bids.append(
                    ReserveBid(
                        product=product,
                        hour_start_at=problem.start_at + HOUR * hour,
                        price_area=PriceArea(price_area),
                        mw=mw,
                        expected_mw=expected * factor / 1000.0,
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
    )


def _uncontrolled(problem: PlanningProblem, prepared: Iterable[_Prepared], started: float) -> FleetPlan:
    """Charge at full power from arrival until the target (or the departure); no discharge, no reserves."""
    n, hours = problem.n_intervals, problem.n_hours
    dt = DT_QUARTER_H
    rules = problem.rules
    plans: list[EvPlan] = []
    shortfalls: list[TargetShortfall] = []
    for prep in prepared:
        inp = prep.inputs
        ev = problem.evs[inp.index]
        p = np.zeros(n)
        e = np.full(n + 1, np.nan)
        if inp.a < n:
            e[inp.a] = inp.e0_kwh
        level = inp.e0_kwh
        goal = min(ev.target_soc_kwh, inp.e_max_kwh)
        for k in range(inp.b - inp.a):
            need = max(0.0, goal - level)
            p_kw = min(float(inp.p_charge_kw[k]), need / (inp.eta_c * dt))
            p[inp.a + k] = p_kw
            level += inp.eta_c * dt * p_kw
            e[inp.a + k + 1] = level
        if prep.physical_shortfall is not None:
            shortfalls.append(prep.physical_shortfall)
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
    )


def solve_monolithic(problem: PlanningProblem, strategy: Strategy = Strategy.V2G_RESERVES) -> tuple[float, str]:
    """The whole fleet as one LP (all grid areas at once), with HiGHS's interior point method.

    For comparison with the decomposed planner only: it is exact but scales badly.
    Returns the optimal objective (EUR) and the HiGHS model status.
    """
    import scipy.sparse as sp

    from v2g.planning.area import area_lp
    from v2g.planning.lp import new_highs, pass_model

    problem.validate()
    n = problem.n_intervals
    ler = ler_factors(problem)
    prepared = _prepare(problem, strategy)
    parts = []
    for area in problem.grid_areas:
        lps = [make_ev_lp(p.inputs, ler) for p in prepared if p.area_id == area.area_id and p.inputs.b > p.inputs.a]
        if lps:
            parts.append(area_lp(lps, _series(area.import_limit_kw, n), _series(area.export_limit_kw, n)))
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
    return float(h.getInfo().objective_function_value), h.modelStatusToString(h.getModelStatus())
