"""What OCPP 2.0.1 and 2.1 chargers report on their own: translated into the platform's notices.

Security events, device-model events and reports, firmware and log upload status and the EV's own
charging schedule are stored as :class:`~v2g.devices.ChargerNotice` (and shown to the operator);
a charging limit the charger applies on its own (NotifyChargingLimit) becomes a
:class:`~v2g.devices.ChargingLimit`, which the device supervisor stores on the charger's state,
where the planner reads it. A certificate signing request (security profile 3) is checked by the
platform CA and answered Accepted, then signed and sent back with CertificateSigned; an invalid one
is Rejected with the reason (``NoCAConfigured`` while the platform runs no CA).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from v2g.adapters.ocpp.session import after, finite, on, parse_measured_at
from v2g.devices import STATION_CERTIFICATE, ChargerNotice, ChargingLimit, LimitPeriod

VOLTAGE_V = 230.0  # per phase, to turn a limit in A into kW


def _names(item: dict[str, Any]) -> str:
    component = (item.get("component") or {}).get("name", "?")
    variable = (item.get("variable") or {}).get("name", "?")
    return f"{component}.{variable}"


class NoticeHandlers:
    """Handlers of the charger-initiated 2.x messages that carry no telemetry (a session mixin)."""

    id: str
    server: Any
    _call_result: Any

    if TYPE_CHECKING:  # provided by CsmsSession

        async def notice(
            self, kind: str, summary: str, payload: dict[str, Any], occurred_at: str | None = None
        ) -> None: ...

        def now(self) -> datetime: ...

        async def sign_certificate(self, csr: str, certificate_type: str) -> tuple[bool, str, str]: ...

        def certificate_request_answered(self, csr: str) -> None: ...

    @on("SecurityEventNotification")
    async def on_security_event(self, type: str, timestamp: str, **kwargs: Any) -> Any:
        await self.notice("SecurityEventNotification", type, {"type": type, **kwargs}, timestamp)
        return self._call_result.SecurityEventNotification()

    @on("NotifyEvent")
    async def on_notify_event(self, generated_at: str, seq_no: int, event_data: list[dict[str, Any]], **_: Any) -> Any:
        shown = ", ".join(
            f"{_names(e)}={e.get('actual_value', '')!s:.40} ({e.get('trigger', '')})" for e in event_data[:5]
        )
        more = f" and {len(event_data) - 5} more" if len(event_data) > 5 else ""
        await self.notice("NotifyEvent", f"{shown}{more}", {"seq_no": seq_no, "event_data": event_data}, generated_at)
        return self._call_result.NotifyEvent()

    @on("NotifyReport")
    async def on_notify_report(self, request_id: int, generated_at: str, seq_no: int, **kwargs: Any) -> Any:
        data = kwargs.get("report_data") or []
        summary = (
            f"report {request_id} part {seq_no}: {len(data)} variable(s){' (more follow)' if kwargs.get('tbc') else ''}"
        )
        payload = {"request_id": request_id, "seq_no": seq_no, "report_data": data}
        await self.notice("NotifyReport", summary, payload, generated_at)
        return self._call_result.NotifyReport()

    @on("FirmwareStatusNotification")
    async def on_firmware_status(self, status: str, **kwargs: Any) -> Any:
        await self.notice("FirmwareStatusNotification", f"firmware {status}", {"status": status, **kwargs})
        return self._call_result.FirmwareStatusNotification()

    @on("LogStatusNotification")
    async def on_log_status(self, status: str, **kwargs: Any) -> Any:
        await self.notice("LogStatusNotification", f"log upload {status}", {"status": status, **kwargs})
        return self._call_result.LogStatusNotification()

    @on("NotifyEVChargingSchedule")
    async def on_ev_schedule(self, time_base: str, charging_schedule: dict[str, Any], evse_id: int, **_: Any) -> Any:
        periods = charging_schedule.get("charging_schedule_period") or []
        summary = f"EV schedule on EVSE {evse_id}: {len(periods)} period(s) from {time_base}"
        payload = {"evse_id": evse_id, "time_base": time_base, "charging_schedule": charging_schedule}
        await self.notice("NotifyEVChargingSchedule", summary, payload)
        return self._call_result.NotifyEVChargingSchedule(status="Accepted")

    @on("SignCertificate")
    async def on_sign_certificate(self, csr: str, **kwargs: Any) -> Any:
        kind = kwargs.get("certificate_type") or STATION_CERTIFICATE
        accepted, reason, detail = await self.sign_certificate(csr, kind)
        if accepted:
            return self._call_result.SignCertificate(status="Accepted")
        info = {"reason_code": reason, "additional_info": detail[:512]}
        return self._call_result.SignCertificate(status="Rejected", status_info=info)

    @after("SignCertificate")
    def after_sign_certificate(self, csr: str, **kwargs: Any) -> None:
        """Sign and send CertificateSigned once the Accepted reply is out (never from the handler)."""
        self.certificate_request_answered(csr)

    @on("NotifyChargingLimit")
    async def on_charging_limit(self, charging_limit: dict[str, Any], **kwargs: Any) -> Any:
        schedules = kwargs.get("charging_schedule") or []
        limit = self.translate_limit(charging_limit, schedules[0] if schedules else None, kwargs.get("evse_id"))
        await self.server.charging_limit(self, limit)
        return self._call_result.NotifyChargingLimit()

    @on("ClearedChargingLimit")
    async def on_cleared_limit(self, charging_limit_source: str, **kwargs: Any) -> Any:
        limit = ChargingLimit(self.id, charging_limit_source, self.now(), kwargs.get("evse_id"), cleared=True)
        await self.server.charging_limit(self, limit)
        return self._call_result.ClearedChargingLimit()

    def translate_limit(
        self, charging_limit: dict[str, Any], schedule: dict[str, Any] | None, evse_id: int | None
    ) -> ChargingLimit:
        """The first schedule's periods in kW (a limit in A at 230 V per phase, 3 phases unless stated)."""
        now = self.now()
        source = str(charging_limit.get("charging_limit_source", "Other"))
        critical = bool(charging_limit.get("is_grid_critical", False))
        if schedule is None:
            return ChargingLimit(self.id, source, now, evse_id, grid_critical=critical)
        amps = schedule.get("charging_rate_unit") == "A"
        periods = []
        for p in schedule.get("charging_schedule_period") or []:
            value = float(p["limit"])
            kw = value * VOLTAGE_V * int(p.get("number_phases") or 3) / 1000.0 if amps else value / 1000.0
            periods.append(LimitPeriod(int(p["start_period"]), finite(kw, "chargingSchedulePeriod.limit")))
        start = schedule.get("start_schedule")
        start_at = parse_measured_at(start, now) if start else now
        return ChargingLimit(self.id, source, now, evse_id, start_at, tuple(periods), critical)


__all__ = ["ChargerNotice", "NoticeHandlers"]
