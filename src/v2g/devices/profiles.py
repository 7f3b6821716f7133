"""Protocol-neutral charging profiles: which kind a charger gets, plans from schedules, fail-safe sizing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from v2g.fleet.model import ChargerProtocol
from v2g.fleet.schedule import PowerSchedule
from v2g.units import ensure_utc

# Profile ids and stack levels the platform uses on every charger (all TxDefaultProfile, so they
# need no running transaction): the fail-safe default at the bottom, plans above it, immediate
# setpoints and frequency response on top. Expiring upper profiles fall back to the default.
DEFAULT_PROFILE_ID, DEFAULT_STACK = 1001, 0
PLAN_PROFILE_ID, PLAN_STACK = 1002, 1
SETPOINT_PROFILE_ID, SETPOINT_STACK = 1003, 2
FREQUENCY_PROFILE_ID, FREQUENCY_STACK = 1004, 3
TEST_PROFILE_ID, TEST_STACK = 1005, 4

TEST_PROFILE_P_KW = 1.4  # 6 A single phase: harmless on any charger
TEST_PROFILE_VALIDITY = timedelta(seconds=60)


class DeviceError(ValueError):
    """A device-layer request was refused; the message names the charger and the field."""


class ProfileKind(StrEnum):
    """How a plan reaches the charger."""

    V2X_SETPOINT = "v2x_setpoint"  # OCPP 2.1 operationMode CentralSetpoint with signed setpoints
    SIGNED_LIMIT = "signed_limit"  # OCPP 2.0.1 negative limit = discharge (vendor convention)
    CHARGE_ONLY = "charge_only"  # OCPP 1.6, or any charger without declared discharge support


@dataclass(frozen=True, slots=True)
class ProfilePeriod:
    """A period of a charging profile: from ``start_s`` seconds after the start, hold ``p_kw``."""

    start_s: int
    p_kw: float


@dataclass(frozen=True, slots=True)
class ProfilePlan:
    """A protocol-neutral charging profile for one charger."""

    charger_id: str
    start_at: datetime
    periods: tuple[ProfilePeriod, ...]
    valid_to: datetime
    kind: ProfileKind
    clamped_discharge: bool = False

    @property
    def min_p_kw(self) -> float:
        """The most negative power in the plan."""
        return min(p.p_kw for p in self.periods)


def profile_kind(protocol: ChargerProtocol, discharge_supported: bool) -> ProfileKind:
    """Which profile a charger gets: 2.1 setpoints, 2.0.1 signed limits if declared, else charge-only."""
    if not discharge_supported:
        return ProfileKind.CHARGE_ONLY
    if protocol is ChargerProtocol.OCPP21:
        return ProfileKind.V2X_SETPOINT
    if protocol is ChargerProtocol.OCPP201:
        return ProfileKind.SIGNED_LIMIT
    return ProfileKind.CHARGE_ONLY


def plan_from_schedule(
    schedule: PowerSchedule,
    kind: ProfileKind,
    *,
    now: datetime,
    validity: timedelta,
    max_charge_kw: float,
    max_discharge_kw: float,
) -> ProfilePlan:
    """Translate a planner schedule into a profile plan for one charger.

    The plan starts at ``max(now, schedule.start_at)``, merges equal consecutive setpoints, clips
    power to the charger's ratings, turns discharge into 0 for charge-only chargers (and says so in
    ``clamped_discharge``) and expires after ``validity`` (or the schedule's end, if earlier), so a
    charger that loses the platform falls back to its safe default profile.
    """
    charger_id = schedule.charger_id
    if not charger_id:
        msg = f"schedule[{schedule.ev_id}].charger_id: the schedule names no charger"
        raise DeviceError(msg)
    now = ensure_utc(now, field="now")
    if schedule.end_at <= now:
        msg = f"schedule[{schedule.ev_id}].start_at: the schedule ended at {schedule.end_at.isoformat()}"
        raise DeviceError(msg)
    for i, p_kw in enumerate(schedule.p_kw):
        if not math.isfinite(p_kw):
            msg = f"schedule[{schedule.ev_id}].p_kw[{i}]: {p_kw} is not a finite power"
            raise DeviceError(msg)
    start_at = max(now, schedule.start_at)
    valid_to = min(schedule.end_at, start_at + validity)
    periods: list[ProfilePeriod] = []
    clamped = False
    at = schedule.start_at
    for p_kw in schedule.p_kw:
        end = at + schedule.step
        if end > start_at and at < valid_to:
            value = min(max(p_kw, -max_discharge_kw), max_charge_kw)
            if value < 0 and kind is ProfileKind.CHARGE_ONLY:
                value, clamped = 0.0, True
            offset = max(0, int((at - start_at).total_seconds()))
            if not periods or periods[-1].p_kw != value:
                periods.append(ProfilePeriod(offset, round(value, 3)))
        at = end
    return ProfilePlan(charger_id, start_at, tuple(periods), valid_to, kind, clamped)


def fallback_p_kw(
    soc_percent: float,
    target_soc_percent: float,
    capacity_kwh: float,
    hours_left: float,
    max_charge_kw: float,
    charge_efficiency: float = 0.9,
) -> float:
    """The charge-only default power that still meets the owner's departure target without the platform.

    Returns a constant charging power (never negative) large enough to reach ``target_soc_percent``
    by departure, with a 25 % margin and at least 1.4 kW (6 A single phase) when energy is needed.
    """
    need_kwh = max(0.0, target_soc_percent - soc_percent) / 100.0 * capacity_kwh / charge_efficiency
    if need_kwh == 0:
        return 0.0
    if hours_left <= 0:
        return max_charge_kw
    return min(max_charge_kw, max(1.4, 1.25 * need_kwh / hours_left))


def failsafe_default_p_kw(
    *,
    now: datetime,
    max_charge_kw: float,
    max_discharge_kw: float,
    profile_validity: timedelta,
    departure_at: datetime | None,
    energy_request_kwh: float | None,
) -> float:
    """The charge-only fail-safe default power of a charger, sized for the worst case.

    The EV's energy request plus what a plan could discharge during one validity window, delivered
    in the time left after that window. Without a known departure and energy request the default
    is full charging power.
    """
    if departure_at is None or energy_request_kwh is None:
        return max_charge_kw
    window_h = profile_validity.total_seconds() / 3600.0
    hours = (departure_at - now).total_seconds() / 3600.0 - window_h
    worst_kwh = max(0.0, energy_request_kwh) + max_discharge_kw * window_h
    return fallback_p_kw(0.0, 100.0, worst_kwh, hours, max_charge_kw, charge_efficiency=0.9)


def test_profile_plan(charger_id: str, now: datetime) -> ProfilePlan:
    """A short, harmless charge-only profile that proves the command path (installation check)."""
    return ProfilePlan(
        charger_id,
        now,
        (ProfilePeriod(0, TEST_PROFILE_P_KW),),
        now + TEST_PROFILE_VALIDITY,
        ProfileKind.CHARGE_ONLY,
    )
