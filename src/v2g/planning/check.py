"""Independent re-verification of a fleet plan against the problem it was made for.

Recomputes everything from the raw inputs and the published setpoints (not from the LP): state of
charge from the signed power and the efficiencies, its bounds, departure targets, charger and fuse
limits with the reserve headroom, the limited-energy-reservoir endurance, grid-area limits, the
owner's overrides (no discharge, no reserves), the bid rules (minimum, granularity, deliverable at
the confidence) and the reserve commitments (held in full, or the shortfall reported).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from v2g.planning.lp import FloatArray
from v2g.planning.model import PRODUCTS, FleetPlan, PlanningProblem, Product
from v2g.planning.planner import confidence_z, deliverable_kw
from v2g.units import DT_QUARTER_H, HOUR, QUARTER, QUARTERS_PER_HOUR, ceil_quarter, ensure_utc, floor_quarter

TOL = 1e-5


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: what, where (EV, area or bid) and when (interval or hour)."""

    kind: str
    subject: str
    index: int | None
    detail: str

    def __str__(self) -> str:
        at = "" if self.index is None else f" at {self.index}"
        return f"{self.kind}: {self.subject}{at}: {self.detail}"


def _availability(problem: PlanningProblem, index: int, hour: int) -> float:
    series = problem.evs[index].availability
    return 1.0 if series is None else float(series[hour])


def _series(values: tuple[float, ...], n: int) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    return np.full(n, float(arr[0])) if arr.size == 1 else arr


