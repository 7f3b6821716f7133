"""Planner file formats: fleet JSON and plan JSON (the price files are read by the price feeds).

``FLEET.json``::

    {"start_at": "2026-11-25T12:00:00Z", "n_intervals": 96,
     "rules": {"confidence": 0.95, "include_tariffs": true},            (optional overrides)
     "grid_areas": [{"id": "ga1", "price_area": "SE3", "import_limit_kw": 2200 | [..96], "export_limit_kw": ...}],
     "sites": [{"id": "s1", "grid_area_id": "ga1", "fuse_limit_kw": 17.3,
                "household_load_kw": 1.2 | [..96], "pv_kw": 0 | [..96]}],
     "evs": [{"id": "ev1", "site_id": "s1", "battery_kwh": 60, "soc_kwh": 20, "min_soc_kwh": 12,
              "target_soc_kwh": 48, "arrival_at": "...", "departure_at": "...", "max_charge_kw": 11,
              "max_discharge_kw": 11, "charge_efficiency": 0.92, "discharge_efficiency": 0.92,
              "next_arrival_at": null, "availability": [..24] | null, "charger_id": null}]}

The price files (``PRICES.csv``, ``FCR.csv``) are read by :mod:`v2g.adapters.feeds.prices`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np

from v2g.fleet.model import PriceArea
from v2g.planning.errors import PlanningInputError
from v2g.planning.model import (
    EvSession,
    FleetPlan,
    GridAreaLimits,
    PlanningProblem,
    Product,
    SiteLimits,
)
from v2g.planning.rules import PlanningRules
from v2g.units import parse_utc


def _get(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        msg = f"{where}.{key}: missing"
        raise PlanningInputError(msg)
    return obj[key]


def _num(obj: dict[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = obj.get(key, default) if default is not None else _get(obj, key, where)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"{where}.{key}: {value!r} is not a number"
        raise PlanningInputError(msg)
    return float(value)


def _series(obj: dict[str, Any], key: str, where: str, default: float | None = None) -> tuple[float, ...]:
    value = obj.get(key, default) if default is not None else _get(obj, key, where)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (float(value),)
    if not isinstance(value, list) or not value:
        msg = f"{where}.{key}: must be a number or a non-empty list of numbers"
        raise PlanningInputError(msg)
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | float):
            msg = f"{where}.{key}[{i}]: {v!r} is not a number"
            raise PlanningInputError(msg)
        out.append(float(v))
    return tuple(out)


def _time(obj: dict[str, Any], key: str, where: str) -> datetime:
    value = _get(obj, key, where)
    if not isinstance(value, str):
        msg = f"{where}.{key}: {value!r} is not an ISO 8601 datetime string"
        raise PlanningInputError(msg)
    try:
        return parse_utc(value, field=f"{where}.{key}")
    except ValueError as exc:
        raise PlanningInputError(str(exc)) from exc


def parse_fleet(
    text: str, rules: PlanningRules
) -> tuple[datetime, int, tuple[EvSession, ...], tuple[SiteLimits, ...], tuple[GridAreaLimits, ...], PlanningRules]:
    """Read a fleet file; errors name the element (``evs[3]`` / its id) and the field."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"fleet: not valid JSON ({exc.msg} at line {exc.lineno})"
        raise PlanningInputError(msg) from exc
    if not isinstance(doc, dict):
        msg = "fleet: the document must be a JSON object"
        raise PlanningInputError(msg)
    start = _time(doc, "start_at", "fleet")
    n = int(_num(doc, "n_intervals", "fleet", 96))
    overrides = doc.get("rules") or {}
    if not isinstance(overrides, dict):
        msg = "fleet.rules: must be an object"
        raise PlanningInputError(msg)
    allowed = {"confidence", "confidence_method", "include_tariffs", "battery_wear_eur_per_kwh"}
    unknown = set(overrides) - allowed
    if unknown:
        msg = f"fleet.rules: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
        raise PlanningInputError(msg)
    rules = rules.with_options(**overrides) if overrides else rules
    areas = []
    for i, a in enumerate(doc.get("grid_areas") or []):
        where = f"fleet.grid_areas[{i}]"
        try:
            price_area = PriceArea(str(_get(a, "price_area", where)))
        except ValueError as exc:
            msg = f"{where}.price_area: {a.get('price_area')!r} is not one of SE1..SE4"
            raise PlanningInputError(msg) from exc
        areas.append(
            GridAreaLimits(
                str(_get(a, "id", where)),
                price_area,
                _series(a, "import_limit_kw", where),
                _series(a, "export_limit_kw", where),
            )
        )
    sites = []
    for i, s in enumerate(doc.get("sites") or []):
        where = f"fleet.sites[{i}]"
        sites.append(
            SiteLimits(
                str(_get(s, "id", where)),
                str(_get(s, "grid_area_id", where)),
                _num(s, "fuse_limit_kw", where),
                _series(s, "household_load_kw", where, 0.0),
                _series(s, "pv_kw", where, 0.0),
            )
        )
    evs = []
    for i, e in enumerate(doc.get("evs") or []):
        where = f"fleet.evs[{i}]"
        if isinstance(e, dict) and "id" in e:
            where = f"ev[{e['id']}]"
        nxt = e.get("next_arrival_at")
        avail = e.get("availability")
        evs.append(
            EvSession(
                ev_id=str(_get(e, "id", where)),
                site_id=str(_get(e, "site_id", where)),
                battery_kwh=_num(e, "battery_kwh", where),
                soc_kwh=_num(e, "soc_kwh", where),
                min_soc_kwh=_num(e, "min_soc_kwh", where),
                target_soc_kwh=_num(e, "target_soc_kwh", where),
                arrival_at=_time(e, "arrival_at", where),
                departure_at=_time(e, "departure_at", where),
                max_charge_kw=_num(e, "max_charge_kw", where),
                max_discharge_kw=_num(e, "max_discharge_kw", where),
                charge_efficiency=_num(e, "charge_efficiency", where, 0.92),
                discharge_efficiency=_num(e, "discharge_efficiency", where, 0.92),
                next_arrival_at=_time(e, "next_arrival_at", where) if nxt is not None else None,
                availability=_series(e, "availability", where) if avail is not None else None,
                charger_id=e.get("charger_id"),
            )
        )
    return start, n, tuple(evs), tuple(sites), tuple(areas), rules


