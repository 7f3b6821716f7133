"""A simulated bidirectional wallbox with an EV behind it: profile stack, obedience, metering.

Pure (no sockets, no clock): the OCPP client in :mod:`v2g.sim.ocpp_client` feeds it received
profiles and asks it, at explicit times, what power it runs and what its meters read.

Profile semantics follow OCPP smart charging: among the valid profiles the highest
``stack_level`` wins; a period's ``limit`` caps charging, a negative ``limit`` (2.0.1 vendor
convention) or a 2.1 ``setpoint`` asks for discharge; 2.1 LocalFrequency follows the frequency-watt
curve. When no profile is valid the wallbox charges at its rating until the EV's target. The EV
stops charging at its target state of charge unless a setpoint asks for more.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from v2g.sim.battery import Battery, BatterySpec

MAX_STEP_S = 1.0  # integration step; the 1 s resolution of the FCR power log


@dataclass(frozen=True, slots=True)
class SimPeriod:
    """One period of a received profile, in kW at the grid side (``p_kw`` signed)."""

    start_s: int
    limit_kw: float | None = None
    setpoint_kw: float | None = None
    discharge_limit_kw: float | None = None
    mode: str | None = None
    freq_curve: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class SimProfile:
    """A charging profile as installed on the wallbox."""

    profile_id: int
    stack_level: int
    periods: tuple[SimPeriod, ...]
    start_at: datetime
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    def valid_at(self, at: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= at) and (self.valid_to is None or at < self.valid_to)

    def period_at(self, at: datetime) -> SimPeriod | None:
        offset = (at - self.start_at).total_seconds()
        current = None
        for period in self.periods:
            if period.start_s <= offset:
                current = period
        return current


@dataclass
class Wallbox:
    """The wallbox and the EV plugged into it (if any)."""

    charger_id: str
    max_charge_kw: float
    max_discharge_kw: float
    battery: Battery | None = None
    target_soc_kwh: float = 0.0
    departure_at: datetime | None = None
    profiles: dict[int, SimProfile] = field(default_factory=dict)
    frequency_hz: float = 50.0
    available: bool = True
    energy_import_wh: float = 0.0
    energy_export_wh: float = 0.0
    p_kw: float = 0.0
    last_at: datetime | None = None

    # ------------------------------------------------------------------ plug
    def plug_in(self, battery: Battery, target_soc_kwh: float, departure_at: datetime, at: datetime) -> None:
        self.advance(at)
        self.battery = battery
        self.target_soc_kwh = min(target_soc_kwh, battery.spec.upper_kwh)
        self.departure_at = departure_at

    def unplug(self, at: datetime) -> Battery | None:
        self.advance(at)
        battery, self.battery = self.battery, None
        self.p_kw = 0.0
        return battery

    # ------------------------------------------------------------------ profiles
    def install(self, profile: SimProfile) -> None:
        self.profiles[profile.profile_id] = profile

    def clear(self, profile_id: int | None = None) -> int:
        if profile_id is None:
            count = len(self.profiles)
            self.profiles.clear()
            return count
        return 1 if self.profiles.pop(profile_id, None) is not None else 0

    def update_dynamic(self, profile_id: int, update: dict[str, float]) -> bool:
        profile = self.profiles.get(profile_id)
        if profile is None or not profile.periods:
            return False
        first = profile.periods[0]
        period = SimPeriod(
            first.start_s,
            update.get("limit_kw", first.limit_kw),
            update.get("setpoint_kw", first.setpoint_kw),
            update.get("discharge_limit_kw", first.discharge_limit_kw),
            first.mode,
            first.freq_curve,
        )
        self.profiles[profile_id] = SimProfile(
            profile.profile_id,
            profile.stack_level,
            (period, *profile.periods[1:]),
            profile.start_at,
            profile.valid_from,
            profile.valid_to,
        )
        return True

    def active_profile(self, at: datetime) -> SimProfile | None:
        valid = [p for p in self.profiles.values() if p.valid_at(at) and p.period_at(at) is not None]
        return max(valid, key=lambda p: p.stack_level) if valid else None

    def requested_p_kw(self, at: datetime) -> float:
        """What the wallbox wants to run at ``at`` before the battery's limits."""
        if self.battery is None or not self.available:
            return 0.0
        profile = self.active_profile(at)
        wants_energy = self.battery.soc_kwh < self.target_soc_kwh - 1e-6
        if profile is None:
            return self.max_charge_kw if wants_energy else 0.0
        period = profile.period_at(at)
        assert period is not None
        if period.mode == "LocalFrequency" and period.freq_curve:
            p_kw = _interpolate(period.freq_curve, self.frequency_hz)
        elif period.setpoint_kw is not None:
            p_kw = period.setpoint_kw
        elif period.limit_kw is not None and period.limit_kw < 0:
            p_kw = period.limit_kw  # 2.0.1 signed-limit convention: a negative limit asks for discharge
        else:
            limit = self.max_charge_kw if period.limit_kw is None else period.limit_kw
            return min(limit, self.max_charge_kw) if wants_energy else 0.0
        if period.limit_kw is not None and period.limit_kw >= 0:
            p_kw = min(p_kw, period.limit_kw)
        if period.discharge_limit_kw is not None:
            p_kw = max(p_kw, period.discharge_limit_kw)
        return min(max(p_kw, -self.max_discharge_kw), self.max_charge_kw)

    # ------------------------------------------------------------------ time
    def advance(self, at: datetime) -> None:
        """Integrate from the last call to ``at`` in steps of at most one second."""
        if self.last_at is None or at <= self.last_at:
            self.last_at = at if self.last_at is None else max(self.last_at, at)
            return
        t = self.last_at
        while t < at:
            step_end = min(at, t + timedelta(seconds=MAX_STEP_S))
            dt_h = (step_end - t).total_seconds() / 3600.0
            requested = self.requested_p_kw(t)
            if self.battery is not None:
                self.battery, result = self.battery.step(requested, dt_h)
                self.p_kw = result.p_kw
                self.energy_import_wh += result.import_kwh * 1000.0
                self.energy_export_wh += result.export_kwh * 1000.0
            else:
                self.p_kw = 0.0
            t = step_end
        self.last_at = at

    @property
    def soc_percent(self) -> float | None:
        return None if self.battery is None else self.battery.soc_percent


