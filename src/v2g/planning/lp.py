"""The planning LP: per-EV blocks, built with numpy, solved with HiGHS.

Each EV's block lives only inside its plug-in window ``[a, b)`` (quarters of the horizon):

* columns ``c[k]`` charge kW, ``d[k]`` discharge kW, ``e[k]`` energy kWh at the end of quarter
  ``k``, then per reserve hour (a clock hour wholly inside the window) ``n`` FCR-N, ``u`` FCR-D up,
  ``w`` FCR-D down capacity in kW, and one slack ``s`` kWh of departure-target shortfall;
* rows: energy balance ``e[k] - e[k-1] - eta_c dt c[k] + dt/eta_d d[k] = 0`` (``= E0`` for k = 0);
  the departure target ``e[last] + s >= E_target``; in every quarter of a reserve hour the power
  headroom ``d - c + 1.34 n + u + 0.2 w <= P_dis`` and ``c - d + 1.34 n + w + 0.2 u <= P_ch``; and
  the limited-energy-reservoir rows at the hour start and at every quarter end
  ``e - (1 h n + 1/3 h u)/eta_d >= E_min`` and ``e + (1 h n + 1/3 h w) eta_c <= E_max``.

The structure of a block depends only on the window length, its offset within the clock hour,
whether reserves are planned, and the two efficiencies; the rest is bounds and costs. Blocks with
the same shape share one matrix (and one warm-started HiGHS object per process).
A grid area adds one ranged row per quarter: ``-L_exp <= sum(c - d) <= L_imp``, and one row per
committed product and hour: ``sum(kappa r) + s >= C`` with a penalised slack ``s`` (see area.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from v2g.units import DT_QUARTER_H, QUARTERS_PER_HOUR

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]
INF = highspy.kHighsInf


@dataclass(frozen=True, slots=True)
class LerFactors:
    """Reserve factors from the Nordic FCR requirements."""

    fcr_n_power_range: float  # 1.34
    fcr_n_endurance_h: float  # 1
    fcr_d_nem_power: float  # 0.2
    fcr_d_endurance_h: float  # 1/3


@dataclass(frozen=True, slots=True)
class BlockShape:
    """Key of a block's matrix structure."""

    m: int  # quarters in the window
    k0: int  # first quarter (local) that starts a clock hour
    n_hours: int  # reserve hours
    eta_c: float
    eta_d: float
    ler: LerFactors


@dataclass(frozen=True, slots=True)
class Block:
    """A block's matrix (CSC) and its layout."""

    shape: BlockShape
    n_cols: int
    n_rows: int
    a_start: IntArray
    a_index: IntArray
    a_value: FloatArray

    def csc(self) -> sp.csc_matrix:
        """The matrix as scipy CSC."""
        return sp.csc_matrix((self.a_value, self.a_index, self.a_start), shape=(self.n_rows, self.n_cols))


@dataclass(slots=True)
class EvLp:
    """One EV's prepared LP data (bounds and costs for its block)."""

    index: int  # position of the EV in the problem
    ev_id: str
    a: int
    b: int
    first_hour: int  # global index of the first reserve hour
    shape: BlockShape
    col_cost: FloatArray
    col_lower: FloatArray
    col_upper: FloatArray
    row_lower: FloatArray
    row_upper: FloatArray

    @property
    def m(self) -> int:
        """Quarters in the window."""
        return self.b - self.a


def layout(shape: BlockShape) -> tuple[int, int]:
    """Number of columns and rows of a block."""
    m, h = shape.m, shape.n_hours
    n_cols = 3 * m + 3 * h + 1
    n_rows = m + 1 + h * (4 + 4 + 5 + 5)
    return n_cols, n_rows


