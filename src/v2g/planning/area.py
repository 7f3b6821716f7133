"""Exact solution of one grid area: per-EV LPs, a check of the area limits, then a repair.

1. Solve every EV's own LP (warm-started HiGHS per block shape). Without the area rows the area LP
   separates into these, so if their summed schedules respect the area limits they are optimal for
   the area LP (the optimum of a relaxation that is feasible for the original).
2. Otherwise, if the over-limit energy is small, crash the area LP from the per-EV optimal bases
   (with the area rows basic, a dual-feasible basis) and let dual simplex repair the violated rows.
3. If it is large, or the capped dual simplex does not finish, solve the area LP with HiGHS's
   interior point method and crossover (a vertex optimum either way).

Reserve commitments add rows of the same kind: the area's share of its price area's commitment
per product and hour, ``sum(kappa_i r_i) + s >= C`` with a slack ``s`` priced at the commitment
penalty, checked against the per-EV optima first and repaired like the limits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from v2g.planning.lp import INF, EvLp, EvSolver, FloatArray, block, new_highs, pass_model
from v2g.units import DT_QUARTER_H

Int8Array = npt.NDArray[np.int8]
LIMIT_TOL_KW = 1e-6
DIRECTION_TOL_KW = 1e-6


@dataclass(frozen=True, slots=True)
class AreaOptions:
    """How an area is solved."""

    crash_max_violation_kwh_per_ev: float = 2.0
    crash_iteration_limit: int = 20000
    keep_bases: bool = True
    interior_solver: str = "clarabel"  # "clarabel" (about 2.5x faster, optimal to 1e-8) or "highs" (IPX + crossover)


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
    direction_fixes: int = 0  # quarters fixed to one direction (see fix_direction)


def same_lp(a: EvLp, b: EvLp) -> bool:
    """Whether two EV LPs are identical (shape, window, costs and bounds)."""
    if a is b:
        return True
    return (
        a.shape == b.shape
        and a.a == b.a
        and np.array_equal(a.col_cost, b.col_cost)
        and np.array_equal(a.col_lower, b.col_lower)
        and np.array_equal(a.col_upper, b.col_upper)
        and np.array_equal(a.row_lower, b.row_lower)
        and np.array_equal(a.row_upper, b.row_upper)
    )


def fix_direction(lp: EvLp, x: FloatArray) -> bool:
    """Forbid simultaneous charge and discharge where the LP chose both (it burns energy in losses).

    That only pays when importing is cheaper than exporting by more than twice the wear cost (deeply
    negative prices): the LP is then a relaxation of what a charger can do. Each such quarter is
    fixed to the direction of its net power; returns whether anything was fixed.
    """
    m = lp.m
    c, d = x[:m], x[m : 2 * m]
    charging = c >= d
    upper = lp.col_upper.copy()
    both = np.minimum(c, d) > DIRECTION_TOL_KW
    # only quarters whose other direction is still open (values within tolerance of a 0 bound are no news)
    close_d = both & charging & (upper[m : 2 * m] > 0.0)
    close_c = both & ~charging & (upper[:m] > 0.0)
    if not (close_c.any() or close_d.any()):
        return False
    upper[:m][close_c] = 0.0
    upper[m : 2 * m][close_d] = 0.0
    lp.col_upper = upper
    return True


def net_power(lps: list[EvLp], xs: list[FloatArray], n: int) -> FloatArray:
    """Summed net charging power per horizon quarter."""
    net = np.zeros(n)
    for lp, x in zip(lps, xs, strict=True):
        m = lp.m
        net[lp.a : lp.b] += x[:m] - x[m : 2 * m]
    return net


@dataclass(frozen=True, slots=True)
class SharedSite:
    """A site with several EVs behind one fuse: its rooms couple them like a small grid area.

    Per quarter: ``sum(c - d + 1.34 n + w + 0.2 u) <= import_room`` and
    ``sum(d - c + 1.34 n + u + 0.2 w) <= export_room`` (the reserve terms in reserve hours).
    """

    site_id: str
    members: tuple[int, ...]  # EV indices in the problem
    import_room_kw: FloatArray
    export_room_kw: FloatArray


@dataclass(frozen=True, slots=True)
class AreaCommitment:
    """The share of its price area's reserve commitments that one grid area must hold.

    ``required_kw[p, h]``: kW of product ``p`` (order of ``PRODUCTS``) in horizon hour ``h``.
    ``weight[i][h]``: what one allocated kW of EV ``i`` counts for in hour ``h`` (its availability
    less the confidence margin, see the planner; 1 for an EV that is surely plugged in).
    """

    required_kw: FloatArray
    weight: dict[int, FloatArray]
    penalty_eur_per_kw_h: float


def _reserve_cols(lp: EvLp) -> tuple[npt.NDArray[np.int64], int]:
    """Horizon hours of an EV's reserve columns and the column of its first FCR-N value."""
    h = lp.shape.n_hours
    return np.arange(lp.first_hour, lp.first_hour + h), 3 * lp.m


