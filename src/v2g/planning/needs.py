"""What a plugged-in EV needs, assembled from everything known about it into the planner's :class:`EvSession`.

Sources, and the order in which they win (each value records where it came from, for the
operator view and the owner's "why"):

* **Overrides first.** An active *charge now* (:class:`OwnerPreferences`) makes the planner charge
  at full power until its time (or until the target), with no discharge and no reserves. An
  *opt-out for today* (the local day of the planning time) keeps the EV out of V2G for this
  session: smart charging only, no discharge, no reserves.
* **Departure**: the earlier of the car's ISO 15118 departure time and the owner's next departure
  from the weekday table (the car knows best when the driver has told it an earlier time; the
  owner's standing schedule still bounds a later one). Times not after now are ignored. With
  neither, the default: the next 07:00 Swedish local time.
* **Target SoC**: the higher of the owner's target and the car's (ISO 15118 target, or the SoC
  plus the energy request): both are "at least" requests. Without either, 80 %. Capped at the
  battery, and never below the minimum.
* **Minimum SoC**: the higher of the owner's minimum and the car's (ISO 15118 minimum, or the SoC
  plus the minimum energy request); without either, 20 %.
* **SoC now**: the most recent of the SoC telemetry and the SoC the car reported with its needs;
  when neither is known, the minimum SoC is assumed (the plan then charges for the whole target
  and never discharges below a level the car might really be at).
* **Battery capacity**: the car's ISO 15118 capacity, else the vehicle record.
* **Power**: the lowest of the vehicle record, the charger record and the car's ISO 15118 maximum
  (each for charge and discharge); no discharge if the vehicle is not V2G-capable or the charger
  not bidirectional.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum

from v2g.fleet.model import Charger, Vehicle
from v2g.fleet.preferences import OwnerPreferences, at_local, local_time
from v2g.planning.model import EvSession
from v2g.units import ensure_utc


class Source(StrEnum):
    """Where a value of an EV's needs came from."""

    ISO15118 = "iso15118"  # the car, via NotifyEVChargingNeeds
    TELEMETRY = "telemetry"  # SoC readings (meter values)
    PREFERENCES = "preferences"  # the owner's settings
    VEHICLE = "vehicle"  # the fleet's vehicle record
    CHARGER = "charger"  # the fleet's charger record
    DEFAULT = "default"  # nothing known: the platform default
    CHARGE_NOW = "charge_now"  # the owner's charge-now override
    OPT_OUT = "opt_out"  # the owner's opt-out for today


@dataclass(frozen=True, slots=True)
class Iso15118Needs:
    """What the car reported with its charging needs (ISO 15118-2/-20, via OCPP 2.x NotifyEVChargingNeeds).

    Energies ``energy_request_kwh`` and ``min_energy_request_kwh`` are to be added from the state
    at ``received_at`` (as the car's requests are); SoC values are percent of the battery.
    """

    received_at: datetime
    departure_at: datetime | None = None
    soc_percent: float | None = None
    target_soc_percent: float | None = None
    min_soc_percent: float | None = None
    energy_request_kwh: float | None = None
    min_energy_request_kwh: float | None = None
    battery_kwh: float | None = None
    max_charge_kw: float | None = None
    max_discharge_kw: float | None = None


@dataclass(frozen=True, slots=True)
class SocReading:
    """The latest state-of-charge telemetry of an EV."""

    soc_percent: float
    measured_at: datetime


@dataclass(frozen=True, slots=True)
class NeedsDefaults:
    """What the platform assumes when nothing is known."""

    departure_local: time = time(7, 0)  # Europe/Stockholm
    target_soc_percent: float = 80.0
    min_soc_percent: float = 20.0
    charge_efficiency: float = 0.92
    discharge_efficiency: float = 0.92


@dataclass(frozen=True, slots=True)
class PluggedInEv:
    """Everything known about one plugged-in EV at planning time."""

    vehicle: Vehicle
    charger: Charger
    plugged_in_at: datetime
    iso15118: Iso15118Needs | None = None
    soc: SocReading | None = None
    preferences: OwnerPreferences | None = None


