"""Exact solution of one grid area: per-EV LPs, a check of the area limits, then a repair.

1. Solve every EV's own LP (warm-started HiGHS per block shape). Without the area rows the area LP
   separates into these, so if their summed schedules respect the area limits they are optimal for
   the area LP (the optimum of a relaxation that is feasible for the original).
2. Otherwise, if the over-limit energy is small, crash the area LP from the per-EV optimal bases
   (with the area rows basic, a dual-feasible basis) and let dual simplex repair the violated rows.
3. If it is large, or the capped dual simplex does not finish, solve the area LP with HiGHS's
   interior point method and crossover (a vertex optimum either way).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from v2g.planning.lp import EvLp, EvSolver, FloatArray, block, new_highs, pass_model
from v2g.units import DT_QUARTER_H

Int8Array = npt.NDArray[np.int8]
LIMIT_TOL_KW = 1e-6


@dataclass(frozen=True, slots=True)
class AreaOptions:
    """How an area is solved."""

    crash_max_violation_kwh_per_ev: float = 2.0
    crash_iteration_limit: int = 20000
    keep_bases: bool = True


@dataclass(slots=True)
class EvSolution:
    """An EV's column values (and, from per-EV solves, its optimal basis)."""

    x: FloatArray
    col_basis: Int8Array | None
    row_basis: Int8Array | None
    objective_eur: float


@dataclass(slots=True)
class AreaResult:
    """Result of one grid area."""

    area_id: str
    solutions: dict[int, EvSolution]  # by EV index in the problem
    per_ev: dict[int, EvSolution]  # the per-EV optima (for re-planning)
    method: str
    status: str
    objective_eur: float
    wall_s: float
    ev_lps_solved: int
    max_violation_kw: float = 0.0
    notes: list[str] = field(default_factory=list)


def _same_lp(a: EvLp, b: EvLp) -> bool:
    return (
        a.shape == b.shape
        and a.a == b.a
        and np.array_equal(a.col_cost, b.col_cost)
        and np.array_equal(a.col_lower, b.col_lower)
        and np.array_equal(a.col_upper, b.col_upper)
        and np.array_equal(a.row_lower, b.row_lower)
        and np.array_equal(a.row_upper, b.row_upper)
    )


def net_power(lps: list[EvLp], xs: list[FloatArray], n: int) -> FloatArray:
    """Summed net charging power per horizon quarter."""
    net = np.zeros(n)
    for lp, x in zip(lps, xs, strict=True):
        m = lp.m
        net[lp.a : lp.b] += x[:m] - x[m : 2 * m]
    return net