def held_kw(lps: list[EvLp], xs: list[FloatArray], commitment: AreaCommitment) -> FloatArray:
    """Weighted reserve per product and horizon hour that the given EV solutions hold."""
    out = np.zeros_like(commitment.required_kw)
    for lp, x in zip(lps, xs, strict=True):
        h = lp.shape.n_hours
        if not h:
            continue
        hours, c0 = _reserve_cols(lp)
        r = np.maximum(x[c0 : c0 + 3 * h].reshape(3, h), 0.0)
        out[:, hours] += r * commitment.weight[lp.index][hours][None, :]
    return out


def _site_terms(lp: EvLp) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray, FloatArray]:
    """Entries of one EV in its site's rows: quarter, local column, value in the down row, value in the up row."""
    m, k0, h = lp.m, lp.shape.k0, lp.shape.n_hours
    ler = lp.shape.ler
    k = np.arange(m)
    quarters = [lp.a + k, lp.a + k]
    cols = [k, m + k]
    down = [np.ones(m), -np.ones(m)]
    up = [-np.ones(m), np.ones(m)]
    if h:
        q = (k0 + 4 * np.arange(h)[:, None] + np.arange(4)[None, :]).ravel()
        jj = np.repeat(np.arange(h), 4)
        n0, u0, w0 = 3 * m, 3 * m + h, 3 * m + 2 * h
        f, g = ler.fcr_n_power_range, ler.fcr_d_nem_power
        quarters += [lp.a + q] * 3
        cols += [n0 + jj, u0 + jj, w0 + jj]
        down += [np.full(4 * h, f), np.full(4 * h, g), np.ones(4 * h)]
        up += [np.full(4 * h, f), np.ones(4 * h), np.full(4 * h, g)]
    return np.concatenate(quarters), np.concatenate(cols), np.concatenate(down), np.concatenate(up)


def site_excess(site: SharedSite, lps: dict[int, EvLp], xs: dict[int, FloatArray], n: int) -> float:
    """Largest excess (kW) of a shared site's rows for the given EV solutions."""
    down, up = np.zeros(n), np.zeros(n)
    for index in site.members:
        lp = lps.get(index)
        if lp is None:
            continue
        t, c, vd, vu = _site_terms(lp)
        x = xs[index]
        np.add.at(down, t, vd * x[c])
        np.add.at(up, t, vu * x[c])
    return float(max((down - site.import_room_kw).max(), (up - site.export_room_kw).max(), 0.0))


