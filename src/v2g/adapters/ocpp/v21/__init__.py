"""OCPP 2.1 translator: V2X operation modes (CentralSetpoint, LocalFrequency), UpdateDynamicSchedule.

Plans reach a 2.1 charger as signed ``setpoint`` values in CentralSetpoint mode, bounded by
``limit`` (charging) and ``dischargeLimit`` (<= 0); immediate setpoints use a Dynamic profile that is
then moved with UpdateDynamicSchedule. The fail-safe default runs in ChargingOnly mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ocpp.v21 import ChargePoint as _V21ChargePoint

from v2g.adapters.ocpp.session import (
    FREQUENCY_PROFILE_ID,
    FREQUENCY_STACK,
    SETPOINT_PROFILE_ID,
    SETPOINT_STACK,
    CommandResult,
)
from v2g.adapters.ocpp.v201 import V2xSessionBase, _iso
from v2g.devices import ChargingNeeds, FrequencyCurvePoint, ProfileKind, ProfilePeriod


class V21Session(V2xSessionBase, _V21ChargePoint):  # type: ignore[misc]
    """A CSMS-side OCPP 2.1 connection."""

    protocol = "ocpp2.1"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_charge_w = 0.0
        self.max_discharge_w = 0.0
        self.dynamic_valid_to: datetime | None = None

    async def read_discharge_support(self) -> bool:
        charger = await asyncio.to_thread(self.server.store.charger, self.id)
        self.max_charge_w = charger.max_charge_kw * 1000.0
        self.max_discharge_w = charger.max_discharge_kw * 1000.0
        self.dynamic_valid_to = None
        return await super().read_discharge_support()

    def period(self, p: ProfilePeriod, kind: ProfileKind, max_charge_kw: float) -> dict[str, Any]:
        if kind is not ProfileKind.V2X_SETPOINT:
            return {
                "start_period": p.start_s,
                "limit": round(max(0.0, p.p_kw) * 1000.0, 1),
                "operation_mode": "ChargingOnly",
            }
        return {
            "start_period": p.start_s,
            "operation_mode": "CentralSetpoint",
            "setpoint": round(p.p_kw * 1000.0, 1),
            "limit": round(max(self.max_charge_w, p.p_kw * 1000.0, 0.0), 1),
            "discharge_limit": round(-max(self.max_discharge_w, -p.p_kw * 1000.0, 0.0), 1),
        }

    def default_period(self, p_kw: float) -> dict[str, Any]:
        return {"start_period": 0, "limit": round(p_kw * 1000.0, 1), "operation_mode": "ChargingOnly"}

    async def apply_setpoint(self, p_kw: float, valid_to: datetime, max_charge_kw: float) -> CommandResult:
        kind = self.plan_kind()
        period = self.period(ProfilePeriod(0, p_kw), kind, max_charge_kw)
        if self.dynamic_valid_to is not None and self.dynamic_valid_to >= valid_to > self.now():
            update = {k: v for k, v in period.items() if k in ("setpoint", "limit", "discharge_limit")}
            return await self._command(
                self._call.UpdateDynamicSchedule(charging_profile_id=SETPOINT_PROFILE_ID, schedule_update=update)
            )
        now = self.now()
        profile = {
            "id": SETPOINT_PROFILE_ID,
            "stack_level": SETPOINT_STACK,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Dynamic",
            "valid_from": _iso(now),
            "valid_to": _iso(valid_to),
            "charging_schedule": [
                {"id": SETPOINT_PROFILE_ID, "charging_rate_unit": "W", "charging_schedule_period": [period]}
            ],
        }
        result = await self._command(self._call.SetChargingProfile(evse_id=0, charging_profile=profile))
        self.dynamic_valid_to = valid_to if result.status == "accepted" else None
        return result

    async def frequency_curve(self, curve: Sequence[FrequencyCurvePoint], valid_to: datetime | None) -> CommandResult:
        if not self.discharge_supported:
            return CommandResult("unsupported", "the charger declared no V2X support")
        now = self.now()
        profile: dict[str, Any] = {
            "id": FREQUENCY_PROFILE_ID,
            "stack_level": FREQUENCY_STACK,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Relative",
            "valid_from": _iso(now),
            "charging_schedule": [
                {
                    "id": FREQUENCY_PROFILE_ID,
                    "charging_rate_unit": "W",
                    "charging_schedule_period": [
                        {
                            "start_period": 0,
                            "operation_mode": "LocalFrequency",
                            "limit": round(self.max_charge_w, 1),
                            "discharge_limit": round(-self.max_discharge_w, 1),
                            "v2x_freq_watt_curve": [
                                {"frequency": pt.frequency_hz, "power": round(pt.p_kw * 1000.0, 1)} for pt in curve
                            ],
                        }
                    ],
                }
            ],
        }
        if valid_to is not None:
            profile["valid_to"] = _iso(valid_to)
        return await self._command(self._call.SetChargingProfile(evse_id=0, charging_profile=profile))

    def translate_needs(self, needs: dict[str, Any], evse_id: int) -> ChargingNeeds:
        base = super().translate_needs(needs, evse_id)
        v2x = needs.get("v2x_charging_parameters") or {}

        def kw(key: str) -> float | None:
            value = v2x.get(key)
            return None if value is None else float(value) / 1000.0

        target_wh = v2x.get("ev_target_energy_request")
        return ChargingNeeds(
            charger_id=base.charger_id,
            evse_id=evse_id,
            received_at=base.received_at,
            departure_at=base.departure_at,
            energy_request_kwh=base.energy_request_kwh if target_wh is None else float(target_wh) / 1000.0,
            target_soc_percent=float(v2x["target_soc"])
            if v2x.get("target_soc") is not None
            else base.target_soc_percent,
            max_charge_kw=kw("max_charge_power") or base.max_charge_kw,
            max_discharge_kw=kw("max_discharge_power"),
            min_energy_kwh=kw("ev_min_energy_request"),
            max_energy_kwh=kw("ev_max_energy_request"),
            control_mode=needs.get("control_mode"),
            transfer_mode=needs.get("requested_energy_transfer"),
        )

    async def handle_other_message_type(self, msg: list[Any]) -> bool:
        """OCPP 2.1 SEND (type 6, e.g. NotifyPeriodicEventStream): no reply is due; count it.

        The ``ocpp`` 2.1.0 library does not know message types 5 and 6 and would drop them with an
        error; this session accepts SEND frames instead.
        """
        if msg[0] == 6 and len(msg) == 4 and isinstance(msg[2], str) and isinstance(msg[3], dict):
            self.server.stats[f"send_{msg[2]}"] += 1
            return True
        return False