DayAheadReader = Callable[[datetime, int], dict[PriceArea, tuple[float, ...]]]
ReserveReader = Callable[[datetime, int], dict[Product, tuple[float, ...]]]


def load_problem(
    fleet_text: str, day_ahead: DayAheadReader, reserve: ReserveReader | None, rules: PlanningRules
) -> PlanningProblem:
    """A validated problem from the fleet file and the price readers.

    ``day_ahead(start, n)`` gives the day-ahead prices of the ``n`` quarters from ``start``,
    ``reserve(start, hours)`` the hourly reserve prices (both read by the price feeds).
    """
    start, n, evs, sites, areas, rules = parse_fleet(fleet_text, rules)
    problem = PlanningProblem(
        start_at=start,
        n_intervals=n,
        evs=evs,
        sites=sites,
        grid_areas=areas,
        day_ahead_eur_per_mwh=day_ahead(start, n),
        reserve_eur_per_mw_h=reserve(start, n // 4) if reserve is not None else {},
        rules=rules,
    )
    problem.validate()
    return problem


def _clean(values: Any) -> list[float | None]:
    """A series rounded to 6 decimals (1 mW, 1 mWh), NaN as null; rounded as arrays, not value by value."""
    arr = np.asarray(values, dtype=np.float64)
    rounded: list[float | None] = np.round(arr, 6).tolist()
    if np.isnan(arr).any():
        rounded = [None if v is None or math.isnan(v) else v for v in rounded]
    return rounded


def plan_to_json(plan: FleetPlan) -> dict[str, Any]:
    """The plan as a JSON document."""
    return {
        "strategy": plan.strategy.value,
        "start_at": plan.start_at.isoformat(),
        "n_intervals": plan.n_intervals,
        "status": plan.status,
        "grid_limits_enforced": plan.grid_limits_enforced,
        "objective_eur": round(plan.objective_eur, 6),
        "lp_objective_eur": round(plan.lp_objective_eur, 6),
        "energy_cost_eur": round(plan.energy_cost_eur, 6),
        "reserve_revenue_eur": round(plan.reserve_revenue_eur, 6),
        "wear_cost_eur": round(plan.wear_cost_eur, 6),
        "confidence": {
            "confidence": plan.confidence_cost.confidence,
            "expected_revenue_eur": round(plan.confidence_cost.expected_revenue_eur, 6),
            "confident_revenue_eur": round(plan.confidence_cost.confident_revenue_eur, 6),
            "bid_revenue_eur": round(plan.confidence_cost.bid_revenue_eur, 6),
            "cost_eur": round(plan.confidence_cost.cost_eur, 6),
            "rounding_cost_eur": round(plan.confidence_cost.rounding_cost_eur, 6),
        },
        "bids": [
            {
                "product": b.product.value,
                "hour_start_at": b.hour_start_at.isoformat(),
                "price_area": b.price_area.value,
                "mw": b.mw,
                "expected_mw": round(b.expected_mw, 6),
                "price_eur_per_mw_h": b.price_eur_per_mw_h,
            }
            for b in plan.bids
        ],
        "shortfalls": [
            {
                "ev_id": s.ev_id,
                "target_soc_kwh": s.target_soc_kwh,
                "planned_soc_kwh": s.planned_soc_kwh,
                "reason": s.reason,
            }
            for s in plan.shortfalls
        ],
        "areas": [
            {"id": a.area_id, "evs": a.n_evs, "method": a.method, "status": a.status, "objective_eur": a.objective_eur}
            for a in plan.area_stats
        ],
        "evs": [
            {
                "id": p.ev_id,
                "charger_id": p.charger_id,
                "p_kw": _clean(p.p_kw),
                "soc_kwh": _clean(p.soc_kwh),
                "reserve_kw": {k.value: _clean(v) for k, v in p.reserve_kw.items()},
                "energy_cost_eur": round(p.energy_cost_eur, 6),
                "reserve_revenue_eur": round(p.reserve_revenue_eur, 6),
                "wear_cost_eur": round(p.wear_cost_eur, 6),
            }
            for p in plan.ev_plans
        ],
    }


def plan_from_json(text: str) -> FleetPlan:
    """Read a plan written by :func:`plan_to_json` (for ``v2g plan check``)."""

    from v2g.planning.model import AreaStats, ConfidenceCost, EvPlan, ReserveBid, Strategy, TargetShortfall

    try:
        doc = json.loads(text)
        start = parse_utc(doc["start_at"], field="plan.start_at")
        n = int(doc["n_intervals"])
        evs = tuple(
            EvPlan(
                ev_id=e["id"],
                p_kw=np.asarray(e["p_kw"], dtype=np.float64),
                soc_kwh=np.asarray([np.nan if v is None else v for v in e["soc_kwh"]], dtype=np.float64),
                reserve_kw={Product(k): np.asarray(v, dtype=np.float64) for k, v in e["reserve_kw"].items()},
                energy_cost_eur=float(e["energy_cost_eur"]),
                reserve_revenue_eur=float(e["reserve_revenue_eur"]),
                wear_cost_eur=float(e["wear_cost_eur"]),
                first_interval=0,
                end_interval=n,
                charger_id=e.get("charger_id"),
            )
            for e in doc["evs"]
        )
        bids = tuple(
            ReserveBid(
                Product(b["product"]),
                parse_utc(b["hour_start_at"], field="bid.hour_start_at"),
                PriceArea(b["price_area"]),
                float(b["mw"]),
                float(b["expected_mw"]),
                float(b["price_eur_per_mw_h"]),
            )
            for b in doc["bids"]
        )
        shortfalls = tuple(
            TargetShortfall(s["ev_id"], float(s["target_soc_kwh"]), float(s["planned_soc_kwh"]), s["reason"])
            for s in doc["shortfalls"]
        )
        conf = doc["confidence"]
        return FleetPlan(
            strategy=Strategy(doc["strategy"]),
            start_at=start,
            n_intervals=n,
            ev_plans=evs,
            bids=bids,
            shortfalls=shortfalls,
            area_stats=tuple(
                AreaStats(a["id"], a["evs"], a["method"], a["status"], a["objective_eur"], 0.0, 0) for a in doc["areas"]
            ),
            lp_objective_eur=float(doc["lp_objective_eur"]),
            confidence_cost=ConfidenceCost(
                float(conf["confidence"]),
                float(conf["expected_revenue_eur"]),
                float(conf["bid_revenue_eur"]),
                float(conf["confident_revenue_eur"]),
            ),
            grid_limits_enforced=bool(doc["grid_limits_enforced"]),
            status=str(doc["status"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"plan: malformed plan file ({type(exc).__name__}: {exc})"
        raise PlanningInputError(msg) from exc