def area_lp(
    lps: list[EvLp],
    import_limit_kw: FloatArray,
    export_limit_kw: FloatArray,
    sites: tuple[SharedSite, ...] = (),
    commitment: AreaCommitment | None = None,
) -> tuple[sp.csc_matrix, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """The area LP: the EV blocks on the diagonal, one coupling row per quarter, two per quarter per shared site.

    With a commitment, one row per committed product and hour and its slack column (after the EV
    columns). Returns the matrix, costs, column bounds, row bounds and the column offset of each EV.
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
    extra_lo: list[FloatArray] = [-export_limit_kw]
    extra_hi: list[FloatArray] = [import_limit_kw]
    position = {lp.index: i for i, lp in enumerate(lps)}
    for si, site in enumerate(sites):
        base = n + 2 * n * si
        for index in site.members:
            if index not in position:
                continue
            i = position[index]
            t, c, vd, vu = _site_terms(lps[i])
            rows_c += [base + t, base + n + t]
            cols_c += [col_off[i] + c, col_off[i] + c]
            vals_c += [vd, vu]
        extra_lo += [np.full(2 * n, -INF)]
        extra_hi += [site.import_room_kw, site.export_room_kw]
    n_rows_c = n + 2 * n * len(sites)
    n_ev_cols = diag.shape[1]
    n_slack = 0
    if commitment is not None:
        required = commitment.required_kw
        committed = np.argwhere(required > 0.0)  # (rows, 2): product, hour
        n_slack = len(committed)
        row_of = np.full(required.shape, -1, dtype=np.int64)
        row_of[committed[:, 0], committed[:, 1]] = n_rows_c + np.arange(n_slack)
        for lp, off in zip(lps, col_off[:-1], strict=True):
            h = lp.shape.n_hours
            if not h:
                continue
            hours, c0 = _reserve_cols(lp)
            weight = commitment.weight[lp.index][hours]
            for pi in range(3):
                r = row_of[pi, hours]
                keep = r >= 0
                rows_c.append(r[keep])
                cols_c.append(off + c0 + pi * h + np.flatnonzero(keep))
                vals_c.append(weight[keep])
        rows_c.append(n_rows_c + np.arange(n_slack))
        cols_c.append(n_ev_cols + np.arange(n_slack))
        vals_c.append(np.ones(n_slack))
        extra_lo.append(required[committed[:, 0], committed[:, 1]])
        extra_hi.append(np.full(n_slack, INF))
        n_rows_c += n_slack
    coupling = sp.csc_matrix(
        (np.concatenate(vals_c), (np.concatenate(rows_c), np.concatenate(cols_c))),
        shape=(n_rows_c, n_ev_cols + n_slack),
    )
    if n_slack:
        diag = sp.hstack([diag, sp.csc_matrix((diag.shape[0], n_slack))], format="csc")
    mat = sp.vstack([diag, coupling], format="csc")
    penalty = commitment.penalty_eur_per_kw_h if commitment is not None else 0.0
    cost = np.concatenate([*[lp.col_cost for lp in lps], np.full(n_slack, penalty)])
    col_lo = np.concatenate([*[lp.col_lower for lp in lps], np.zeros(n_slack)])
    col_hi = np.concatenate([*[lp.col_upper for lp in lps], np.full(n_slack, INF)])
    row_lo = np.concatenate([*[lp.row_lower for lp in lps], *extra_lo])
    row_hi = np.concatenate([*[lp.row_upper for lp in lps], *extra_hi])
    return mat, cost, col_lo, col_hi, row_lo, row_hi, col_off


def _solve_ipm(
    area_id: str,
    mat: sp.csc_matrix,
    cost: FloatArray,
    col_lo: FloatArray,
    col_hi: FloatArray,
    row_lo: FloatArray,
    row_hi: FloatArray,
) -> tuple[FloatArray, float]:
    h = new_highs(ipm=True)
    pass_model(h, mat, cost, col_lo, col_hi, row_lo, row_hi)
    h.run()
    model_status = h.getModelStatus()
    if model_status != highspy.HighsModelStatus.kOptimal:
        msg = f"grid_area[{area_id}]: area LP not solved ({h.modelStatusToString(model_status)})"
        raise RuntimeError(msg)
    return np.asarray(h.getSolution().col_value), float(h.getInfo().objective_function_value)


def _solve_clarabel(
    area_id: str,
    mat: sp.csc_matrix,
    cost: FloatArray,
    col_lo: FloatArray,
    col_hi: FloatArray,
    row_lo: FloatArray,
    row_hi: FloatArray,
) -> tuple[FloatArray, float]:
    """The area LP with the Clarabel interior point method (direct sparse LDL).

    Equality rows and fixed columns go to the zero cone, every finite row or column bound to the
    non-negative cone: ``A x + s = b``. The solution is optimal to Clarabel's 1e-8 tolerances and
    is clipped onto the column bounds.
    """
    import clarabel

    n_cols = mat.shape[1]
    eye = sp.identity(n_cols, format="csr")
    csr = mat.tocsr()
    big = 1e19
    eq_r = np.flatnonzero(row_lo == row_hi)
    up_r = np.flatnonzero((row_hi < big) & (row_lo != row_hi))
    lo_r = np.flatnonzero((row_lo > -big) & (row_lo != row_hi))
    eq_c = np.flatnonzero(col_lo == col_hi)
    up_c = np.flatnonzero((col_hi < big) & (col_lo != col_hi))
    lo_c = np.flatnonzero((col_lo > -big) & (col_lo != col_hi))
    a = sp.vstack([csr[eq_r], eye[eq_c], csr[up_r], eye[up_c], -csr[lo_r], -eye[lo_c]], format="csc")
    b = np.concatenate([row_lo[eq_r], col_lo[eq_c], row_hi[up_r], col_hi[up_c], -row_lo[lo_r], -col_lo[lo_c]])
    n_zero = len(eq_r) + len(eq_c)
    cones = [clarabel.ZeroConeT(n_zero), clarabel.NonnegativeConeT(a.shape[0] - n_zero)]
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.max_threads = 1
    p = sp.csc_matrix((n_cols, n_cols))
    solver = clarabel.DefaultSolver(p, np.asarray(cost, dtype=np.float64), a, b, cones, settings)
    sol = solver.solve()
    if str(sol.status) not in ("Solved", "AlmostSolved"):
        msg = f"grid_area[{area_id}]: area LP not solved by Clarabel ({sol.status})"
        raise RuntimeError(msg)
    x = np.clip(np.asarray(sol.x, dtype=np.float64), col_lo, col_hi)
    return x, float(np.dot(cost, x))


def _solve_interior(
    area_id: str,
    options: AreaOptions,
    mat: sp.csc_matrix,
    cost: FloatArray,
    col_lo: FloatArray,
    col_hi: FloatArray,
    row_lo: FloatArray,
    row_hi: FloatArray,
) -> tuple[FloatArray, float, str]:
    if options.interior_solver == "clarabel":
        try:
            x, obj = _solve_clarabel(area_id, mat, cost, col_lo, col_hi, row_lo, row_hi)
        except (ImportError, RuntimeError):
            pass  # fall back to HiGHS below
        else:
            return x, obj, "clarabel"
    x, obj = _solve_ipm(area_id, mat, cost, col_lo, col_hi, row_lo, row_hi)
    return x, obj, "ipm"


def solve_area(
    area_id: str,
    lps: list[EvLp],
    import_limit_kw: FloatArray,
    export_limit_kw: FloatArray,
    solver: EvSolver,
    options: AreaOptions,
    previous: dict[str, tuple[EvLp, EvSolution]] | None = None,
    sites: tuple[SharedSite, ...] = (),
    commitment: AreaCommitment | None = None,
) -> AreaResult:
    """Solve one grid area exactly; ``previous`` per-EV optima (by EV id) are reused where the EV's LP is unchanged."""
    started = time.perf_counter()
    n = len(import_limit_kw)
    if not lps:
        return AreaResult(area_id, {}, {}, "empty", "optimal", 0.0, time.perf_counter() - started, 0)
    solved_before = solver.solved
    per_ev: dict[int, EvSolution] = {}
    fixes = 0
    # same structure and efficiencies one after the other: fewest coefficient changes, closest warm starts
    order = sorted(lps, key=lambda lp: (lp.shape.m, lp.shape.k0, lp.shape.eta_c, lp.shape.eta_d))
    for lp in order:
        old = previous.get(lp.ev_id) if previous else None
        if old is not None and same_lp(old[0], lp):
            per_ev[lp.index] = old[1]
            continue
        x, cb, rb, obj = solver.solve(lp)
        own = replace(lp)  # fixes go to a copy: the area LP keeps both directions open
        fixed = False
        while fix_direction(own, x):
            fixes += 1
            fixed = True
            x, cb, rb, obj = solver.solve(own)
        keep = options.keep_bases and not fixed
        per_ev[lp.index] = EvSolution(
            x=x,
            col_basis=np.asarray(cb, dtype=np.int8) if keep else None,
            row_basis=np.asarray(rb, dtype=np.int8) if keep else None,
            objective_eur=obj,
        )
    xs = [per_ev[lp.index].x for lp in lps]
    net = net_power(lps, xs, n)
    over = np.maximum(net - import_limit_kw, 0.0) + np.maximum(-export_limit_kw - net, 0.0)
    max_violation = float(over.max())
    if sites:
        by_index = {lp.index: lp for lp in lps}
        x_by_index = {lp.index: per_ev[lp.index].x for lp in lps}
        max_violation = max([max_violation, *(site_excess(site, by_index, x_by_index, n) for site in sites)])
    deficit_kwh = 0.0
    if commitment is not None and np.any(commitment.required_kw > 0.0):
        deficit = np.maximum(commitment.required_kw - held_kw(lps, xs, commitment), 0.0)
        max_violation = max(max_violation, float(deficit.max()))
        deficit_kwh = float(deficit.sum())
    else:
        commitment = None
    ev_lps = solver.solved - solved_before
    if max_violation <= LIMIT_TOL_KW:
        obj = float(sum(per_ev[lp.index].objective_eur for lp in lps))
        return AreaResult(
            area_id, per_ev, per_ev, "per-ev", "optimal", obj, time.perf_counter() - started, ev_lps, 0.0, [], fixes
        )
    mat, cost, col_lo, col_hi, row_lo, row_hi, col_off = area_lp(
        lps, import_limit_kw, export_limit_kw, sites, commitment
    )
    violation_kwh = float(over.sum() * DT_QUARTER_H) + deficit_kwh
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
        n_slack = mat.shape[1] - int(col_off[-1])
        col_status = np.concatenate(
            [*[per_ev[lp.index].col_basis for lp in lps], np.zeros(n_slack, dtype=np.int8)]  # slacks at 0
        )
        n_coupling = mat.shape[0] - sum(len(lp.row_lower) for lp in lps)
        row_status = np.concatenate(
            [*[per_ev[lp.index].row_basis for lp in lps], np.full(n_coupling, 1, dtype=np.int8)]
        )
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
        status = "optimal"
        x_all, obj, method = _solve_interior(area_id, options, mat, cost, col_lo, col_hi, row_lo, row_hi)
    work = [replace(lp) for lp in lps]  # direction fixes go to copies; the EVs' own LPs stay as given
    for _ in range(5):
        repaired = [fix_direction(lp, x_all[col_off[i] : col_off[i + 1]]) for i, lp in enumerate(work)]
        if not any(repaired):
            break
        fixes += sum(repaired)
        mat, cost, col_lo, col_hi, row_lo, row_hi, col_off = area_lp(
            work, import_limit_kw, export_limit_kw, sites, commitment
        )
        x_all, obj, method = _solve_interior(area_id, options, mat, cost, col_lo, col_hi, row_lo, row_hi)
    if commitment is not None:
        # the objective is the plan's value: the penalty only ranks holding a commitment above arbitrage
        obj -= commitment.penalty_eur_per_kw_h * float(np.sum(x_all[int(col_off[-1]) :]))
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
        fixes,
    )
