"""From a plugged-in EV as the device layer sees it to the planner's session (the cycle's session builder).

The values come from :func:`v2g.planning.needs.assemble_needs` with the owner's stored preferences;
the sources of each value go with the plan so the operator and the owner can see why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from v2g.fleet.model import Charger, Vehicle
from v2g.fleet.preferences import OwnerPreferences
from v2g.planning.model import EvSession, FleetPlan, PlanningProblem
from v2g.planning.needs import Iso15118Needs, NeedsDefaults, PluggedInEv, SocReading, assemble_needs
from v2g.services.planning.ports import PluggedEv
from v2g.units import HOUR, QUARTER, floor_quarter

PreferencesLookup = Callable[[str], OwnerPreferences | None]
"""The owner's preferences of an EV (None: none stored)."""


def plugged_in_ev(ev: PluggedEv, preferences: OwnerPreferences | None, now: datetime) -> PluggedInEv:
    """The needs assembler's view of ``ev``."""
    vehicle = Vehicle(
        id=ev.ev_id,
        customer_id=ev.customer_id,
        make="",
        model="",
        battery_kwh=ev.battery_kwh,
        max_charge_kw=ev.ev_max_charge_kw,
        max_discharge_kw=ev.ev_max_discharge_kw if ev.v2g_capable else 0.0,
        v2g_capable=ev.v2g_capable,
        site_id=ev.site_id,
    )
    charger = Charger(
        id=ev.charger_id,
        site_id=ev.site_id,
        vendor="",
        model="",
        protocol=ev.protocol,
        max_charge_kw=ev.charger_max_charge_kw,
        max_discharge_kw=ev.charger_max_discharge_kw if ev.discharge_supported else 0.0,
    )
    iso = None
    if ev.needs is not None:
        n = ev.needs
        iso = Iso15118Needs(
            received_at=n.received_at,
            departure_at=n.departure_at,
            target_soc_percent=n.target_soc_percent,
            energy_request_kwh=n.energy_request_kwh,
            max_charge_kw=n.max_charge_kw,
            max_discharge_kw=n.max_discharge_kw,
        )
    soc = SocReading(ev.soc_percent, ev.soc_measured_at) if ev.soc_percent is not None and ev.soc_measured_at else None
    return PluggedInEv(vehicle, charger, ev.plugged_in_at or now, iso, soc, preferences)


def needs_session_builder(
    preferences: PreferencesLookup, defaults: NeedsDefaults | None = None
) -> Callable[[PluggedEv, datetime, datetime], tuple[EvSession, dict[str, str]]]:
    """A session builder for the planning cycle: assembled needs with the owner's preferences."""

    def build(ev: PluggedEv, now: datetime, horizon_end: datetime) -> tuple[EvSession, dict[str, str]]:
        assembled = assemble_needs(plugged_in_ev(ev, preferences(ev.ev_id), now), now, defaults)
        sources: dict[str, str] = {k: str(v) for k, v in assembled.sources.items()}
        if assembled.reasons:
            sources["why"] = "; ".join(assembled.reasons)
        return assembled.session, sources

    return build


def preferences_from(mapping: Mapping[str, OwnerPreferences]) -> PreferencesLookup:
    """A lookup over a fixed set of preferences (tests, scenarios)."""
    return mapping.get


def charge_only(session: EvSession) -> EvSession:
    """The session without discharge (a charger that refused its schedule gets charge-only plans)."""
    return replace(session, max_discharge_kw=0.0)


def within_horizon(
    session: EvSession, why: dict[str, str], now: datetime, end_at: datetime, p_now_kw: float = 0.0
) -> tuple[EvSession, dict[str, str]]:
    """The EV's window inside the horizon.

    A plan made on a quarter boundary starts there with the SoC measured now. A plan made inside a
    quarter leaves that quarter as it runs (the charger keeps ``p_now_kw`` until its end: the cycle
    sends that value for it) and plans from the next boundary, with the SoC projected to it; so no
    energy is planned in time that has already passed. A departure beyond the horizon asks for the
    target by the horizon's end.
    """
    start = floor_quarter(now)
    if now > start:
        start += QUARTER
        left_h = (start - now).total_seconds() / 3600.0
        gained = p_now_kw * session.charge_efficiency if p_now_kw >= 0 else p_now_kw / session.discharge_efficiency
        soc = min(max(session.soc_kwh + gained * left_h, 0.0), session.battery_kwh)
        session = replace(session, soc_kwh=soc)
        why = {**why, "soc_kwh": f"{why.get('soc_kwh', 'soc')}; projected to {start:%H:%M} UTC at {p_now_kw:.1f} kW"}
    if session.departure_at <= start:
        msg = f"departure_at: {session.departure_at.isoformat()} is before the next quarter starts; nothing to plan"
        raise ValueError(msg)
    if session.arrival_at < start:
        session = replace(session, arrival_at=start)
    if session.departure_at > end_at:
        why = {**why, "departure_at": f"{why.get('departure_at', 'departure')}; target asked by the horizon end"}
        session = replace(session, departure_at=end_at)
    return session, why