def _interpolate(curve: tuple[tuple[float, float], ...], x: float) -> float:
    points = sorted(curve)
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 != x0 else y1
    return points[-1][1]


# ---------------------------------------------------------------------------- EV behaviour data
@dataclass(frozen=True, slots=True)
class EvModel:
    """A V2G-capable EV model from the shipped specifications."""

    name: str
    battery_kwh: float
    max_ac_charge_kw: float
    max_ac_discharge_kw: float
    share: float


@dataclass(frozen=True, slots=True)
class Session:
    """One plug-in: when, for how long, how much energy the owner wants, with which EV."""

    arrival_at: datetime
    departure_at: datetime
    energy_kwh: float
    model: EvModel
    arrival_soc_kwh: float

    def with_battery(self, battery_kwh: float) -> Session:
        """The same session with an EV of ``battery_kwh`` (same state of charge and energy share)."""
        scale = battery_kwh / self.model.battery_kwh
        model = replace(self.model, battery_kwh=battery_kwh)
        return replace(
            self, model=model, energy_kwh=self.energy_kwh * scale, arrival_soc_kwh=self.arrival_soc_kwh * scale
        )

    def battery(self, *, ramp_kw_per_s: float = 5.0) -> Battery:
        spec = BatterySpec(
            capacity_kwh=self.model.battery_kwh,
            max_charge_kw=self.model.max_ac_charge_kw,
            max_discharge_kw=self.model.max_ac_discharge_kw,
            charge_efficiency=0.92,
            discharge_efficiency=0.92,
            ramp_kw_per_s=ramp_kw_per_s,
            soc_min_kwh=0.1 * self.model.battery_kwh,
            name=self.model.name,
        )
        return Battery(spec, soc_kwh=self.arrival_soc_kwh)

    @property
    def target_soc_kwh(self) -> float:
        return min(self.model.battery_kwh, self.arrival_soc_kwh + self.energy_kwh)


