"""Small hand-made planning problems shared by the planner tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from v2g.fleet.model import PriceArea
from v2g.planning import EvSession, GridAreaLimits, PlanningProblem, PlanningRules, Product, SiteLimits, load_rules

START = datetime(2026, 11, 25, 12, tzinfo=UTC)


def bare_rules(**changes: object) -> PlanningRules:
    """The packaged rules without tariffs and wear, so that objectives are plain spot arithmetic."""
    options: dict[str, object] = {"include_tariffs": False, "battery_wear_eur_per_kwh": 0.0, **changes}
    return load_rules().with_options(**options)


def ev(
    ev_id: str,
    *,
    soc: float = 30.0,
    target: float = 30.0,
    minimum: float = 10.0,
    battery: float = 60.0,
    arrive_q: int = 0,
    depart_q: int = 4,
    p_kw: float = 11.0,
    eta: float = 1.0,
    availability: tuple[float, ...] | None = None,
    site: str | None = None,
) -> EvSession:
    return EvSession(
        ev_id=ev_id,
        site_id=site or f"s-{ev_id}",
        battery_kwh=battery,
        soc_kwh=soc,
        min_soc_kwh=minimum,
        target_soc_kwh=target,
        arrival_at=START + timedelta(minutes=15 * arrive_q),
        departure_at=START + timedelta(minutes=15 * depart_q),
        max_charge_kw=p_kw,
        max_discharge_kw=p_kw,
        charge_efficiency=eta,
        discharge_efficiency=eta,
        availability=availability,
    )


def problem(
    evs: list[EvSession],
    prices: tuple[float, ...],
    *,
    n: int = 4,
    import_kw: float = 1e6,
    export_kw: float = 1e6,
    reserve: dict[Product, tuple[float, ...]] | None = None,
    rules: PlanningRules | None = None,
    areas: dict[str, str] | None = None,
) -> PlanningProblem:
    """One grid area (or ``areas``: EV id -> area id) with a 100 kW fuse per site."""
    areas = areas or {}
    area_ids = sorted({areas.get(e.ev_id, "ga") for e in evs}) or ["ga"]
    return PlanningProblem(
        start_at=START,
        n_intervals=n,
        evs=tuple(evs),
        sites=tuple(SiteLimits(e.site_id, areas.get(e.ev_id, "ga"), 100.0) for e in evs),
        grid_areas=tuple(GridAreaLimits(a, PriceArea.SE3, (import_kw,), (export_kw,)) for a in area_ids),
        day_ahead_eur_per_mwh={PriceArea.SE3: prices},
        reserve_eur_per_mw_h=reserve or {},
        rules=rules or bare_rules(),
    )
