"""Selection-stage checks: vehicle x wallbox compatibility, main-fuse headroom, DSO feasibility."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

from v2g.fleet.model import GridArea, Site
from v2g.journey.rules import JourneyRules, load_json


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


@dataclass(frozen=True, slots=True)
class EvModel:
    """A pre-qualified V2G-capable EV model."""

    make: str
    model: str
    battery_kwh: float
    max_ac_charge_kw: float
    max_ac_discharge_kw: float
    max_dc_discharge_kw: float

    def discharge_kw(self, coupling: str) -> float:
        return self.max_ac_discharge_kw if coupling == "ac" else self.max_dc_discharge_kw


@dataclass(frozen=True, slots=True)
class Wallbox:
    """A certified bidirectional wallbox."""

    vendor: str
    model: str
    coupling: str
    connector: str
    max_charge_kw: float
    max_discharge_kw: float
    rated_current_a: float
    phases: int
    demo: bool = False


@dataclass(frozen=True, slots=True)
class Compatibility:
    """Whether a vehicle may do V2G on a wallbox, and at what discharge power."""

    compatible: bool
    reason: str
    ev_model: EvModel | None = None
    wallbox: Wallbox | None = None
    max_discharge_kw: float = 0.0


@cache
def ev_models() -> tuple[EvModel, ...]:
    """The pre-qualified EV models shipped with the platform."""
    return tuple(EvModel(**m) for m in load_json("ev_models_v2g.json")["models"])


@cache
def wallboxes() -> tuple[Wallbox, ...]:
    """The certified bidirectional wallboxes shipped with the platform."""
    return tuple(Wallbox(**w) for w in load_json("wallboxes.json")["wallboxes"])


def find_ev_model(make: str, model: str) -> EvModel | None:
    """The pre-qualified model matching make and model (the model name may carry a trim, e.g. 'ID.4 Pro')."""
    for ev in ev_models():
        if _norm(ev.make) == _norm(make) and _norm(model).startswith(_norm(ev.model)):
            return ev
    return None


def find_wallbox(vendor: str, model: str) -> Wallbox | None:
    for box in wallboxes():
        if _norm(box.vendor) == _norm(vendor) and _norm(box.model) == _norm(model):
            return box
    return None


def check_compatibility(make: str, model: str, wallbox_vendor: str | None, wallbox_model: str | None) -> Compatibility:
    """Look the pair up in the matrix; without a wallbox, any certified wallbox that fits is enough."""
    ev = find_ev_model(make, model)
    if ev is None:
        return Compatibility(False, f"vehicle {make} {model} is not a pre-qualified V2G model")
    if wallbox_vendor is None or wallbox_model is None:
        fitting = [b for b in wallboxes() if ev.discharge_kw(b.coupling) > 0 and not b.demo]
        if not fitting:
            return Compatibility(False, f"no certified wallbox supports {make} {model}", ev)
        best = max(fitting, key=lambda b: min(b.max_discharge_kw, ev.discharge_kw(b.coupling)))
        kw = min(best.max_discharge_kw, ev.discharge_kw(best.coupling))
        return Compatibility(True, f"{make} {model} works with {best.vendor} {best.model}", ev, best, kw)
    box = find_wallbox(wallbox_vendor, wallbox_model)
    if box is None:
        return Compatibility(False, f"wallbox {wallbox_vendor} {wallbox_model} is not certified for V2G", ev)
    kw = min(box.max_discharge_kw, ev.discharge_kw(box.coupling))
    if kw <= 0:
        return Compatibility(False, f"{make} {model} cannot discharge over {box.coupling.upper()}", ev, box)
    return Compatibility(True, f"{make} {model} discharges up to {kw} kW on {box.vendor} {box.model}", ev, box, kw)


def compatibility_matrix() -> list[Compatibility]:
    """Every pre-qualified model x certified wallbox pair."""
    return [check_compatibility(ev.make, ev.model, b.vendor, b.model) for ev in ev_models() for b in wallboxes()]


# ---------------------------------------------------------------------------------------------- fuse
@dataclass(frozen=True, slots=True)
class FuseCheck:
    """Safe per-phase currents at a site's main fuse."""

    usable_current_a: float
    household_current_a: float
    pv_current_a: float
    safe_charge_current_a: float
    safe_discharge_current_a: float
    safe_charge_kw: float
    safe_discharge_kw: float
    phases: int
    warnings: tuple[str, ...] = ()