def area_lp(
    lps: list[EvLp], import_limit_kw: FloatArray, export_limit_kw: FloatArray
) -> tuple[sp.csc_matrix, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """The area LP: the EV blocks on the diagonal and one coupling row per quarter.

    Returns the matrix, costs, column bounds, row bounds and the column offset of each EV.
    """
    n = len(import_limit_kw)
    mats = [block(lp.shape).csc() for lp in lps]
    diag = sp.block_diag(mats, format="csc")
    col_off = np.cumsum([0] + [mat.shape[1] for mat in mats])
    rows_c, cols_c, vals_c = [], [], []
    for lp, off in zip(lps, col_off[:-1], strict=True):
        m = lp.m
        t = np.arange(lp.a, lp.b)
        rows_c += [t, t]
        cols_c += [off + np.arange(m), off + m + np.arange(m)]
        vals_c += [np.ones(m), -np.ones(m)]
    coupling = sp.csc_matrix(
        (np.concatenate(vals_c), (np.concatenate(rows_c), np.concatenate(cols_c))), shape=(n, diag.shape[1])
    )
    mat = sp.vstack([diag, coupling], format="csc")
    cost = np.concatenate([lp.col_cost for lp in lps])
    col_lo = np.concatenate([lp.col_lower for lp in lps])
    col_hi = np.concatenate([lp.col_upper for lp in lps])
    row_lo = np.concatenate([*[lp.row_lower for lp in lps], -export_limit_kw])
    row_hi = np.concatenate([*[lp.row_upper for lp in lps], import_limit_kw])
    return mat, cost, col_lo, col_hi, row_lo, row_hi, col_off


def solve_area(
    area_id: str,
    lps: list[EvLp],
    import_limit_kw: FloatArray,
    export_limit_kw: FloatArray,
    solver: EvSolver,
    options: AreaOptions,
    previous: dict[int, tuple[EvLp, EvSolution]] | None = None,
) -> AreaResult:
    """Solve one grid area exactly; ``previous`` per-EV optima are reused where the EV's LP is unchanged."""
    started = time.perf_counter()
    n = len(import_limit_kw)
    if not lps:
        return AreaResult(area_id, {}, {}, "empty", "optimal", 0.0, time.perf_counter() - started, 0)
    solved_before = solver.solved
    per_ev: dict[int, EvSolution] = {}
    for lp in lps:
        old = previous.get(lp.index) if previous else None
        if old is not None and _same_lp(old[0], lp):
            per_ev[lp.index] = old[1]
            continue
        x, cb, rb, obj = solver.solve(lp)
        per_ev[lp.index] = EvSolution(
            x=x,
            col_basis=np.asarray(cb, dtype=np.int8) if options.keep_bases else None,
            row_basis=np.asarray(rb, dtype=np.int8) if options.keep_bases else None,
            objective_eur=obj,
        )
    xs = [per_ev[lp.index].x for lp in lps]
    net = net_power(lps, xs, n)
    over = np.maximum(net - import_limit_kw, 0.0) + np.maximum(-export_limit_kw - net, 0.0)
    max_violation = float(over.max())
    ev_lps = solver.solved - solved_before
    if max_violation <= LIMIT_TOL_KW:
        obj = float(sum(per_ev[lp.index].objective_eur for lp in lps))
        return AreaResult(area_id, per_ev, per_ev, "per-ev", "optimal", obj, time.perf_counter() - started, ev_lps, 0.0)
    mat, cost, col_lo, col_hi, row_lo, row_hi, col_off = area_lp(lps, import_limit_kw, export_limit_kw)
    violation_kwh = float(over.sum() * DT_QUARTER_H)
    method, status, x_all, obj = "", "", np.zeros(0), 0.0
    notes: list[str] = []
    can_crash = all(per_ev[lp.index].col_basis is not None for lp in lps)
    if can_crash and violation_kwh <= options.crash_max_violation_kwh_per_ev * len(lps):
        h = new_highs()
        pass_model(h, mat, cost, col_lo, col_hi, row_lo, row_hi)
        h.setOptionValue("presolve", "off")
        h.setOptionValue("simplex_strategy", 1)
        h.setOptionValue("simplex_iteration_limit", options.crash_iteration_limit)
        basis = highspy.HighsBasis()
        col_status = np.concatenate([per_ev[lp.index].col_basis for lp in lps])
        row_status = np.concatenate([*[per_ev[lp.index].row_basis for lp in lps], np.full(n, 1, dtype=np.int8)])
        basis.col_status = [highspy.HighsBasisStatus(int(s)) for s in col_status]
        basis.row_status = [highspy.HighsBasisStatus(int(s)) for s in row_status]
        basis.valid = True
        h.setBasis(basis)
        h.run()
        if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            method, status = "crash", "optimal"
            x_all = np.asarray(h.getSolution().col_value)
            obj = float(h.getInfo().objective_function_value)
        else:
            notes.append(f"crash stopped: {h.modelStatusToString(h.getModelStatus())}; interior point instead")
    if not method:
        h = new_highs(ipm=True)
        pass_model(h, mat, cost, col_lo, col_hi, row_lo, row_hi)
        h.run()
        model_status = h.getModelStatus()
        if model_status != highspy.HighsModelStatus.kOptimal:
            msg = f"grid_area[{area_id}]: area LP not solved ({h.modelStatusToString(model_status)})"
            raise RuntimeError(msg)
        method, status = "ipm", "optimal"
        x_all = np.asarray(h.getSolution().col_value)
        obj = float(h.getInfo().objective_function_value)
    solutions = {
        lp.index: EvSolution(
            x=x_all[col_off[i] : col_off[i + 1]].copy(), col_basis=None, row_basis=None, objective_eur=0.0
        )
        for i, lp in enumerate(lps)
    }
    return AreaResult(
        area_id,
        solutions,
        per_ev,
        method,
        status,
        obj,
        time.perf_counter() - started,
        ev_lps,
        max_violation,
        notes,
    )