def top_up_departure_quarters(plan: FleetPlan, problem: PlanningProblem) -> list[str]:
    """EVs that leave inside a quarter: the planner plans whole quarters, so an EV's plan ends at the
    start of the quarter it leaves in. Where that leaves it short of its target (a tight stay, or energy
    a reserve activation took), it charges what is missing in the minutes it is still plugged in:
    ``missing / (efficiency x minutes left)``, within its charge limit, its site's fuse less the
    household's load, and its grid area's import limit less what the plan already takes there.
    Returns the EVs topped up (their plan's power in that quarter is set)."""
    sessions = {s.ev_id: s for s in problem.evs}
    sites = {s.site_id: s for s in problem.sites}
    limits = {a.area_id: a.import_limit_kw for a in problem.grid_areas}
    area_of = {ev_id: sites[s.site_id].grid_area_id for ev_id, s in sessions.items() if s.site_id in sites}
    topped = []
    for p in plan.ev_plans:
        s = sessions.get(p.ev_id)
        if s is None or p.ev_id not in area_of:
            continue
        last = floor_quarter(s.departure_at)
        k = int((last - problem.start_at) / QUARTER)
        left_h = (s.departure_at - last) / HOUR
        if left_h <= 0 or k != p.end_interval or not 0 <= k < problem.n_intervals or p.p_kw[k] != 0.0:
            continue
        end_kwh = float(p.soc_kwh[k])
        missing_kwh = s.target_soc_kwh - end_kwh
        if not missing_kwh > 1e-3:  # NaN (no window) or nothing missing
            continue
        site = sites[s.site_id]
        area = area_of[p.ev_id]
        hour = k // 4
        # the site's fuse also carries the other EVs' reserve headroom (an activation may ask them for more)
        same_site = sum(
            max(float(q.p_kw[k]), 0.0) + _headroom_kw(q.reserve_kw, hour)
            for q in plan.ev_plans
            if sessions[q.ev_id].site_id == s.site_id
        )
        same_area = sum(max(float(q.p_kw[k]), 0.0) for q in plan.ev_plans if area_of.get(q.ev_id) == area)
        load = site.household_load_kw[k if len(site.household_load_kw) > 1 else 0]
        import_limit = limits[area][k if len(limits[area]) > 1 else 0]
        p_kw = min(
            s.max_charge_kw,
            missing_kwh / (s.charge_efficiency * left_h),
            site.fuse_limit_kw - load - same_site,
            import_limit - same_area,
        )
        p_kw = math.floor(p_kw * 1000.0) / 1000.0  # to the watt, never above a limit
        if p_kw > 0.0:
            p.p_kw[k] = p_kw
            topped.append(p.ev_id)
    return topped


def _headroom_kw(reserve_kw: Mapping[Any, Any], hour: int) -> float:
    """Upper bound of what an EV's reserve in ``hour`` may add to its charging (every product's capacity,
    FCR-N counted with the 1.34 power range of its energy management)."""
    total = 0.0
    for product, series in reserve_kw.items():
        if hour < len(series) and math.isfinite(float(series[hour])):
            factor = 1.34 if str(getattr(product, "value", product)) == "fcr_n" else 1.0
            total += factor * max(float(series[hour]), 0.0)
    return total


def planned_soc_at(soc_kwh: Any, start_at: datetime, at: datetime) -> float:
    """A plan's energy path (``soc_kwh`` at each quarter boundary from ``start_at``) at ``at``, linear within
    a quarter; NaN outside the plan or the EV's window."""
    k = int((at - start_at) / QUARTER)
    if not 0 <= k < len(soc_kwh) - 1:
        return float("nan")
    frac = ((at - start_at) - k * QUARTER) / QUARTER
    return float(soc_kwh[k] + frac * (soc_kwh[k + 1] - soc_kwh[k]))
