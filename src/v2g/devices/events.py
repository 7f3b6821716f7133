"""The platform's own charger events, independent of OCPP versions (the translators produce them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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


@dataclass(frozen=True, slots=True)
class ChargerNotice:
    """Something a charger reported for people to see: a security event, a firmware or log upload
    status, a device-model report or event, an EV's own schedule, a certificate request.

    ``kind`` is the message name; ``summary`` a short line for the operator; ``payload`` the
    message as received (stored, never logged above DEBUG).
    """

    charger_id: str
    kind: str
    occurred_at: datetime
    summary: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LimitPeriod:
    """From ``start_s`` seconds after the limit's start, the charger holds charging at most ``limit_kw``."""

    start_s: int
    limit_kw: float


@dataclass(frozen=True, slots=True)
class ChargingLimit:
    """A limit the charger applies on its own (OCPP NotifyChargingLimit / ClearedChargingLimit).

    Set by a local energy manager, the system operator or the charging station operator; the
    planner must not plan above it. ``cleared`` means the source lifted its limit. Without periods
    the charger named the source but not the value.
    """

    charger_id: str
    source: str
    received_at: datetime
    evse_id: int | None = None
    start_at: datetime | None = None
    periods: tuple[LimitPeriod, ...] = ()
    grid_critical: bool = False
    cleared: bool = False

    def limit_kw_at(self, at: datetime) -> float | None:
        """The limit in force at ``at`` (None: cleared, no value given, or not started yet)."""
        if self.cleared or not self.periods:
            return None
        elapsed_s = (at - (self.start_at or self.received_at)).total_seconds()
        active = [p for p in sorted(self.periods, key=lambda p: p.start_s) if p.start_s <= elapsed_s]
        return max(0.0, active[-1].limit_kw) if active else None