@functools.lru_cache(maxsize=4096)
def block(shape: BlockShape) -> Block:
    """Build (once per shape) the block matrix."""
    m, k0, h = shape.m, shape.k0, shape.n_hours
    dt = DT_QUARTER_H
    ler = shape.ler
    n_cols, n_rows = layout(shape)
    c0, d0, e0 = 0, m, 2 * m
    n0, u0, w0 = 3 * m, 3 * m + h, 3 * m + 2 * h
    s_col = 3 * m + 3 * h
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    vals: list[FloatArray] = []

    def add(r: npt.ArrayLike, c: npt.ArrayLike, v: npt.ArrayLike) -> None:
        r_arr, c_arr = np.atleast_1d(np.asarray(r, dtype=np.int64)), np.atleast_1d(np.asarray(c, dtype=np.int64))
        r_arr, c_arr = np.broadcast_arrays(r_arr, c_arr)
        v_arr = np.broadcast_to(np.asarray(v, dtype=np.float64), r_arr.shape)
        rows.append(r_arr.ravel())
        cols.append(c_arr.ravel())
        vals.append(np.array(v_arr, dtype=np.float64).ravel())

    k = np.arange(m)
    # energy balance
    add(k, e0 + k, 1.0)
    add(k[1:], e0 + k[1:] - 1, -1.0)
    add(k, c0 + k, -shape.eta_c * dt)
    add(k, d0 + k, dt / shape.eta_d)
    # departure target
    add(m, e0 + m - 1, 1.0)
    add(m, s_col, 1.0)
    r = m + 1
    if h:
        j = np.arange(h)
        q = k0 + 4 * j[:, None] + np.arange(4)[None, :]  # (h, 4) local quarters of each reserve hour
        jj = np.repeat(j, 4)
        qq = q.ravel()
        # up headroom: d - c + F n + u + g w <= P_dis
        ru = r + np.arange(4 * h)
        add(ru, d0 + qq, 1.0)
        add(ru, c0 + qq, -1.0)
        add(ru, n0 + jj, ler.fcr_n_power_range)
        add(ru, u0 + jj, 1.0)
        add(ru, w0 + jj, ler.fcr_d_nem_power)
        r += 4 * h
        rd = r + np.arange(4 * h)
        add(rd, c0 + qq, 1.0)
        add(rd, d0 + qq, -1.0)
        add(rd, n0 + jj, ler.fcr_n_power_range)
        add(rd, w0 + jj, 1.0)
        add(rd, u0 + jj, ler.fcr_d_nem_power)
        r += 4 * h
        # energy states checked: hour start (end of the previous quarter, or E0) and 4 quarter ends
        states = np.concatenate([(q[:, 0] - 1)[:, None], q], axis=1)  # (h, 5); -1 means E0
        j5 = np.repeat(j, 5)
        st = states.ravel()
        for sign_low in (True, False):
            rr = r + np.arange(5 * h)
            has_e = st >= 0
            add(rr[has_e], e0 + st[has_e], 1.0)
            if sign_low:
                add(rr, n0 + j5, -ler.fcr_n_endurance_h / shape.eta_d)
                add(rr, u0 + j5, -ler.fcr_d_endurance_h / shape.eta_d)
            else:
                add(rr, n0 + j5, ler.fcr_n_endurance_h * shape.eta_c)
                add(rr, w0 + j5, ler.fcr_d_endurance_h * shape.eta_c)
            r += 5 * h
    assert r == n_rows
    mat = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, n_cols)
    ).tocsc()
    mat.sum_duplicates()
    return Block(
        shape=shape,
        n_cols=n_cols,
        n_rows=n_rows,
        a_start=mat.indptr.astype(np.int32),
        a_index=mat.indices.astype(np.int32),
        a_value=mat.data.astype(np.float64),
    )


@dataclass(frozen=True, slots=True)
class EvInputs:
    """Numbers of one EV session on the horizon grid, from which its LP data are made."""

    index: int
    ev_id: str
    a: int
    b: int
    e0_kwh: float
    e_min_kwh: float
    e_max_kwh: float
    e_target_kwh: float
    eta_c: float
    eta_d: float
    p_charge_kw: FloatArray  # per window quarter, charger and fuse limits combined
    p_discharge_kw: FloatArray
    import_eur_per_kwh: FloatArray  # per window quarter
    export_eur_per_kwh: FloatArray
    wear_eur_per_kwh: float
    reserve_value_eur_per_kw_h: FloatArray  # (3, horizon hours): price/1000 * availability
    allow_discharge: bool
    allow_reserves: bool
    shortfall_penalty_eur_per_kwh: float
    p_charge_min_kw: FloatArray | None = None  # per window quarter: forced charging (charge now), else 0


def reachable_energy(inp: EvInputs) -> FloatArray:
    """Highest energy reachable at each quarter end, charging at full power from the start."""
    gain = np.cumsum(inp.eta_c * DT_QUARTER_H * inp.p_charge_kw)
    return np.minimum(inp.e_max_kwh, inp.e0_kwh + gain)