def _read_csv(name: str) -> list[dict[str, str]]:
    text = (resources.files("v2g.sim") / "data" / name).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(text.splitlines()))


class EvBehaviour:
    """Draws plug-in sessions from ElaadNL arrival, connection-time and energy-demand statistics."""

    def __init__(self, seed: int = 0, location: str = "private") -> None:
        self.rng = random.Random(seed)
        self.location = location
        arrival = _read_csv("distribution-of-arrival.csv")
        self._arrival_slots = [row["Arrival time"] for row in arrival]
        self._arrival_weights = [float(row[location]) for row in arrival]
        self._connection = [
            (float(r["Percentage of charging events"]), float(r[location]))
            for r in _read_csv("distribution-of-connection-time.csv")
        ]
        self._energy = [
            (float(r["Percentage of charging events"]), float(r[location]))
            for r in _read_csv("distribution-of-energy-demand.csv")
        ]
        specs: dict[str, Any] = json.loads(
            (resources.files("v2g.sim") / "data" / "ev_specs_v2g_enabled2024.json").read_text(encoding="utf-8")
        )
        total = sum(float(s["number_of_registrations"]) for s in specs.values())
        self.models = [
            EvModel(
                name,
                float(s["battery_capacity"]),
                float(s["max_ac_charge_power"]),
                float(s["max_ac_discharge_power"]),
                float(s["number_of_registrations"]) / total,
            )
            for name, s in specs.items()
        ]

    def _percentile(self, table: list[tuple[float, float]]) -> float:
        u = self.rng.uniform(0.0, 100.0)
        for (p0, v0), (p1, v1) in itertools.pairwise(table):
            if p0 <= u <= p1:
                return v0 + (v1 - v0) * (u - p0) / (p1 - p0)
        return table[-1][1]

    def session(self, day: datetime) -> Session:
        """A session arriving on ``day`` (its UTC date is used)."""
        slot = self.rng.choices(self._arrival_slots, weights=self._arrival_weights)[0]
        hh, mm = (int(x) for x in slot.split(":"))
        arrival = day.replace(hour=hh, minute=mm, second=0, microsecond=0)
        arrival += timedelta(seconds=self.rng.uniform(0, 900))
        hours = max(0.5, self._percentile(self._connection))
        model = self.rng.choices(self.models, weights=[m.share for m in self.models])[0]
        energy = min(max(1.0, self._percentile(self._energy)), 0.8 * model.battery_kwh)
        soc = self.rng.uniform(0.15, max(0.16, 0.9 - energy / model.battery_kwh)) * model.battery_kwh
        return Session(arrival, arrival + timedelta(hours=hours), energy, model, soc)


def fallback_meets_target(wallbox: Wallbox, until: datetime, step: timedelta = timedelta(minutes=1)) -> bool:
    """Run the wallbox on its own until ``until``; True if it never discharged and met the target."""
    assert wallbox.last_at is not None
    t = wallbox.last_at
    while t < until:
        t = min(until, t + step)
        wallbox.advance(t)
        if wallbox.p_kw < -1e-9:
            return False
    return wallbox.battery is not None and wallbox.battery.soc_kwh >= wallbox.target_soc_kwh - 0.05


__all__ = ["EvBehaviour", "EvModel", "Session", "SimPeriod", "SimProfile", "Wallbox", "fallback_meets_target"]
