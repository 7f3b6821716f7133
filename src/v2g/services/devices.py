"""Device-layer use cases and the platform's own charger events, independent of OCPP versions.

The OCPP translators (``v2g.adapters.ocpp.v16|v201|v21``) turn protocol messages into the events
below and turn :class:`ProfilePlan` values into protocol profiles. Everything here is pure: it
knows neither sockets nor the database; it talks to them through the ports at the end.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from v2g.fleet.model import Charger, ChargerProtocol
from v2g.fleet.schedule import PowerSchedule
from v2g.services.ports import Ack, AckStatus
from v2g.units import ensure_utc


class DeviceError(ValueError):
    """A device-layer request was refused; the message names the charger and the field."""


# ---------------------------------------------------------------------------- events (inbound)
@dataclass(frozen=True, slots=True)
class MeterSample:
    """One sampled value from a charger (OCPP MeterValues / TransactionEvent meterValue)."""

    charger_id: str
    evse_id: int
    measurand: str
    measured_at: datetime
    value: float
    unit: str
    transaction_id: str | None = None
    context: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionEventIn:
    """A transaction event in the 2.0.1 shape (1.6 Start/Stop are mapped onto it)."""

    charger_id: str
    transaction_id: str
    seq_no: int
    event_type: str  # Started | Updated | Ended
    occurred_at: datetime
    evse_id: int = 1
    trigger_reason: str | None = None
    offline: bool = False
    id_token: str | None = None
    meter_wh: float | None = None
    stop_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ChargingNeeds:
    """What the EV asks for via ISO 15118 (carried by NotifyEVChargingNeeds)."""

    charger_id: str
    evse_id: int
    received_at: datetime
    departure_at: datetime | None = None
    energy_request_kwh: float | None = None
    target_soc_percent: float | None = None
    max_charge_kw: float | None = None
    max_discharge_kw: float | None = None
    min_energy_kwh: float | None = None
    max_energy_kwh: float | None = None
    control_mode: str | None = None
    transfer_mode: str | None = None


# ---------------------------------------------------------------------------- profiles (outbound)
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


# ---------------------------------------------------------------------------- installation hooks
@dataclass(frozen=True, slots=True)
class ChargerRegistration:
    """What registering a charger produced; the password is shown once and stored only as a hash."""

    charger: Charger
    password: str
    v2g_site_id: str
    security_profile: int


@dataclass(frozen=True, slots=True)
class ConnectivityStatus:
    """How far a charger got in the connectivity check of the installation stage."""

    charger_id: str
    booted_at: datetime | None
    test_profile_accepted_at: datetime | None
    online: bool
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def verified(self) -> bool:
        """First boot seen and a test profile accepted."""
        return self.booted_at is not None and self.test_profile_accepted_at is not None


class CredentialHasher(Protocol):
    """Hashes charger passwords (argon2 in production)."""

    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...


class DeviceRegistry(Protocol):
    """Persistence the installation hooks need."""

    def add_charger_with_credentials(self, charger: Charger, password_hash: str, security_profile: int) -> None: ...

    def connectivity(self, charger_id: str) -> ConnectivityStatus: ...

    def set_active(self, charger_id: str, active: bool) -> None: ...


class RemoteDeactivation(Protocol):
    """The part of the charger gateway that termination uses."""

    async def deactivate(self, charger_id: str) -> Ack: ...


def new_v2g_site_id(site_id: str) -> str:
    """A V2G site id: the platform's unique, non-guessable id of a V2G connection point."""
    stem = "".join(ch for ch in site_id.upper() if ch.isalnum())[:12] or "SITE"
    return f"SE-V2G-{stem}-{secrets.token_hex(4).upper()}"


def register_charger(
    registry: DeviceRegistry,
    hasher: CredentialHasher,
    *,
    site_id: str,
    vendor: str,
    model: str,
    protocol: ChargerProtocol,
    max_charge_kw: float,
    max_discharge_kw: float,
    charger_id: str | None = None,
    security_profile: int = 2,
) -> ChargerRegistration:
    """Installation stage, "Generate Box Site ID": create the charger's id, credentials and V2G site id."""
    if security_profile not in (1, 2):
        msg = f"charger.security_profile: {security_profile} is not supported (1 basic auth, 2 TLS + basic auth)"
        raise DeviceError(msg)
    cid = charger_id or f"CP-{secrets.token_hex(5).upper()}"
    if not cid.isascii() or not all(ch.isalnum() or ch in "-_." for ch in cid) or len(cid) > 48:
        msg = f"charger.id: {cid!r} must be at most 48 ASCII letters, digits, '-', '_' or '.'"
        raise DeviceError(msg)
    v2g_site_id = new_v2g_site_id(site_id)
    charger = Charger(
        cid, site_id, vendor, model, protocol, max_charge_kw, max_discharge_kw, v2g_site_id=v2g_site_id, active=True
    )
    password = secrets.token_urlsafe(24)
    registry.add_charger_with_credentials(charger, hasher.hash(password), security_profile)
    return ChargerRegistration(charger, password, v2g_site_id, security_profile)


def verify_connectivity(registry: DeviceRegistry, charger_id: str) -> ConnectivityStatus:
    """Installation stage, "Verify connectivity": first boot seen and a test profile accepted."""
    status = registry.connectivity(charger_id)
    problems = list(status.problems)
    if status.booted_at is None:
        problems.append(f"charger[{charger_id}]: no successful BootNotification yet")
    if status.test_profile_accepted_at is None:
        problems.append(f"charger[{charger_id}]: no test charging profile accepted yet")
    return ConnectivityStatus(
        charger_id, status.booted_at, status.test_profile_accepted_at, status.online, tuple(problems)
    )


async def deactivate_charger(registry: DeviceRegistry, gateway: RemoteDeactivation, charger_id: str) -> Ack:
    """Termination: clear profiles and make the charger unavailable remotely, then refuse it at the handshake.

    The charger is marked inactive even when it is offline (it will be refused when it comes
    back); the returned ack says whether the remote part reached it.
    """
    registry.connectivity(charger_id)  # raises for an unknown charger
    ack = await gateway.deactivate(charger_id)
    registry.set_active(charger_id, False)
    return ack


def summarise_acks(acks: Sequence[Ack]) -> dict[AckStatus, int]:
    """Count acknowledgements by status (for logs and the plan's feedback)."""
    counts: dict[AckStatus, int] = {}
    for ack in acks:
        counts[ack.status] = counts.get(ack.status, 0) + 1
    return counts