def check_schedule(problem: PlanningProblem, plan: FleetPlan, tol: float = TOL) -> list[Violation]:
    """Every violated invariant of ``plan``; an empty list means the plan is valid."""
    out: list[Violation] = []
    n, hours, dt = problem.n_intervals, problem.n_hours, DT_QUARTER_H
    rules = problem.rules
    start, end = ensure_utc(problem.start_at), problem.end_at
    sites = {s.site_id: s for s in problem.sites}
    areas = {a.area_id: a for a in problem.grid_areas}
    plans = {p.ev_id: p for p in plan.ev_plans}
    shortfalls = {s.ev_id: s for s in plan.shortfalls}
    area_net = {a: np.zeros(n) for a in areas}
    site_down: dict[str, FloatArray] = {}
    site_up: dict[str, FloatArray] = {}
    site_count: dict[str, int] = {}
    f_n, t_n = rules.fcr_n_power_range_factor, rules.fcr_n_endurance_h
    g_d, t_d = rules.fcr_d_nem_power_factor, rules.fcr_d_endurance_h
    if plan.n_intervals != n:
        out.append(Violation("horizon", "plan", None, f"{plan.n_intervals} intervals, problem has {n}"))
        return out
    for ev in problem.evs:
        name = f"ev[{ev.ev_id}]"
        pl = plans.get(ev.ev_id)
        if pl is None:
            out.append(Violation("missing", name, None, "no plan for this EV"))
            continue
        site = sites[ev.site_id]
        load, pv = _series(site.household_load_kw, n), _series(site.pv_kw, n)
        p_max = np.minimum(ev.max_charge_kw, np.maximum(site.fuse_limit_kw - load + pv, 0.0))
        p_min = -np.minimum(ev.max_discharge_kw, np.maximum(site.fuse_limit_kw + load - pv, 0.0))
        a = max(0, int((ceil_quarter(ensure_utc(ev.arrival_at)) - start) // QUARTER))
        b = min(n, int((floor_quarter(ensure_utc(ev.departure_at)) - start) // QUARTER))
        b = max(a, b)
        p = np.asarray(pl.p_kw, dtype=np.float64)
        if not ev.discharge_allowed and np.any(p < -tol):
            k = int(np.flatnonzero(p < -tol)[0])
            out.append(Violation("override", name, k, f"discharges {-p[k]:.4f} kW; the owner does not allow it"))
        after = p[b:].copy()
        if len(after) and ensure_utc(ev.departure_at) > floor_quarter(ensure_utc(ev.departure_at)) and after[0] >= -tol:
            after[0] = 0.0  # charging in the quarter the EV leaves in: the departure top-up (never discharge)
        outside = np.abs(np.concatenate([p[:a], after])) > tol
        if outside.any():
            out.append(Violation("plugged_out", name, None, "power set while the EV is not plugged in"))
        for k in np.flatnonzero(p[a:b] > p_max[a:b] + tol).tolist():
            out.append(Violation("power", name, int(a + k), f"{p[a + k]:.4f} kW above the limit {p_max[a + k]:.4f}"))
        for k in np.flatnonzero(p[a:b] < p_min[a:b] - tol).tolist():
            out.append(Violation("power", name, int(a + k), f"{p[a + k]:.4f} kW below the limit {p_min[a + k]:.4f}"))
        # state of charge from the setpoints
        e = np.full(n + 1, np.nan)
        level = ev.soc_kwh
        e_low = min(ev.min_soc_kwh, ev.soc_kwh)
        if a < n:
            e[a] = level
        for k in range(a, b):
            level += dt * (ev.charge_efficiency * max(p[k], 0.0) - max(-p[k], 0.0) / ev.discharge_efficiency)
            e[k + 1] = level
        seg = e[a : b + 1] if a < n else np.zeros(0)
        for k in np.flatnonzero(seg < e_low - tol).tolist():
            out.append(Violation("soc_min", name, int(a + k), f"{seg[k]:.4f} kWh below {e_low:.4f}"))
        for k in np.flatnonzero(seg > ev.battery_kwh + tol).tolist():
            out.append(Violation("soc_max", name, int(a + k), f"{seg[k]:.4f} kWh above {ev.battery_kwh:.4f}"))
        planned = np.asarray(pl.soc_kwh, dtype=np.float64)
        if a < n and not np.allclose(planned[a : b + 1], seg, atol=1e-4, equal_nan=True):
            out.append(Violation("soc_report", name, None, "reported SoC differs from the SoC the setpoints give"))
        target = ev.target_soc_kwh
        departure = ensure_utc(ev.departure_at)
        if departure > end:
            target = max(
                0.0,
                target - ev.charge_efficiency * min(ev.max_charge_kw, site.fuse_limit_kw) * ((departure - end) / HOUR),
            )
        final = float(e[b]) if a < n and b > a else ev.soc_kwh
        if final < target - 1e-4:
            sf = shortfalls.get(ev.ev_id)
            if sf is None:
                out.append(Violation("departure", name, b, f"{final:.4f} kWh below the target {target:.4f}"))
            elif final < sf.planned_soc_kwh - 1e-4:
                out.append(Violation("departure", name, b, f"{final:.4f} kWh below the reported best effort"))
        # reserves
        res = np.stack([np.asarray(pl.reserve_kw.get(pr, np.zeros(hours)), dtype=np.float64) for pr in PRODUCTS])
        if plan.strategy.value in ("uncontrolled", "smart", "v2g-spot") and np.any(res > tol):
            out.append(Violation("reserve", name, None, f"strategy {plan.strategy} must not hold reserves"))
        if np.any(res < -tol):
            out.append(Violation("reserve", name, None, "negative reserve capacity"))
        if not ev.reserves_allowed and np.any(res > tol):
            out.append(Violation("override", name, None, "holds reserves; the owner does not allow it"))
        for hour in np.flatnonzero(res.max(axis=0) > tol).tolist():
            q0 = hour * QUARTERS_PER_HOUR
            if q0 < a or q0 + QUARTERS_PER_HOUR > b:
                out.append(
                    Violation("reserve", name, int(hour), "reserve in an hour the EV is not plugged in throughout")
                )
                continue
            rn, ru, rw = res[:, hour]
            for k in range(q0, q0 + QUARTERS_PER_HOUR):
                up = -p[k] + f_n * rn + ru + g_d * rw
                down = p[k] + f_n * rn + rw + g_d * ru
                if up > -p_min[k] + tol:
                    out.append(Violation("headroom_up", name, k, f"needs {up:.4f} kW, limit {-p_min[k]:.4f}"))
                if down > p_max[k] + tol:
                    out.append(Violation("headroom_down", name, k, f"needs {down:.4f} kW, limit {p_max[k]:.4f}"))
            for k in range(q0, q0 + QUARTERS_PER_HOUR + 1):
                up_e = (t_n * rn + t_d * ru) / ev.discharge_efficiency
                down_e = (t_n * rn + t_d * rw) * ev.charge_efficiency
                if e[k] - up_e < e_low - tol:
                    out.append(Violation("endurance_up", name, k, f"{e[k]:.4f} kWh cannot sustain {up_e:.4f} kWh"))
                if e[k] + down_e > ev.battery_kwh + tol:
                    out.append(Violation("endurance_down", name, k, f"{e[k]:.4f} kWh cannot absorb {down_e:.4f} kWh"))
        area_net[site.grid_area_id] += p
        quarter_res = np.repeat(res, QUARTERS_PER_HOUR, axis=1)[:, :n]  # (3, n) reserve in force per quarter
        down_kw = p + f_n * quarter_res[0] + quarter_res[2] + g_d * quarter_res[1]
        up_kw = -p + f_n * quarter_res[0] + quarter_res[1] + g_d * quarter_res[2]
        site_down[ev.site_id] = site_down.get(ev.site_id, np.zeros(n)) + down_kw
        site_up[ev.site_id] = site_up.get(ev.site_id, np.zeros(n)) + up_kw
        site_count[ev.site_id] = site_count.get(ev.site_id, 0) + 1
    for site_id, count in site_count.items():
        if count < 2:
            continue  # one EV: its own headroom rows above already check the fuse
        site = sites[site_id]
        load, pv = _series(site.household_load_kw, n), _series(site.pv_kw, n)
        imp_room = np.maximum(site.fuse_limit_kw - load + pv, 0.0)
        exp_room = np.maximum(site.fuse_limit_kw + load - pv, 0.0)
        for k in np.flatnonzero(site_down[site_id] > imp_room + tol * count).tolist():
            detail = f"{site_down[site_id][k]:.3f} kW with reserves > {imp_room[k]:.3f}"
            out.append(Violation("site_import", f"site[{site_id}]", k, detail))
        for k in np.flatnonzero(site_up[site_id] > exp_room + tol * count).tolist():
            detail = f"{site_up[site_id][k]:.3f} kW with reserves > {exp_room[k]:.3f}"
            out.append(Violation("site_export", f"site[{site_id}]", k, detail))
    if plan.grid_limits_enforced:
        for area_id, area in areas.items():
            imp = _series(area.import_limit_kw, n)
            exp = _series(area.export_limit_kw, n)
            net = area_net[area_id]
            for k in np.flatnonzero(net > imp + tol * max(1.0, len(problem.evs))).tolist():
                out.append(Violation("grid_import", f"grid_area[{area_id}]", int(k), f"{net[k]:.3f} kW > {imp[k]:.3f}"))
            for k in np.flatnonzero(-net > exp + tol * max(1.0, len(problem.evs))).tolist():
                out.append(
                    Violation("grid_export", f"grid_area[{area_id}]", int(k), f"{-net[k]:.3f} kW > {exp[k]:.3f}")
                )
    out.extend(_check_bids(problem, plan))
    return out


def _check_bids(problem: PlanningProblem, plan: FleetPlan) -> list[Violation]:
    out: list[Violation] = []
    rules = problem.rules
    z = confidence_z(rules.confidence, rules.confidence_method)
    sites = {s.site_id: s for s in problem.sites}
    area_price = {a.area_id: a.price_area for a in problem.grid_areas}
    plans = {p.ev_id: p for p in plan.ev_plans}
    hours = problem.n_hours
    members: dict[str, list[int]] = {}
    for i, ev in enumerate(problem.evs):
        members.setdefault(str(area_price[sites[ev.site_id].grid_area_id]), []).append(i)
    bids = {(b.product, int((b.hour_start_at - problem.start_at) // HOUR), str(b.price_area)): b for b in plan.bids}
    committed = {(str(area), str(product)): kw for (area, product), kw in problem.committed_kw().items()}
    reported = {
        (str(c.price_area), str(c.product), int((c.hour_start_at - problem.start_at) // HOUR)): c
        for c in plan.commitment_shortfalls
    }
    for area, _product in committed:
        members.setdefault(area, [])
    if len(bids) != len(plan.bids):
        out.append(Violation("bid_duplicate", "bids", None, "two bids for one product, hour and price area"))
    for (product, hour, area), bid in bids.items():
        subject = f"bid[{product}/{area}]"
        steps = bid.mw / rules.bid_granularity_mw
        if bid.mw < rules.min_bid_mw - 1e-9:
            out.append(Violation("bid_minimum", subject, hour, f"{bid.mw} MW below {rules.min_bid_mw} MW"))
        if abs(steps - round(steps)) > 1e-6:
            out.append(Violation("bid_granularity", subject, hour, f"{bid.mw} MW not a multiple of the granularity"))
        if not 0 <= hour < hours:
            out.append(Violation("bid_hour", subject, hour, "outside the horizon"))
    for area, idx in members.items():
        for product in PRODUCTS:
            for hour in range(hours):
                alloc = np.array([plans[problem.evs[i].ev_id].reserve_kw[product][hour] for i in idx])
                avail = np.array([_availability(problem, i, hour) for i in idx])
                offer = bids.get((Product(product), hour, area))
                _, deliverable = deliverable_kw(alloc, avail, z) if idx else (0.0, 0.0)
                series = committed.get((area, str(product)))
                commit_kw = float(series[hour]) if series is not None else 0.0
                if commit_kw > 0.0 and deliverable < commit_kw - 1e-4:
                    gap = reported.get((area, str(product), hour))
                    if gap is None or gap.planned_kw > deliverable + 1e-4:
                        detail = f"holds {deliverable:.4f} kW of the committed {commit_kw:.4f} kW without reporting it"
                        out.append(Violation("commitment", f"commitment[{product}/{area}]", hour, detail))
                subject = f"bid[{product}/{area}]"
                if offer is None:
                    if commit_kw <= 0.0 and np.any(alloc > TOL):
                        out.append(Violation("bid_missing", subject, hour, "reserve allocated but not bid"))
                    continue
                if offer.mw * 1000.0 + commit_kw > deliverable + 1e-6 * max(1.0, deliverable):
                    out.append(
                        Violation(
                            "bid_deliverable",
                            subject,
                            hour,
                            f"{offer.mw} MW (+ {commit_kw / 1000.0:.6f} MW committed) exceeds "
                            f"{deliverable / 1000.0:.6f} MW deliverable at {rules.confidence:.0%} confidence",
                        )
                    )
    return out