def make_ev_lp(inp: EvInputs, ler: LerFactors) -> EvLp:
    """Bounds and costs of one EV's block."""
    m = inp.b - inp.a
    k0 = (-inp.a) % QUARTERS_PER_HOUR
    h = max(0, (m - k0) // QUARTERS_PER_HOUR) if inp.allow_reserves else 0
    shape = BlockShape(m=m, k0=k0 if h else 0, n_hours=h, eta_c=inp.eta_c, eta_d=inp.eta_d, ler=ler)
    n_cols, n_rows = layout(shape)
    dt = DT_QUARTER_H
    # an EV that arrives below its minimum SoC may stay there until it is charged above it
    e_low = np.full(m, min(inp.e_min_kwh, inp.e0_kwh))
    cost = np.zeros(n_cols)
    cost[:m] = dt * (inp.import_eur_per_kwh + inp.wear_eur_per_kwh)
    cost[m : 2 * m] = dt * (-inp.export_eur_per_kwh + inp.wear_eur_per_kwh)
    first_hour = (inp.a + shape.k0) // QUARTERS_PER_HOUR
    if h:
        value = inp.reserve_value_eur_per_kw_h[:, first_hour : first_hour + h]
        cost[3 * m : 3 * m + 3 * h] = -value.ravel()
    cost[-1] = inp.shortfall_penalty_eur_per_kwh
    lower = np.zeros(n_cols)
    upper = np.full(n_cols, INF)
    if inp.p_charge_min_kw is not None:
        lower[:m] = np.minimum(inp.p_charge_min_kw, inp.p_charge_kw)
    upper[:m] = inp.p_charge_kw
    upper[m : 2 * m] = inp.p_discharge_kw if inp.allow_discharge else 0.0
    lower[2 * m : 3 * m] = e_low
    upper[2 * m : 3 * m] = inp.e_max_kwh
    row_lo = np.zeros(n_rows)
    row_hi = np.zeros(n_rows)
    row_lo[0] = row_hi[0] = inp.e0_kwh
    row_lo[m] = inp.e_target_kwh
    row_hi[m] = INF
    r = m + 1
    if h:
        q = shape.k0 + 4 * np.arange(h)[:, None] + np.arange(4)[None, :]
        qq = q.ravel()
        row_lo[r : r + 4 * h] = -INF
        row_hi[r : r + 4 * h] = inp.p_discharge_kw[qq] if inp.allow_discharge else 0.0
        r += 4 * h
        row_lo[r : r + 4 * h] = -INF
        row_hi[r : r + 4 * h] = inp.p_charge_kw[qq]
        r += 4 * h
        states = np.concatenate([(q[:, 0] - 1)[:, None], q], axis=1).ravel()
        has_e = states >= 0
        low = np.where(has_e, e_low[np.maximum(states, 0)], min(inp.e_min_kwh, inp.e0_kwh) - inp.e0_kwh)
        row_lo[r : r + 5 * h] = low
        row_hi[r : r + 5 * h] = INF
        r += 5 * h
        row_lo[r : r + 5 * h] = -INF
        row_hi[r : r + 5 * h] = np.where(has_e, inp.e_max_kwh, inp.e_max_kwh - inp.e0_kwh)
    return EvLp(
        index=inp.index,
        ev_id=inp.ev_id,
        a=inp.a,
        b=inp.b,
        first_hour=first_hour,
        shape=shape,
        col_cost=cost,
        col_lower=lower,
        col_upper=upper,
        row_lower=row_lo,
        row_upper=row_hi,
    )


def new_highs(*, ipm: bool = False) -> highspy.Highs:
    """A quiet single-threaded HiGHS instance."""
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    if ipm:
        h.setOptionValue("solver", "ipm")
        h.setOptionValue("run_crossover", "on")
    return h


def pass_model(
    h: highspy.Highs,
    mat: sp.csc_matrix,
    cost: FloatArray,
    col_lower: FloatArray,
    col_upper: FloatArray,
    row_lower: FloatArray,
    row_upper: FloatArray,
) -> None:
    """Hand a CSC model to HiGHS through the numpy-array overload."""
    n_rows, n_cols = mat.shape
    status = h.passModel(
        int(n_cols),
        int(n_rows),
        int(mat.nnz),
        1,  # column-wise
        1,  # minimise
        0.0,
        np.ascontiguousarray(cost, dtype=np.float64),
        np.ascontiguousarray(col_lower, dtype=np.float64),
        np.ascontiguousarray(col_upper, dtype=np.float64),
        np.ascontiguousarray(row_lower, dtype=np.float64),
        np.ascontiguousarray(row_upper, dtype=np.float64),
        mat.indptr[:-1].astype(np.int32),
        mat.indices.astype(np.int32),
        mat.data.astype(np.float64),
        np.zeros(n_cols, dtype=np.int32),  # all continuous
    )
    if status == highspy.HighsStatus.kError:
        msg = "HiGHS refused the model"
        raise RuntimeError(msg)


def efficiency_entries(shape: BlockShape) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """The matrix entries of a block that depend on the efficiencies.

    Returns rows, columns and two factors per entry: value = ``f_c * eta_c + f_d / eta_d``.
    """
    m, h = shape.m, shape.n_hours
    dt = DT_QUARTER_H
    ler = shape.ler
    k = np.arange(m)
    rows = [k, k]
    cols = [k, m + k]
    f_c = [np.full(m, -dt), np.zeros(m)]
    f_d = [np.zeros(m), np.full(m, dt)]
    if h:
        n0, u0, w0 = 3 * m, 3 * m + h, 3 * m + 2 * h
        j5 = np.repeat(np.arange(h), 5)
        low = m + 1 + 8 * h + np.arange(5 * h)
        high = low + 5 * h
        zero = np.zeros(5 * h)
        rows += [low, low, high, high]
        cols += [n0 + j5, u0 + j5, n0 + j5, w0 + j5]
        f_c += [zero, zero, np.full(5 * h, ler.fcr_n_endurance_h), np.full(5 * h, ler.fcr_d_endurance_h)]
        f_d += [np.full(5 * h, -ler.fcr_n_endurance_h), np.full(5 * h, -ler.fcr_d_endurance_h), zero, zero]
    return (
        np.concatenate(rows).astype(np.int32),
        np.concatenate(cols).astype(np.int32),
        np.concatenate(f_c),
        np.concatenate(f_d),
    )


class _Cached:
    __slots__ = ("entries", "eta", "highs")

    def __init__(self, highs: highspy.Highs, eta: tuple[float, float], shape: BlockShape) -> None:
        self.highs = highs
        self.eta = eta
        self.entries = efficiency_entries(shape)


class EvSolver:
    """Solves single-EV LPs, keeping one warm-started HiGHS object per block structure.

    EVs whose windows have the same length and hour offset share a HiGHS object even when their
    efficiencies differ: only the efficiency-dependent coefficients are changed, then costs and
    bounds, and dual simplex starts from the previous optimal basis.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int, int, LerFactors], _Cached] = {}
        self.solved = 0

    def solve(self, lp: EvLp) -> tuple[FloatArray, list[int], list[int], float]:
        """Solve one EV; returns column values, column and row basis status codes and objective."""
        shape = lp.shape
        key = (shape.m, shape.k0, shape.n_hours, shape.ler)
        eta = (shape.eta_c, shape.eta_d)
        cached = self._cache.get(key)
        if cached is None:
            h = new_highs()
            h.setOptionValue("presolve", "off")  # tiny LPs, warm-started: presolve only costs time
            h.setOptionValue("simplex_strategy", 1)  # dual simplex: bounds and costs change, the basis stays
            blk = block(shape)
            pass_model(h, blk.csc(), lp.col_cost, lp.col_lower, lp.col_upper, lp.row_lower, lp.row_upper)
            self._cache[key] = _Cached(h, eta, shape)
        else:
            h = cached.highs
            if cached.eta != eta:
                rows, cols, f_c, f_d = cached.entries
                values = f_c * eta[0] + f_d / eta[1]
                for r, c, v in zip(rows.tolist(), cols.tolist(), values.tolist(), strict=True):
                    h.changeCoeff(r, c, v)
                cached.eta = eta
            nc, nr = len(lp.col_cost), len(lp.row_lower)
            ci = np.arange(nc, dtype=np.int32)
            ri = np.arange(nr, dtype=np.int32)
            h.changeColsCost(nc, ci, lp.col_cost)
            h.changeColsBounds(nc, ci, lp.col_lower, lp.col_upper)
            h.changeRowsBounds(nr, ri, lp.row_lower, lp.row_upper)  # type: ignore[attr-defined]
        h.run()
        status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            # a stale basis can stall: solve again from scratch once
            h.clearSolver()
            h.run()
            status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            msg = f"ev[{lp.ev_id}]: single-EV LP not solved ({h.modelStatusToString(status)})"
            raise RuntimeError(msg)
        self.solved += 1
        sol = h.getSolution()
        basis = h.getBasis()
        return (
            np.asarray(sol.col_value, dtype=np.float64),
            [int(s) for s in basis.col_status],
            [int(s) for s in basis.row_status],
            float(h.getInfo().objective_function_value),
        )