@dataclass(frozen=True, slots=True)
class AssembledNeeds:
    """The planner's session for one EV, the source of each value and a readable account of why."""

    session: EvSession
    sources: dict[str, Source]
    reasons: tuple[str, ...] = field(default_factory=tuple)


def _num(value: float | None) -> float | None:
    if value is None or isinstance(value, bool) or not math.isfinite(value):
        return None
    return float(value)


def _pct(value: float | None) -> float | None:
    v = _num(value)
    return None if v is None else min(max(v, 0.0), 100.0)


def assemble_needs(ev: PluggedInEv, now: datetime, defaults: NeedsDefaults | None = None) -> AssembledNeeds:
    """Build the planner's :class:`EvSession` for ``ev`` at ``now`` (precedence in the module docstring)."""
    d = defaults or NeedsDefaults()
    now = ensure_utc(now, field="now")
    vehicle, charger, iso, prefs = ev.vehicle, ev.charger, ev.iso15118, ev.preferences
    sources: dict[str, Source] = {}
    why: list[str] = []

    # battery
    battery = _num(iso.battery_kwh) if iso is not None else None
    if battery is not None and battery > 0:
        sources["battery_kwh"] = Source.ISO15118
    else:
        battery = vehicle.battery_kwh
        sources["battery_kwh"] = Source.VEHICLE

    # power limits: the lowest of what each party allows
    charge = [(vehicle.max_charge_kw, Source.VEHICLE), (charger.max_charge_kw, Source.CHARGER)]
    discharge = [(vehicle.max_discharge_kw, Source.VEHICLE), (charger.max_discharge_kw, Source.CHARGER)]
    if iso is not None:
        if (v := _num(iso.max_charge_kw)) is not None and v >= 0:
            charge.append((v, Source.ISO15118))
        if (v := _num(iso.max_discharge_kw)) is not None and v >= 0:
            discharge.append((v, Source.ISO15118))
    max_charge, sources["max_charge_kw"] = min(charge, key=lambda item: item[0])
    if not vehicle.v2g_capable:
        max_discharge, sources["max_discharge_kw"] = 0.0, Source.VEHICLE
        why.append("the vehicle cannot discharge")
    elif not charger.bidirectional:
        max_discharge, sources["max_discharge_kw"] = 0.0, Source.CHARGER
        why.append("the charger cannot discharge")
    else:
        max_discharge, sources["max_discharge_kw"] = min(discharge, key=lambda item: item[0])

    # state of charge now: the most recent reading
    readings: list[tuple[datetime, float, Source]] = []
    if ev.soc is not None and (v := _pct(ev.soc.soc_percent)) is not None:
        readings.append((ensure_utc(ev.soc.measured_at), v, Source.TELEMETRY))
    if iso is not None and (v := _pct(iso.soc_percent)) is not None:
        readings.append((ensure_utc(iso.received_at), v, Source.ISO15118))
    soc_pct: float | None = None
    if readings:
        _, soc_pct, sources["soc_kwh"] = max(readings, key=lambda item: item[0])
    soc_at_iso: float | None = None  # kWh at the time of the car's request, for relative energies
    if iso is not None:
        at_iso = [r for r in readings if r[0] <= ensure_utc(iso.received_at)]
        if at_iso:
            soc_at_iso = max(at_iso, key=lambda item: item[0])[1] / 100.0 * battery

    # minimum SoC: the higher floor wins
    minimum: list[tuple[float, Source]] = []
    if prefs is not None:
        minimum.append((prefs.min_soc_percent / 100.0 * battery, Source.PREFERENCES))
    if iso is not None:
        if (v := _pct(iso.min_soc_percent)) is not None:
            minimum.append((v / 100.0 * battery, Source.ISO15118))
        elif (v := _num(iso.min_energy_request_kwh)) is not None and soc_at_iso is not None:
            minimum.append((soc_at_iso + v, Source.ISO15118))
    if not minimum:
        minimum.append((d.min_soc_percent / 100.0 * battery, Source.DEFAULT))
    min_kwh, sources["min_soc_kwh"] = max(minimum, key=lambda item: item[0])
    min_kwh = min(max(min_kwh, 0.0), battery)

    if soc_pct is None:
        soc_kwh = min_kwh
        sources["soc_kwh"] = Source.DEFAULT
        why.append("no state of charge known: the minimum is assumed")
    else:
        soc_kwh = soc_pct / 100.0 * battery

    # target SoC: the higher request wins
    targets: list[tuple[float, Source]] = []
    if prefs is not None:
        targets.append((prefs.target_soc_percent / 100.0 * battery, Source.PREFERENCES))
    if iso is not None:
        if (v := _pct(iso.target_soc_percent)) is not None:
            targets.append((v / 100.0 * battery, Source.ISO15118))
        elif (v := _num(iso.energy_request_kwh)) is not None and soc_at_iso is not None:
            targets.append((soc_at_iso + v, Source.ISO15118))
    if not targets:
        targets.append((d.target_soc_percent / 100.0 * battery, Source.DEFAULT))
    target_kwh, sources["target_soc_kwh"] = max(targets, key=lambda item: item[0])
    target_kwh = min(max(target_kwh, min_kwh), battery)

    # departure: the earlier of the car's and the owner's, else the default
    departures: list[tuple[datetime, Source]] = []
    if iso is not None and iso.departure_at is not None:
        at = ensure_utc(iso.departure_at, field="iso15118.departure_at")
        if at > now:
            departures.append((at, Source.ISO15118))
        else:
            why.append(f"the car's departure {at.isoformat()} has passed: ignored")
    regular = prefs.departure_after(now) if prefs is not None else None
    if regular is not None:
        departures.append((regular, Source.PREFERENCES))
    if departures:
        departure, sources["departure_at"] = min(departures, key=lambda item: item[0])
    else:
        departure, sources["departure_at"] = _default_departure(now, d.departure_local), Source.DEFAULT

    # owner overrides
    charge_now_until: datetime | None = None
    allow_discharge = allow_reserves = True
    if prefs is not None and prefs.charge_now_active(now):
        charge_now_until = ensure_utc(prefs.charge_now_until) if prefs.charge_now_until else None
        allow_discharge = allow_reserves = False
        sources["charge_now_until"] = Source.CHARGE_NOW
        sources["allow_discharge"] = sources["allow_reserves"] = Source.CHARGE_NOW
        why.append("charge now: full power, no discharge, no reserves")
    elif prefs is not None and prefs.opted_out(now):
        allow_discharge = allow_reserves = False
        sources["allow_discharge"] = sources["allow_reserves"] = Source.OPT_OUT
        why.append("opted out of V2G today: smart charging only")

    plugged = ensure_utc(ev.plugged_in_at, field="plugged_in_at")
    session = EvSession(
        ev_id=vehicle.id,
        site_id=charger.site_id,
        battery_kwh=battery,
        soc_kwh=min(max(soc_kwh, 0.0), battery),
        min_soc_kwh=min_kwh,
        target_soc_kwh=target_kwh,
        arrival_at=min(plugged, now),
        departure_at=departure,
        max_charge_kw=max_charge,
        max_discharge_kw=max_discharge,
        charge_efficiency=d.charge_efficiency,
        discharge_efficiency=d.discharge_efficiency,
        charger_id=charger.id,
        allow_discharge=allow_discharge,
        allow_reserves=allow_reserves,
        charge_now_until=charge_now_until,
    )
    why.insert(0, _explain(session, sources))
    return AssembledNeeds(session, sources, tuple(why))


def _default_departure(now: datetime, clock: time) -> datetime:
    """The next ``clock`` local time after ``now``."""
    local = local_time(now)
    for offset in (0, 1, 2):
        at = at_local(local.date() + timedelta(days=offset), clock)
        if at > now:
            return at
    msg = "no default departure found"  # unreachable: a local time recurs within two days
    raise AssertionError(msg)


def _explain(session: EvSession, sources: dict[str, Source]) -> str:
    leave = local_time(session.departure_at).strftime("%a %H:%M")
    pct = 100.0 / session.battery_kwh
    return (
        f"leaves {leave} ({sources['departure_at']}), target {session.target_soc_kwh * pct:.0f} % "
        f"({sources['target_soc_kwh']}), minimum {session.min_soc_kwh * pct:.0f} % ({sources['min_soc_kwh']}), "
        f"now {session.soc_kwh * pct:.0f} % ({sources['soc_kwh']})"
    )
