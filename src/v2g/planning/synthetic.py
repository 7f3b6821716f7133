"""Fleets generated from real EV behaviour statistics, for benchmarks, studies and tests.

The data files are given by the caller (the reference data set: ElaadNL arrival, connection-time
and energy-demand statistics and V2G-capable EV specs as packaged by ev2gym; SimBench H0 household
profiles). The day-ahead and FCR price series are read by the price feeds
(:func:`v2g.adapters.feeds.prices.read_day_ahead_hourly`,
:func:`v2g.adapters.feeds.mimer.read_fcr_hourly`, Svk Mimer results)
and passed in. Nothing here is needed to run the planner itself.

FCR prices are those of the same hour; an hour outside the series takes the same hour whole weeks
earlier (so weekdays match) within the series, never a price of another product or period.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from v2g.fleet.model import PriceArea
from v2g.planning.lp import FloatArray
from v2g.planning.model import EvSession, GridAreaLimits, PlanningProblem, Product, SiteLimits
from v2g.planning.rules import PlanningRules, load_rules
from v2g.units import QUARTER

EVS_PER_AREA = 200


@dataclass(frozen=True, slots=True)
class Behaviour:
    """Statistics of home charging sessions and the EV models."""

    arrival_pdf: FloatArray  # 96 quarter bins of the local day
    connection_h_by_pct: FloatArray  # value at percentile 0..100 (descending)
    demand_kwh_by_pct: FloatArray
    models: list[tuple[float, float, float, float, float]]  # battery, charge kW, discharge kW, eta, weight
    h0_profile: FloatArray  # one year of 15-min household p.u. values


def _pct_column(path: Path, column: str) -> FloatArray:
    with path.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    return np.asarray([float(r[column]) for r in rows if r.get(column) not in (None, "")], dtype=np.float64)


def load_behaviour(data_dir: Path) -> Behaviour:
    """Read the behaviour statistics from the reference data folder."""
    ev = data_dir / "ev"
    arrival = _pct_column(ev / "distribution-of-arrival.csv", "private")
    specs = json.loads((ev / "ev_specs_v2g_enabled2024.json").read_text(encoding="utf-8"))
    models = []
    for spec in specs.values():
        eff = [e for e in spec["3ph_ch_efficiency"] if e > 0]
        models.append(
            (
                float(spec["battery_capacity"]),
                float(spec["max_ac_charge_power"]),
                float(spec["max_ac_discharge_power"]),
                float(np.mean(eff)) / 100.0,
                float(spec["number_of_registrations"]),
            )
        )
    with (data_dir / "household" / "simbench_2016_15min_H0_EV_PV_profiles.csv").open(encoding="utf-8") as fh:
        h0 = np.asarray([float(r["H0-A"]) for r in csv.DictReader(fh)], dtype=np.float64)
    return Behaviour(
        arrival_pdf=arrival / arrival.sum(),
        connection_h_by_pct=_pct_column(ev / "distribution-of-connection-time.csv", "private"),
        demand_kwh_by_pct=_pct_column(ev / "distribution-of-energy-demand.csv", "private"),
        models=models,
        h0_profile=h0,
    )


def fcr_for(fcr: dict[datetime, tuple[float, float, float]], at: datetime) -> tuple[float, float, float]:
    """FCR prices for an hour: the recorded hour, else the same hour whole weeks earlier (up to a year),
    else none (0)."""
    for weeks in range(53):
        probe = at - timedelta(weeks=weeks)
        if probe in fcr:
            return fcr[probe]
    return (0.0, 0.0, 0.0)


def generate_problem(
    n_evs: int,
    behaviour: Behaviour,
    day_ahead: dict[datetime, float],
    fcr: dict[datetime, tuple[float, float, float]],
    *,
    day: datetime,
    grid: str = "typical",
    seed: int = 0,
    rules: PlanningRules | None = None,
    evs_per_area: int = EVS_PER_AREA,
) -> PlanningProblem:
    """A day-ahead problem: 96 quarters from 12:00 UTC on ``day``, 1 EV per site, 1 grid area per 200 EVs.

    ``grid``: ``typical`` sets area limits that bind in a few night quarters in about half the
    areas; ``congested`` sets limits that every area exceeds in many quarters (night import and
    evening export).
    """
    rng = np.random.default_rng(seed)
    start = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    n = 96
    # arrivals: the home-arrival distribution between 12:00 and 23:45 local (UTC+1)
    pdf = behaviour.arrival_pdf.copy()
    local_start = 13 * 4
    pdf[:local_start] = 0.0
    pdf /= pdf.sum()
    arrival_q = rng.choice(96, size=n_evs, p=pdf) - local_start  # quarters after 12:00 local = 11:00 UTC + 1h
    arrival_q = np.maximum(arrival_q, 0)
    pct = rng.uniform(0, 100, size=n_evs)
    conn_h = np.interp(pct, np.arange(behaviour.connection_h_by_pct.size), behaviour.connection_h_by_pct)
    conn_h = np.clip(conn_h, 4.0, 40.0)
    demand = np.interp(
        rng.uniform(5, 100, size=n_evs), np.arange(behaviour.demand_kwh_by_pct.size), behaviour.demand_kwh_by_pct
    )
    weights = np.asarray([m[4] for m in behaviour.models])
    model_idx = rng.choice(len(behaviour.models), size=n_evs, p=weights / weights.sum())
    doy = (start - datetime(start.year, 1, 1, tzinfo=UTC)).days % 365
    h0 = behaviour.h0_profile[doy * 96 + 48 : doy * 96 + 48 + n]
    if h0.size < n:
        h0 = np.resize(behaviour.h0_profile[:n], n)
    evs: list[EvSession] = []
    sites: list[SiteLimits] = []
    n_areas = max(1, -(-n_evs // evs_per_area))
    for i in range(n_evs):
        battery, pc, pd, eta, _ = behaviour.models[int(model_idx[i])]
        arrival = start + QUARTER * int(arrival_q[i])
        departure = arrival + timedelta(hours=float(conn_h[i]))
        departure = departure.replace(minute=departure.minute - departure.minute % 15, second=0, microsecond=0)
        soc = float(np.clip(battery * 0.8 - min(demand[i], battery * 0.7), battery * 0.1, battery * 0.8))
        area_id = f"ga{i // evs_per_area:04d}"
        scale = float(rng.uniform(2.0, 5.0))
        sites.append(
            SiteLimits(
                site_id=f"site{i:06d}",
                grid_area_id=area_id,
                fuse_limit_kw=float(rng.choice([13.8, 17.3, 22.1])),
                household_load_kw=tuple(np.round(scale * h0, 3).tolist()),
            )
        )
        evs.append(
            EvSession(
                ev_id=f"ev{i:06d}",
                site_id=f"site{i:06d}",
                battery_kwh=battery,
                soc_kwh=round(soc, 3),
                min_soc_kwh=round(battery * 0.2, 3),
                target_soc_kwh=round(battery * 0.8, 3),
                arrival_at=arrival,
                departure_at=departure,
                max_charge_kw=pc,
                max_discharge_kw=pd,
                charge_efficiency=round(eta, 4),
                discharge_efficiency=round(eta, 4),
                availability=(round(float(rng.uniform(0.85, 0.99)), 3),) * 24,
            )
        )
    areas: list[GridAreaLimits] = []
    for j in range(n_areas):
        size = min(evs_per_area, n_evs - j * evs_per_area)
        nominal = 11.0 * size
        if grid == "congested":
            # night import and late-evening export both over the limit in about 15-20 quarters
            imp = np.full(n, nominal * rng.uniform(0.17, 0.2))
            exp = np.full(n, nominal * rng.uniform(0.03, 0.04))
        else:
            # about half the areas: a limit below the charging peak around midnight (22:00-02:00 UTC)
            binding = rng.uniform() < 0.5
            level = rng.uniform(0.3, 0.38) if binding else 1.0
            imp = np.full(n, nominal)
            imp[40:56] = nominal * level
            exp = np.full(n, nominal)
        areas.append(
            GridAreaLimits(
                f"ga{j:04d}", PriceArea.SE3, tuple(np.round(imp, 3).tolist()), tuple(np.round(exp, 3).tolist())
            )
        )
    hours = [start + timedelta(hours=h) for h in range(24)]
    prices = tuple(day_ahead[h] for h in hours)
    reserve = [fcr_for(fcr, h) for h in hours]
    return PlanningProblem(
        start_at=start,
        n_intervals=n,
        evs=tuple(evs),
        sites=tuple(sites),
        grid_areas=tuple(areas),
        day_ahead_eur_per_mwh={PriceArea.SE3: prices},
        reserve_eur_per_mw_h={
            Product.FCR_N: tuple(r[0] for r in reserve),
            Product.FCR_D_UP: tuple(r[1] for r in reserve),
            Product.FCR_D_DOWN: tuple(r[2] for r in reserve),
        },
        rules=rules or load_rules(),
    )