def fuse_check(
    *,
    main_fuse_a: float,
    phases: int,
    voltage_v: float,
    household_peak_kw: float,
    charger_current_a: float,
    charger_phases: int,
    pv_kw: float = 0.0,
    rules: JourneyRules,
) -> FuseCheck:
    """Safe charge and discharge current per phase at the main fuse.

    Per phase, with ``m`` the safety margin:

    * usable current ``I_u = I_fuse x (1 - m)``;
    * household peak current ``I_h = P_household / (U x n_phases)`` (load spread evenly; a single-phase
      charger sees the same per-phase share);
    * **charge** adds to the household load, so ``I_charge = min(I_charger, I_u - I_h)``, and is
      0 when below the minimum signalable current (6 A, IEC 61851-1);
    * **discharge** flows against the load. The worst case is no household load while PV exports too,
      so ``I_discharge = min(I_charger, I_u - I_pv)`` with ``I_pv = P_pv / (U x n_phases)``;
    * power ``P = I x U x charger phases``.
    """
    if main_fuse_a <= 0:
        msg = f"main_fuse_a: must be > 0, got {main_fuse_a}"
        raise ValueError(msg)
    if phases not in (1, 3) or charger_phases not in (1, 3):
        msg = f"phases: must be 1 or 3, got site {phases} / charger {charger_phases}"
        raise ValueError(msg)
    usable = main_fuse_a * (1 - rules.fuse_safety_margin)
    household = household_peak_kw * 1000 / (voltage_v * phases)
    pv = pv_kw * 1000 / (voltage_v * phases)
    charge = max(0.0, min(charger_current_a, usable - household))
    warnings: list[str] = []
    if charge < rules.min_charge_current_a:
        warnings.append(
            f"household peak {household:.1f} A per phase leaves {max(0.0, usable - household):.1f} A under the "
            f"{main_fuse_a:g} A fuse: below the {rules.min_charge_current_a:g} A minimum, load balancing must "
            "pause charging at peak; consider a larger fuse"
        )
        charge = 0.0
    elif charge < charger_current_a:
        warnings.append(f"charging limited to {charge:.1f} A per phase by the main fuse (dynamic load balancing)")
    discharge = max(0.0, min(charger_current_a, usable - pv))
    if discharge < charger_current_a:
        warnings.append(f"discharging limited to {discharge:.1f} A per phase by the main fuse with PV export")
    eff_phases = min(charger_phases, phases)
    return FuseCheck(
        usable_current_a=round(usable, 3),
        household_current_a=round(household, 3),
        pv_current_a=round(pv, 3),
        safe_charge_current_a=_floor3(charge),
        safe_discharge_current_a=_floor3(discharge),
        safe_charge_kw=_floor3(charge * voltage_v * eff_phases / 1000),
        safe_discharge_kw=_floor3(discharge * voltage_v * eff_phases / 1000),
        phases=eff_phases,
        warnings=tuple(warnings),
    )


def _floor3(value: float) -> float:
    """Rounded down to 0.001: a safe limit is never rounded up."""
    return math.floor(value * 1000 + 1e-9) / 1000


def site_fuse_check(site: Site, wallbox: Wallbox, rules: JourneyRules) -> FuseCheck:
    """:func:`fuse_check` for a site and a wallbox."""
    return fuse_check(
        main_fuse_a=site.main_fuse_a,
        phases=site.phases,
        voltage_v=site.voltage_v,
        household_peak_kw=site.household_peak_kw,
        pv_kw=site.pv_kw,
        charger_current_a=wallbox.rated_current_a,
        charger_phases=wallbox.phases,
        rules=rules,
    )


# ---------------------------------------------------------------------------------------------- DSO
class Feasibility(StrEnum):
    """The DSO's indicative answer."""

    FEASIBLE = "feasible"
    CONDITIONAL = "conditional"
    NOT_FEASIBLE = "not_feasible"


@dataclass(frozen=True, slots=True)
class FeasibilityIndication:
    """An indicative (not binding) DSO answer with queue position and connection date window."""

    result: Feasibility
    reason: str
    queue_position: int
    committed_export_kw: float
    requested_export_kw: float
    hosting_capacity_kw: float
    preliminary_connection_at: datetime
    latest_connection_at: datetime


def feasibility_indication(
    area: GridArea,
    *,
    requested_export_kw: float,
    committed_export_kw: float,
    queued_before: int,
    now: datetime,
    rules: JourneyRules,
) -> FeasibilityIndication:
    """Hosting capacity against export already committed in the area plus this request; queue -> dates.

    Queue position = the area's external queue (``connection_queue_length``) + platform requests
    queued before this one + 1. Preliminary date = now + max(min lead time, position x days per
    position); latest = that + (max - min lead time).
    """
    if requested_export_kw < 0:
        msg = f"requested_export_kw: must be >= 0, got {requested_export_kw}"
        raise ValueError(msg)
    total = committed_export_kw + requested_export_kw
    if total > area.hosting_capacity_kw:
        result, reason = (
            Feasibility.NOT_FEASIBLE,
            f"{total:.1f} kW export would exceed the hosting capacity {area.hosting_capacity_kw:.1f} kW of {area.id}",
        )
    elif total > area.hosting_capacity_kw * rules.dso_conditional_ratio:
        result, reason = (
            Feasibility.CONDITIONAL,
            f"{total:.1f} kW export uses over {rules.dso_conditional_ratio:.0%} of the hosting capacity of {area.id}; "
            "export may be limited at peak",
        )
    else:
        result, reason = Feasibility.FEASIBLE, f"{total:.1f} kW of {area.hosting_capacity_kw:.1f} kW in {area.id}"
    position = area.connection_queue_length + queued_before + 1
    days = max(rules.dso_min_lead_days, math.ceil(position * rules.dso_days_per_queue_position))
    prelim = now + timedelta(days=days)
    latest = prelim + timedelta(days=rules.dso_max_lead_days - rules.dso_min_lead_days)
    return FeasibilityIndication(
        result, reason, position, committed_export_kw, requested_export_kw, area.hosting_capacity_kw, prelim, latest
    )
