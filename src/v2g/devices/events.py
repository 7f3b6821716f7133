"""The platform's own charger events, independent of OCPP versions (the translators produce them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
