"""OCPP 1.6J translator: messages <-> platform events; profiles are charge-only.

1.6 has no discharge semantics, so every plan is sent with negative setpoints clamped to 0 (the
acknowledgement says so). Start/StopTransaction are mapped onto the 2.0.1 event shape with
``seq_no`` 0 (Started) and 1 (Ended); transaction ids are assigned by the CSMS.

Security profile 3 uses the messages of the OCPP 1.6 Security Whitepaper (edition 3), which the
``ocpp`` library ships as 1.6 actions: SignCertificate (a CSR; the 1.6 answer carries no reason, so
a refusal is only logged and stored as a notice), CertificateSigned and ExtendedTriggerMessage
``SignChargePointCertificate``.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from typing import Any

from ocpp.v16 import ChargePoint as _V16ChargePoint

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
from v2g.devices import (
    STATION_CERTIFICATE,
    MeterSample,
    ProfileKind,
    ProfilePeriod,
    ProfilePlan,
    TransactionEventIn,
)

V16_STATUSES = frozenset({"Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"})
_tx_ids = itertools.count(int(time.time()) % 1_000_000_000)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class V16Session(CsmsSession, _V16ChargePoint):  # type: ignore[misc]
    """A CSMS-side OCPP 1.6J connection."""

    protocol = "ocpp1.6"
    format_error_code = "FormationViolation"
    message_type_error_code = "ProtocolError"
    # OCPP 1.6J spells these two codes differently from 2.x (and from the library's errors)
    error_code_aliases = {  # noqa: RUF012
        "FormatViolation": "FormationViolation",
        "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
    }
    call: Any

    @on("BootNotification")
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_: Any) -> Any:
        return self._call_result.BootNotification(
            current_time=_iso(self.now()), interval=self.server.config.heartbeat_interval_s, status="Accepted"
        )

    @after("BootNotification")
    async def after_boot(self, **kwargs: Any) -> None:
        await self.server.booted(self, kwargs.get("firmware_version"))

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> Any:
        return self._call_result.Heartbeat(current_time=_iso(self.now()))

    @on("SignCertificate")
    async def on_sign_certificate(self, csr: str, **_: Any) -> Any:
        accepted, _reason, _detail = await self.sign_certificate(csr, STATION_CERTIFICATE)
        return self._call_result.SignCertificate(status="Accepted" if accepted else "Rejected")

    @after("SignCertificate")
    def after_sign_certificate(self, csr: str, **_: Any) -> None:
        self.certificate_request_answered(csr)

    @on("StatusNotification")
    def on_status(self, connector_id: int, error_code: str, status: str, **_: Any) -> Any:
        if connector_id > 0:
            connected = status in ("Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing")
            self.record_ev_connected(connected)
        return self._call_result.StatusNotification()

    async def tag_status(self, id_tag: str) -> str:
        """The platform's decision as a 1.6 AuthorizationStatus (which has no NotAtThisLocation)."""
        status = await self.authorize(id_tag)
        return status if status in V16_STATUSES else "Invalid"

    @on("Authorize")
    async def on_authorize(self, id_tag: str, **_: Any) -> Any:
        return self._call_result.Authorize(id_tag_info={"status": await self.tag_status(id_tag)})

    @on("StartTransaction")
    async def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any) -> Any:
        tx_id = next(_tx_ids)
        event = TransactionEventIn(
            self.id,
            str(tx_id),
            0,
            "Started",
            parse_measured_at(timestamp, self.now()),
            evse_id=connector_id,
            trigger_reason="Authorized",
            id_token=id_tag,
            meter_wh=float(meter_start),
        )
        await self.submit([], [event])  # stored whatever the tag's status: the charger stops an unauthorised one
        status = await self.tag_status(id_tag)
        return self._call_result.StartTransaction(transaction_id=tx_id, id_tag_info={"status": status})

    @on("StopTransaction")
    async def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs: Any) -> Any:
        samples = self._samples(0, kwargs.get("transaction_data") or [], str(transaction_id))
        event = TransactionEventIn(
            self.id,
            str(transaction_id),
            1,
            "Ended",
            parse_measured_at(timestamp, self.now()),
            trigger_reason="StopAuthorized",
            meter_wh=float(meter_stop),
            stop_reason=kwargs.get("reason", "Local"),
        )
        await self.submit(samples, [event])
        id_tag = kwargs.get("id_tag")
        if id_tag is None:
            return self._call_result.StopTransaction()
        return self._call_result.StopTransaction(id_tag_info={"status": await self.tag_status(str(id_tag))})

    @on("MeterValues")
    async def on_meter_values(self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any) -> Any:
        tx = kwargs.get("transaction_id")
        await self.submit(self._samples(connector_id, meter_value, None if tx is None else str(tx)))
        return self._call_result.MeterValues()

    def _samples(self, connector_id: int, meter_values: list[dict[str, Any]], tx_id: str | None) -> list[MeterSample]:
        out: list[MeterSample] = []
        now = self.now()
        for mv in meter_values:
            at = parse_measured_at(mv.get("timestamp"), now)
            for sv in mv.get("sampled_value", []):
                measurand = sv.get("measurand", "Energy.Active.Import.Register")
                default_unit = "Percent" if measurand == "SoC" else ("W" if measurand.startswith("Power") else "Wh")
                if sv.get("phase"):
                    measurand = f"{measurand}.{sv['phase']}"
                out.append(
                    self.sample(
                        evse_id=connector_id,
                        measurand=measurand,
                        measured_at=at,
                        value=finite(float(sv["value"]), "sampledValue.value"),
                        unit=sv.get("unit", default_unit),
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
        except Exception as exc:
            return CommandResult("error", f"{type(exc).__name__}: {exc}")
        return status_of(response)

    def _profile(self, plan: ProfilePlan, profile_id: int, stack_level: int) -> dict[str, Any]:
        return {
            "charging_profile_id": profile_id,
            "stack_level": stack_level,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Absolute",
            "valid_from": _iso(plan.start_at),
            "valid_to": _iso(plan.valid_to),
            "charging_schedule": {
                "start_schedule": _iso(plan.start_at),
                "charging_rate_unit": "W",
                "charging_schedule_period": [
                    {"start_period": p.start_s, "limit": round(max(0.0, p.p_kw) * 1000.0, 1)} for p in plan.periods
                ],
            },
        }

    async def install_plan(self, plan: ProfilePlan, *, profile_id: int, stack_level: int) -> CommandResult:
        request = self._call.SetChargingProfile(
            connector_id=0, cs_charging_profiles=self._profile(plan, profile_id, stack_level)
        )
        return await self._command(request)

    async def install_default(self, p_kw: float) -> CommandResult:
        profile = {
            "charging_profile_id": DEFAULT_PROFILE_ID,
            "stack_level": DEFAULT_STACK,
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Relative",
            "charging_schedule": {
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": round(max(0.0, p_kw) * 1000.0, 1)}],
            },
        }
        request = self._call.SetChargingProfile(connector_id=0, cs_charging_profiles=profile)
        return await self._command(request)

    async def apply_setpoint(self, p_kw: float, valid_to: datetime, max_charge_kw: float) -> CommandResult:
        plan = ProfilePlan(self.id, self.now(), (ProfilePeriod(0, p_kw),), valid_to, ProfileKind.CHARGE_ONLY, p_kw < 0)
        return await self.install_plan(plan, profile_id=SETPOINT_PROFILE_ID, stack_level=SETPOINT_STACK)

    async def clear_profiles(self, profile_id: int | None = None) -> CommandResult:
        return await self._command(self._call.ClearChargingProfile(id=profile_id))

    async def set_available(self, available: bool) -> CommandResult:
        kind = "Operative" if available else "Inoperative"
        return await self._command(self._call.ChangeAvailability(connector_id=0, type=kind))

    async def reset(self, hard: bool = False) -> CommandResult:
        return await self._command(self._call.Reset(type="Hard" if hard else "Soft"))

    async def trigger(self, message: str) -> CommandResult:
        return await self._command(self._call.TriggerMessage(requested_message=message))

    async def composite_schedule(self, duration_s: int) -> dict[str, Any] | None:
        try:
            response = await self.call(
                self._call.GetCompositeSchedule(connector_id=1, duration=duration_s, charging_rate_unit="W"),
                suppress=False,
            )
        except Exception:
            return None
        return {"status": response.status, "schedule": response.charging_schedule}

    async def get_variable(self, component: str, variable: str) -> str | None:
        try:
            response = await self.call(self._call.GetConfiguration(key=[variable]), suppress=False)
        except Exception:
            return None
        for item in response.configuration_key or []:
            if item.get("key") == variable:
                return item.get("value")  # type: ignore[no-any-return]
        return None

    async def set_variable(self, component: str, variable: str, value: str) -> CommandResult:
        return await self._command(self._call.ChangeConfiguration(key=variable, value=value))

    async def install_certificate(self, chain_pem: str) -> CommandResult:
        return await self._command(self._call.CertificateSigned(certificate_chain=chain_pem))

    async def request_certificate(self) -> CommandResult:
        return await self._command(self._call.ExtendedTriggerMessage(requested_message="SignChargePointCertificate"))
