"""OCPP 2.0.1 translator (and the base of 2.1): messages <-> platform events and profile plans.

Discharge on 2.0.1 is a vendor convention (negative ``limit``), so the platform sends negative
limits only to chargers that declare it in their device model
(``V2XChargingCtrlr.Enabled = true``); everything else gets charge-only profiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ocpp.v201 import ChargePoint as _V201ChargePoint
from ocpp.v201 import call as _call201

from v2g.adapters.ocpp.session import (
    DEFAULT_PROFILE_ID,
    DEFAULT_STACK,
    SETPOINT_PROFILE_ID,
    SETPOINT_STACK,
    CommandResult,
    CsmsSession,
    after,
    finite,
    on,
    parse_measured_at,
    status_of,
)
from v2g.adapters.ocpp.v201.notices import NoticeHandlers
from v2g.devices import (
    STATION_CERTIFICATE,
    ChargingNeeds,
    MeterSample,
    ProfileKind,
    ProfilePeriod,
    ProfilePlan,
    TransactionEventIn,
)

_MULTIPLIER_FREE_UNITS = {"Wh", "W", "kWh", "kW", "Percent", "A", "V", "varh", "var"}


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class V2xSessionBase(NoticeHandlers, CsmsSession):
    """Handlers and commands common to OCPP 2.0.1 and 2.1."""

    format_error_code = "FormatViolation"
    message_type_error_code = "MessageTypeNotSupported"
    _call: Any
    _call_result: Any
    call: Any

    # ------------------------------------------------------------------ inbound
    @on("BootNotification")
    def on_boot(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        return self._call_result.BootNotification(
            current_time=_iso(self.now()), interval=self.server.config.heartbeat_interval_s, status="Accepted"
        )

    @after("BootNotification")
    async def after_boot(self, charging_station: dict[str, Any], **_: Any) -> None:
        await self.server.booted(self, charging_station.get("firmware_version"))

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return self._call_result.Heartbeat(current_time=_iso(self.now()))

    @on("StatusNotification")
    async def on_status(self, connector_status: str, evse_id: int, **_: Any) -> Any:
        self.record_ev_connected(connector_status == "Occupied")
        return self._call_result.StatusNotification()

    @on("Authorize")
    async def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        status = await self.authorize(str(id_token.get("id_token", "")))
        return self._call_result.Authorize(id_token_info={"status": status})

    @on("MeterValues")
    async def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any) -> Any:
        await self.submit(self._samples(evse_id, meter_value, None))
        return self._call_result.MeterValues()

    @on("TransactionEvent")
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        **kwargs: Any,
    ) -> Any:
        occurred_at = parse_measured_at(timestamp, self.now())
        evse_id = int((kwargs.get("evse") or {}).get("id", 1))
        tx_id = str(transaction_info["transaction_id"])
        samples = self._samples(evse_id, kwargs.get("meter_value") or [], tx_id)
        meter_wh = next(
            (s.value for s in samples if s.measurand == "Energy.Active.Import.Register"),
            None,
        )
        token = (kwargs.get("id_token") or {}).get("id_token")
        event = TransactionEventIn(
            charger_id=self.id,
            transaction_id=tx_id,
            seq_no=seq_no,
            event_type=event_type,
            occurred_at=occurred_at,
            evse_id=evse_id,
            trigger_reason=trigger_reason,
            offline=bool(kwargs.get("offline", False)),
            id_token=token,
            meter_wh=meter_wh,
            stop_reason=transaction_info.get("stopped_reason"),
        )
        await self.submit(samples, [event])  # stored whatever the token's status: the energy flowed
        if token is not None:
            status = await self.authorize(str(token))
            return self._call_result.TransactionEvent(id_token_info={"status": status})
        return self._call_result.TransactionEvent()

    @on("NotifyEVChargingNeeds")
    async def on_needs(self, charging_needs: dict[str, Any], evse_id: int, **_: Any) -> Any:
        await self.needs_received(self.translate_needs(charging_needs, evse_id))
        return self._call_result.NotifyEVChargingNeeds(status="Accepted")

    def translate_needs(self, needs: dict[str, Any], evse_id: int) -> ChargingNeeds:
        now = self.now()
        departure = needs.get("departure_time")
        ac = needs.get("ac_charging_parameters") or {}
        dc = needs.get("dc_charging_parameters") or {}
        energy_wh = ac.get("energy_amount", dc.get("energy_amount"))
        max_charge_w = dc.get("ev_max_power")
        return ChargingNeeds(
            charger_id=self.id,
            evse_id=evse_id,
            received_at=now,
            departure_at=parse_measured_at(departure, now) if departure else None,
            energy_request_kwh=None if energy_wh is None else float(energy_wh) / 1000.0,
            target_soc_percent=None if dc.get("full_soc") is None else float(dc["full_soc"]),
            max_charge_kw=None if max_charge_w is None else float(max_charge_w) / 1000.0,
            transfer_mode=needs.get("requested_energy_transfer"),
        )

    def _samples(self, evse_id: int, meter_values: list[dict[str, Any]], tx_id: str | None) -> list[MeterSample]:
        out: list[MeterSample] = []
        now = self.now()
        for mv in meter_values:
            at = parse_measured_at(mv.get("timestamp"), now)
            for sv in mv.get("sampled_value", []):
                unit_info = sv.get("unit_of_measure") or {}
                measurand = sv.get("measurand", "Energy.Active.Import.Register")
                default_unit = "Percent" if measurand == "SoC" else ("W" if measurand.startswith("Power") else "Wh")
                unit = unit_info.get("unit", default_unit)
                value = finite(float(sv["value"]) * 10.0 ** int(unit_info.get("multiplier", 0)), "sampledValue.value")
                if sv.get("phase"):
                    measurand = f"{measurand}.{sv['phase']}"
                out.append(
                    self.sample(
                        evse_id=evse_id,
                        measurand=measurand,
                        measured_at=at,
                        value=value,
                        unit=unit,
                        transaction_id=tx_id,
                        context=sv.get("context"),
                    )
                )
        return out

    # ------------------------------------------------------------------ outbound
    async def _command(self, request: Any) -> CommandResult:
        try:
            response = await self.call(request, suppress=False)
        except TimeoutError:
            return CommandResult("timeout", f"no answer within {self._response_timeout}s")
        except Exception as exc:  # an OCPP CALLERROR from the charger, or a closed socket
            return CommandResult("error", f"{type(exc).__name__}: {exc}")
        return status_of(response)

    def period(self, p: ProfilePeriod, kind: ProfileKind, max_charge_kw: float) -> dict[str, Any]:
        value = p.p_kw if kind is not ProfileKind.CHARGE_ONLY else max(0.0, p.p_kw)
        return {"start_period": p.start_s, "limit": round(value * 1000.0, 1)}

    def profile(self, plan: ProfilePlan, profile_id: int, stack_level: int, max_charge_kw: float) -> dict[str, Any]:
        return {
            "id": profile_id,
            "stack_level": stack_level,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Absolute",
            "valid_from": _iso(plan.start_at),
            "valid_to": _iso(plan.valid_to),
            "charging_schedule": [
                {
                    "id": profile_id,
                    "start_schedule": _iso(plan.start_at),
                    "charging_rate_unit": "W",
                    "charging_schedule_period": [self.period(p, plan.kind, max_charge_kw) for p in plan.periods],
                }
            ],
        }

    async def install_plan(self, plan: ProfilePlan, *, profile_id: int, stack_level: int) -> CommandResult:
        profile = self.profile(plan, profile_id, stack_level, 0.0)
        return await self._command(self._call.SetChargingProfile(evse_id=0, charging_profile=profile))

    async def install_default(self, p_kw: float) -> CommandResult:
        profile = {
            "id": DEFAULT_PROFILE_ID,
            "stack_level": DEFAULT_STACK,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Relative",
            "charging_schedule": [
                {
                    "id": DEFAULT_PROFILE_ID,
                    "charging_rate_unit": "W",
                    "charging_schedule_period": [self.default_period(max(0.0, p_kw))],
                }
            ],
        }
        return await self._command(self._call.SetChargingProfile(evse_id=0, charging_profile=profile))

    def default_period(self, p_kw: float) -> dict[str, Any]:
        return {"start_period": 0, "limit": round(p_kw * 1000.0, 1)}

    async def apply_setpoint(self, p_kw: float, valid_to: datetime, max_charge_kw: float) -> CommandResult:
        now = self.now()
        kind = self.plan_kind()
        plan = ProfilePlan(self.id, now, (ProfilePeriod(0, p_kw),), valid_to, kind, kind is ProfileKind.CHARGE_ONLY)
        return await self.install_plan(plan, profile_id=SETPOINT_PROFILE_ID, stack_level=SETPOINT_STACK)

    async def clear_profiles(self, profile_id: int | None = None) -> CommandResult:
        return await self._command(self._call.ClearChargingProfile(charging_profile_id=profile_id))

    async def set_available(self, available: bool) -> CommandResult:
        status = "Operative" if available else "Inoperative"
        return await self._command(self._call.ChangeAvailability(operational_status=status))

    async def reset(self, hard: bool = False) -> CommandResult:
        return await self._command(self._call.Reset(type="Immediate" if hard else "OnIdle"))

    async def trigger(self, message: str) -> CommandResult:
        return await self._command(self._call.TriggerMessage(requested_message=message))

    async def composite_schedule(self, duration_s: int) -> dict[str, Any] | None:
        try:
            response = await self.call(
                self._call.GetCompositeSchedule(duration=duration_s, evse_id=1, charging_rate_unit="W"),
                suppress=False,
            )
        except Exception:
            return None
        return {"status": response.status, "schedule": response.schedule}

    async def get_variable(self, component: str, variable: str) -> str | None:
        try:
            response = await self.call(
                self._call.GetVariables(
                    get_variable_data=[{"component": {"name": component}, "variable": {"name": variable}}]
                ),
                suppress=False,
            )
        except Exception:
            return None
        result = response.get_variable_result[0]
        return result.get("attribute_value") if result.get("attribute_status") == "Accepted" else None

    async def set_variable(self, component: str, variable: str, value: str) -> CommandResult:
        try:
            response = await self.call(
                self._call.SetVariables(
                    set_variable_data=[
                        {"component": {"name": component}, "variable": {"name": variable}, "attribute_value": value}
                    ]
                ),
                suppress=False,
            )
        except Exception as exc:
            return CommandResult("error", str(exc))
        result = response.set_variable_result[0]
        return CommandResult(str(result.get("attribute_status", "unknown")).lower())

    async def read_discharge_support(self) -> bool:
        value = await self.get_variable("V2XChargingCtrlr", "Enabled")
        return (value or "").lower() == "true"

    async def install_certificate(self, chain_pem: str) -> CommandResult:
        request = self._call.CertificateSigned(certificate_chain=chain_pem, certificate_type=STATION_CERTIFICATE)
        return await self._command(request)

    async def request_certificate(self) -> CommandResult:
        return await self.trigger("SignChargingStationCertificate")


class V201Session(V2xSessionBase, _V201ChargePoint):  # type: ignore[misc]
    """A CSMS-side OCPP 2.0.1 connection."""

    protocol = "ocpp2.0.1"


def sampled(value: float, measurand: str, unit: str, context: str = "Sample.Periodic") -> dict[str, Any]:
    """One sampledValue in snake_case (simulator and tests)."""
    return {"value": value, "measurand": measurand, "context": context, "unit_of_measure": {"unit": unit}}


def meter_value(at: datetime, values: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One meterValue entry in snake_case."""
    return {"timestamp": _iso(at), "sampled_value": list(values)}


__all__ = ["V2xSessionBase", "V201Session", "_call201", "meter_value", "sampled"]
