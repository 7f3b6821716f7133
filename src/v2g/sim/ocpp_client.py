"""The OCPP side of a simulated wallbox: a real ``ocpp`` charge point on a real WebSocket.

One :class:`SimCharger` per wallbox; thousands run in one event loop. It boots, reports status,
runs transactions when an EV is plugged in, sends ISO 15118 needs as NotifyEVChargingNeeds (2.x),
obeys the profiles it receives and reports meter values. Faults for tests: rejected profiles, slow
replies, dropped connections, malformed frames. Messages produced while offline are queued and
sent on reconnect (2.x marks transaction events ``offline``), so no reading is lost.

With a :class:`~v2g.sim.station_pki.StationKeyStore` the wallbox runs security profile 3: it
connects with its client certificate (no password), sends SignCertificate with a fresh key's CSR
when asked (TriggerMessage ``SignChargingStationCertificate``, 1.6 ExtendedTriggerMessage
``SignChargePointCertificate``) or by :meth:`SimCharger.request_certificate`, installs the chain of
CertificateSigned and uses it from its next connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import random
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

import ocpp.v16
import ocpp.v21
import ocpp.v201
from ocpp.routing import after as _after
from ocpp.routing import on as _on
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from v2g.compat import ocpp_keys
from v2g.sim.station_pki import StationKeyStore
from v2g.sim.wallbox import SimPeriod, SimProfile, Wallbox
from v2g.units import parse_utc, utc_now

log = logging.getLogger("v2g.sim")

SIM_ID_TOKEN = "SIM-TAG"  # the RFID card of the simulated EV owners (registered per simulated charger)

F = TypeVar("F", bound=Callable[..., Any])


def on(action: str) -> Callable[[F], F]:
    return cast("Callable[[F], F]", _on(action))


def after(action: str) -> Callable[[F], F]:
    return cast("Callable[[F], F]", _after(action))


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Faults:
    """Injectable misbehaviour."""

    reject_profiles: bool = False
    reply_delay_s: float = 0.0
    declare_v2x: bool = True


@dataclass
class SimStats:
    profiles_received: int = 0
    profiles_rejected: int = 0
    setpoint_updates: int = 0
    meter_values_sent: int = 0
    reconnects: int = 0
    errors: int = 0
    delayed_replies: int = 0  # answers held back by ``Faults.reply_delay_s`` and then sent
    certificates_installed: int = 0
    certificates_refused: int = 0
    last_profile_at: datetime | None = None
    commands: list[str] = field(default_factory=list)


def _rate_kw(raw: Any, unit: str) -> float | None:
    if raw is None:
        return None
    value = float(raw)  # the library decodes JSON numbers as Decimal
    return value / 1000.0 if unit == "W" else value * 0.23 * 3  # A: three-phase 230 V


def profile_from_2x(profile: dict[str, Any], now: datetime) -> SimProfile:
    """A received 2.0.1/2.1 ``chargingProfile`` (snake_case) as a :class:`SimProfile`."""
    schedule = profile["charging_schedule"][0]
    unit = schedule.get("charging_rate_unit", "W")
    kind = profile.get("charging_profile_kind", "Absolute")
    start = schedule.get("start_schedule")
    start_at = parse_utc(start) if (start and kind == "Absolute") else now
    periods = tuple(
        SimPeriod(
            int(p["start_period"]),
            _rate_kw(p.get("limit"), unit),
            _rate_kw(p.get("setpoint"), unit),
            _rate_kw(p.get("discharge_limit"), unit),
            p.get("operation_mode"),
            tuple((float(pt["frequency"]), float(pt["power"]) / 1000.0) for pt in p.get("v2x_freq_watt_curve") or ()),
        )
        for p in schedule["charging_schedule_period"]
    )
    valid_from, valid_to = profile.get("valid_from"), profile.get("valid_to")
    return SimProfile(
        int(profile["id"]),
        int(profile["stack_level"]),
        periods,
        start_at,
        parse_utc(valid_from) if valid_from else None,
        parse_utc(valid_to) if valid_to else None,
    )


def profile_from_16(profile: dict[str, Any], now: datetime) -> SimProfile:
    """A received 1.6 ``csChargingProfiles`` (snake_case) as a :class:`SimProfile`."""
    schedule = profile["charging_schedule"]
    unit = schedule.get("charging_rate_unit", "W")
    kind = profile.get("charging_profile_kind", "Absolute")
    start = schedule.get("start_schedule")
    start_at = parse_utc(start) if (start and kind == "Absolute") else now
    periods = tuple(
        SimPeriod(int(p["start_period"]), max(0.0, _rate_kw(p.get("limit"), unit) or 0.0))
        for p in schedule["charging_schedule_period"]
    )
    valid_from, valid_to = profile.get("valid_from"), profile.get("valid_to")
    return SimProfile(
        int(profile["charging_profile_id"]),
        int(profile["stack_level"]),
        periods,
        start_at,
        parse_utc(valid_from) if valid_from else None,
        parse_utc(valid_to) if valid_to else None,
    )


class _SimMixin:
    """Handlers every simulated wallbox answers the same way, whatever its OCPP version."""

    sim: SimCharger
    _call_result: Any

    async def _delay(self) -> None:
        if self.sim.faults.reply_delay_s > 0:
            await asyncio.sleep(self.sim.faults.reply_delay_s)
            self.sim.stats.delayed_replies += 1

    @on("Reset")
    async def on_reset(self, type: str, **_: Any) -> Any:
        self.sim.command(f"Reset:{type}")
        return self._call_result.Reset(status="Accepted")

    @on("TriggerMessage")
    async def on_trigger(self, requested_message: str, **_: Any) -> Any:
        self.sim.command(f"TriggerMessage:{requested_message}")
        known = self.sim.triggerable()
        return self._call_result.TriggerMessage(status="Accepted" if requested_message in known else "NotImplemented")

    @after("TriggerMessage")
    async def after_trigger(self, requested_message: str, **_: Any) -> None:
        await self.sim.send_triggered(requested_message)

    @on("CertificateSigned")
    async def on_certificate_signed(self, certificate_chain: str, **_: Any) -> Any:
        accepted, why = self.sim.certificate_signed(certificate_chain)
        if accepted:
            return self._call_result.CertificateSigned(status="Accepted")
        if self.sim.protocol == "ocpp1.6":
            return self._call_result.CertificateSigned(status="Rejected")
        info = {"reason_code": "InvalidCertificate", "additional_info": why[:512]}
        return self._call_result.CertificateSigned(status="Rejected", status_info=info)


class _Sim2x(_SimMixin):
    """Charge-point handlers shared by 2.0.1 and 2.1."""

    _call_result: Any

    @on("SetChargingProfile")
    async def on_set_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        await self._delay()
        status = self.sim.accept_profile(profile_from_2x(charging_profile, self.sim.clock()))
        return self._call_result.SetChargingProfile(status=status)

    @on("ClearChargingProfile")
    async def on_clear(self, **kwargs: Any) -> Any:
        await self._delay()
        self.sim.command("ClearChargingProfile")
        self.sim.wallbox.clear(kwargs.get("charging_profile_id"))
        return self._call_result.ClearChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    async def on_composite(self, duration: int, evse_id: int, **_: Any) -> Any:
        now = self.sim.clock()
        periods = [{"start_period": 0, "limit": round(self.sim.wallbox.requested_p_kw(now) * 1000.0, 1)}]
        schedule = {
            "evse_id": evse_id,
            "duration": duration,
            "schedule_start": _iso(now),
            "charging_rate_unit": "W",
            "charging_schedule_period": periods,
        }
        return self._call_result.GetCompositeSchedule(status="Accepted", schedule=schedule)

    @on("GetVariables")
    async def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        await self._delay()
        results = []
        for item in get_variable_data:
            component, variable = item["component"]["name"], item["variable"]["name"]
            value = self.sim.variables.get(f"{component}.{variable}")
            result: dict[str, Any] = {
                "attribute_status": "Accepted" if value is not None else "UnknownVariable",
                "component": {"name": component},
                "variable": {"name": variable},
            }
            if value is not None:
                result["attribute_value"] = value
            results.append(result)
        return self._call_result.GetVariables(get_variable_result=results)

    @on("SetVariables")
    async def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in set_variable_data:
            component, variable = item["component"]["name"], item["variable"]["name"]
            self.sim.variables[f"{component}.{variable}"] = str(item["attribute_value"])
            results.append(
                {"attribute_status": "Accepted", "component": {"name": component}, "variable": {"name": variable}}
            )
        return self._call_result.SetVariables(set_variable_result=results)

    @on("ChangeAvailability")
    async def on_availability(self, operational_status: str, **_: Any) -> Any:
        self.sim.command(f"ChangeAvailability:{operational_status}")
        self.sim.wallbox.available = operational_status == "Operative"
        return self._call_result.ChangeAvailability(status="Accepted")


class _Sim201(_Sim2x, ocpp.v201.ChargePoint):  # type: ignore[misc]
    pass


class _Sim21(_Sim2x, ocpp.v21.ChargePoint):  # type: ignore[misc]
    @on("UpdateDynamicSchedule")
    async def on_update_dynamic(self, charging_profile_id: int, schedule_update: dict[str, Any], **_: Any) -> Any:
        await self._delay()
        if self.sim.faults.reject_profiles:
            self.sim.stats.profiles_rejected += 1
            return self._call_result.UpdateDynamicSchedule(status="Rejected")
        update = {
            f"{key}_kw": float(schedule_update[key]) / 1000.0
            for key in ("setpoint", "limit", "discharge_limit")
            if key in schedule_update
        }
        self.sim.wallbox.advance(self.sim.clock())
        ok = self.sim.wallbox.update_dynamic(charging_profile_id, update)
        self.sim.stats.setpoint_updates += 1
        self.sim.stats.last_profile_at = self.sim.clock()
        return self._call_result.UpdateDynamicSchedule(status="Accepted" if ok else "Rejected")


class _Sim16(_SimMixin, ocpp.v16.ChargePoint):  # type: ignore[misc]
    @on("SetChargingProfile")
    async def on_set_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any) -> Any:
        await self._delay()
        status = self.sim.accept_profile(profile_from_16(cs_charging_profiles, self.sim.clock()))
        return self._call_result.SetChargingProfile(status=status)

    @on("ClearChargingProfile")
    async def on_clear(self, **kwargs: Any) -> Any:
        self.sim.command("ClearChargingProfile")
        self.sim.wallbox.clear(kwargs.get("id"))
        return self._call_result.ClearChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    async def on_composite(self, connector_id: int, duration: int, **_: Any) -> Any:
        now = self.sim.clock()
        schedule = {
            "duration": duration,
            "start_schedule": _iso(now),
            "charging_rate_unit": "W",
            "charging_schedule_period": [
                {"start_period": 0, "limit": round(max(0.0, self.sim.wallbox.requested_p_kw(now)) * 1000.0, 1)}
            ],
        }
        return self._call_result.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=_iso(now), charging_schedule=schedule
        )

    @on("GetConfiguration")
    async def on_get_configuration(self, **kwargs: Any) -> Any:
        keys = kwargs.get("key") or list(self.sim.variables)
        known = [{"key": k, "readonly": False, "value": self.sim.variables[k]} for k in keys if k in self.sim.variables]
        unknown = [k for k in keys if k not in self.sim.variables]
        return self._call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on("ChangeConfiguration")
    async def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        self.sim.variables[key] = value
        return self._call_result.ChangeConfiguration(status="Accepted")

    @on("ChangeAvailability")
    async def on_availability(self, connector_id: int, type: str, **_: Any) -> Any:
        self.sim.command(f"ChangeAvailability:{type}")
        self.sim.wallbox.available = type == "Operative"
        return self._call_result.ChangeAvailability(status="Accepted")

    @on("ExtendedTriggerMessage")
    async def on_extended_trigger(self, requested_message: str, **_: Any) -> Any:
        self.sim.command(f"ExtendedTriggerMessage:{requested_message}")
        known = self.sim.triggerable()
        status = "Accepted" if requested_message in known else "NotImplemented"
        return self._call_result.ExtendedTriggerMessage(status=status)

    @after("ExtendedTriggerMessage")
    async def after_extended_trigger(self, requested_message: str, **_: Any) -> None:
        await self.sim.send_triggered(requested_message)


_CLASSES: dict[str, type[Any]] = {"ocpp1.6": _Sim16, "ocpp2.0.1": _Sim201, "ocpp2.1": _Sim21}
PROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}


class SimCharger:
    """A simulated wallbox speaking OCPP to a CSMS."""

    def __init__(
        self,
        charger_id: str,
        password: str,
        base_url: str,
        protocol: str,
        wallbox: Wallbox,
        *,
        faults: Faults | None = None,
        clock: Callable[[], datetime] = utc_now,
        meter_interval_s: float = 10.0,
        response_timeout_s: float = 30.0,
        ssl_context: Any = None,
        validate: bool = True,
        keystore: StationKeyStore | None = None,
    ) -> None:
        ocpp_keys.install()  # the 2.1 key-case fix and memoised key conversion, as on the CSMS side
        self.charger_id = charger_id
        self.password = password
        self.url = f"{base_url.rstrip('/')}/{charger_id}"
        self.protocol = PROTOCOLS.get(protocol, protocol)
        if self.protocol not in _CLASSES:
            msg = f"protocol: {protocol!r} is not one of 1.6, 2.0.1, 2.1"
            raise ValueError(msg)
        self.wallbox = wallbox
        self.faults = faults or Faults()
        self.clock = clock
        self.meter_interval_s = meter_interval_s
        self.response_timeout_s = response_timeout_s
        self.ssl_context = ssl_context
        self.keystore = keystore  # security profile 3: key pair and client certificate
        self.validate = validate
        self.stats = SimStats()
        discharge = "true" if (self.faults.declare_v2x and wallbox.max_discharge_kw > 0) else "false"
        self.variables: dict[str, str] = {"V2XChargingCtrlr.Enabled": discharge, "HeartbeatInterval": "300"}
        self.cp: Any = None
        self.ws: ClientConnection | None = None
        self.booted = asyncio.Event()
        self.connected = asyncio.Event()
        self.tx_id: str | None = None
        self.seq_no = 0
        self.outbox: deque[tuple[str, dict[str, Any]]] = deque()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = False
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ connection
    def command(self, name: str) -> None:
        self.stats.commands.append(name)

    def accept_profile(self, profile: SimProfile) -> str:
        self.stats.profiles_received += 1
        if self.faults.reject_profiles:
            self.stats.profiles_rejected += 1
            return "Rejected"
        self.wallbox.advance(self.clock())
        self.wallbox.install(profile)
        self.stats.last_profile_at = self.clock()
        return "Accepted"

    async def connect(self) -> None:
        """Open the WebSocket and start routing messages (no boot yet).

        Basic auth is sent when the wallbox has a password (profiles 1 and 2); with a key store it
        presents its installed client certificate (profile 3).
        """
        headers = {}
        if self.password:
            token = base64.b64encode(f"{self.charger_id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        context = self.keystore.ssl_context() if self.keystore is not None else self.ssl_context
        self.ws = await connect(
            self.url,
            subprotocols=[self.protocol],  # type: ignore[list-item]
            additional_headers=headers,
            ssl=context,
            ping_interval=None,
            open_timeout=60,
            compression=None,
        )
        cls = _CLASSES[self.protocol]
        self.cp = cls(self.charger_id, self.ws, response_timeout=self.response_timeout_s)
        self.cp.sim = self
        self.cp._unique_id_generator = lambda: f"{self.charger_id[-8:]}-{next(self._ids)}"
        self._tasks.append(asyncio.create_task(self._serve(self.cp)))
        self.connected.set()

    async def _serve(self, cp: Any) -> None:
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            await cp.start()
        self.connected.clear()

    async def disconnect(self) -> None:
        """Drop the connection (a fault, or the end of a run)."""
        self.connected.clear()
        if self.ws is not None:
            await self.ws.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def call(self, request: Any) -> Any:
        return await self.cp.call(request, suppress=False, skip_schema_validation=not self.validate)

    async def boot(self) -> Any:
        if self.protocol == "ocpp1.6":
            response = await self.call(
                ocpp.v16.call.BootNotification(
                    charge_point_vendor="V2G-Sim", charge_point_model="BiDi-11", firmware_version="sim-1.0"
                )
            )
        else:
            module = ocpp.v21 if self.protocol == "ocpp2.1" else ocpp.v201
            response = await self.call(
                module.call.BootNotification(
                    charging_station={"model": "BiDi-11", "vendor_name": "V2G-Sim", "firmware_version": "sim-1.0"},
                    reason="PowerUp",
                )
            )
        if response.status == "Accepted":
            self.booted.set()
        return response

    async def start(self, *, boot: bool = True) -> None:
        """Connect, boot, report status and flush anything queued while offline."""
        await self.connect()
        if boot:
            await self.boot()
        await self.status()
        await self.flush_outbox()

    async def stop(self) -> None:
        self._stopping = True
        await self.disconnect()

    async def reconnect(self) -> None:
        """Come back after a drop: no new boot (as real chargers do), then the offline queue."""
        await self.disconnect()
        self.stats.reconnects += 1
        await self.start(boot=False)

    # ------------------------------------------------------------------ messages
    def _module(self) -> Any:
        return {"ocpp1.6": ocpp.v16, "ocpp2.0.1": ocpp.v201, "ocpp2.1": ocpp.v21}[self.protocol]

    async def status(self) -> None:
        plugged = self.wallbox.battery is not None
        if self.protocol == "ocpp1.6":
            status = "Charging" if plugged else "Available"
            await self.call(ocpp.v16.call.StatusNotification(connector_id=1, error_code="NoError", status=status))
        else:
            await self.call(
                self._module().call.StatusNotification(
                    timestamp=_iso(self.clock()),
                    connector_status="Occupied" if plugged else "Available",
                    evse_id=1,
                    connector_id=1,
                )
            )

    async def heartbeat(self) -> None:
        await self.call(self._module().call.Heartbeat())

    def _meter(self, at: datetime) -> list[dict[str, Any]]:
        wb = self.wallbox
        values: list[tuple[float, str, str]] = [
            (round(wb.energy_import_wh, 1), "Energy.Active.Import.Register", "Wh"),
            (round(wb.energy_export_wh, 1), "Energy.Active.Export.Register", "Wh"),
            (round(max(wb.p_kw, 0.0) * 1000.0, 1), "Power.Active.Import", "W"),
            (round(max(-wb.p_kw, 0.0) * 1000.0, 1), "Power.Active.Export", "W"),
        ]
        if wb.soc_percent is not None:
            values.append((round(wb.soc_percent, 2), "SoC", "Percent"))
        sampled: list[dict[str, Any]]
        if self.protocol == "ocpp1.6":
            sampled = [{"value": str(v), "measurand": m, "unit": u, "context": "Sample.Periodic"} for v, m, u in values]
        else:
            sampled = [
                {"value": v, "measurand": m, "context": "Sample.Periodic", "unit_of_measure": {"unit": u}}
                for v, m, u in values
            ]
        return [{"timestamp": _iso(at), "sampled_value": sampled}]

    async def send_or_queue(self, action: str, payload: dict[str, Any]) -> Any:
        """Send now if connected, else queue for the reconnect (marking 2.x transaction events offline)."""
        if not self.connected.is_set():
            if action == "TransactionEvent":
                payload = {**payload, "offline": True}
            self.outbox.append((action, payload))
            return None
        try:
            return await self.call(getattr(self._module().call, action)(**payload))
        except (ConnectionClosed, TimeoutError):
            if action == "TransactionEvent":
                payload = {**payload, "offline": True}
            self.outbox.append((action, payload))
            return None

    async def flush_outbox(self) -> int:
        sent = 0
        while self.outbox and self.connected.is_set():
            action, payload = self.outbox[0]
            await self.call(getattr(self._module().call, action)(**payload))
            self.outbox.popleft()
            sent += 1
        return sent

    async def meter_values(self) -> None:
        now = self.clock()
        self.wallbox.advance(now)
        meter = self._meter(now)
        if self.protocol == "ocpp1.6":
            payload: dict[str, Any] = {"connector_id": 1, "meter_value": meter}
            if self.tx_id is not None:
                payload["transaction_id"] = int(self.tx_id)
            await self.send_or_queue("MeterValues", payload)
        elif self.tx_id is not None:
            await self.transaction_event("Updated", "MeterValuePeriodic", meter)
        else:
            await self.send_or_queue("MeterValues", {"evse_id": 1, "meter_value": meter})
        self.stats.meter_values_sent += 1

    async def transaction_event(
        self, event_type: str, trigger: str, meter: list[dict[str, Any]] | None = None, **extra: Any
    ) -> Any:
        assert self.tx_id is not None
        payload: dict[str, Any] = {
            "event_type": event_type,
            "timestamp": _iso(self.clock()),
            "trigger_reason": trigger,
            "seq_no": self.seq_no,
            "transaction_info": {"transaction_id": self.tx_id, **extra.pop("transaction_info", {})},
            "evse": {"id": 1, "connector_id": 1},
            **extra,
        }
        if meter:
            payload["meter_value"] = meter
        self.seq_no += 1
        return await self.send_or_queue("TransactionEvent", payload)

    async def plug_in(self, battery: Any, target_soc_kwh: float, departure_at: datetime) -> None:
        """An EV arrives: status, transaction start and (2.x) its ISO 15118 charging needs."""
        now = self.clock()
        self.wallbox.plug_in(battery, target_soc_kwh, departure_at, now)
        if self.connected.is_set():
            await self.status()
        if self.protocol == "ocpp1.6":
            response = await self.call(
                ocpp.v16.call.StartTransaction(
                    connector_id=1,
                    id_tag=SIM_ID_TOKEN,
                    meter_start=int(self.wallbox.energy_import_wh),
                    timestamp=_iso(now),
                )
            )
            self.tx_id = str(response.transaction_id)
            return
        self.tx_id = uuid.uuid4().hex[:20]
        self.seq_no = 0
        await self.transaction_event(
            "Started",
            "CablePluggedIn",
            self._meter(now),
            id_token={"id_token": SIM_ID_TOKEN, "type": "ISO14443"},
            transaction_info={"charging_state": "EVConnected"},
        )
        await self.send_needs()

    async def send_needs(self) -> Any:
        battery = self.wallbox.battery
        if battery is None or self.protocol == "ocpp1.6" or self.wallbox.departure_at is None:
            return None
        energy_wh = max(0.0, self.wallbox.target_soc_kwh - battery.soc_kwh) * 1000.0
        needs: dict[str, Any] = {
            "requested_energy_transfer": "AC_three_phase",
            "departure_time": _iso(self.wallbox.departure_at),
            "ac_charging_parameters": {
                "energy_amount": round(energy_wh),
                "ev_min_current": 6,
                "ev_max_current": 16,
                "ev_max_voltage": 400,
            },
        }
        if self.protocol == "ocpp2.1":
            spec = battery.spec
            needs["requested_energy_transfer"] = "AC_BPT"
            needs["control_mode"] = "DynamicControl"
            needs["v2x_charging_parameters"] = {
                "max_charge_power": spec.max_charge_kw * 1000.0,
                "max_discharge_power": spec.max_discharge_kw * 1000.0,
                "ev_target_energy_request": round(energy_wh),
                "ev_min_energy_request": round((spec.soc_min_kwh - battery.soc_kwh) * 1000.0),
                "ev_max_energy_request": round((spec.upper_kwh - battery.soc_kwh) * 1000.0),
                "target_soc": round(100.0 * self.wallbox.target_soc_kwh / spec.capacity_kwh),
            }
        return await self.call(self._module().call.NotifyEVChargingNeeds(evse_id=1, charging_needs=needs))

    async def unplug(self) -> None:
        now = self.clock()
        meter = self._meter(now)
        self.wallbox.unplug(now)
        if self.tx_id is None:
            return
        if self.protocol == "ocpp1.6":
            await self.send_or_queue(
                "StopTransaction",
                {
                    "meter_stop": int(self.wallbox.energy_import_wh),
                    "timestamp": _iso(now),
                    "transaction_id": int(self.tx_id),
                    "reason": "EVDisconnected",
                },
            )
        else:
            await self.transaction_event(
                "Ended", "EVCommunicationLost", meter, transaction_info={"stopped_reason": "EVDisconnected"}
            )
        self.tx_id = None

    def triggerable(self) -> set[str]:
        """The messages a TriggerMessage (1.6: ExtendedTriggerMessage) may ask this wallbox for."""
        known = {"Heartbeat", "MeterValues", "StatusNotification", "BootNotification"}
        if self.keystore is not None:
            known |= {"SignChargingStationCertificate", "SignChargePointCertificate"}
        return known

    # ------------------------------------------------------------------ certificates (security profile 3)
    async def request_certificate(self, csr: str | None = None) -> Any:
        """SignCertificate with a fresh key pair's CSR (or the one given); returns the CSMS's answer."""
        if csr is None:
            if self.keystore is None:
                msg = "request_certificate: the wallbox has no key store (security profile 3)"
                raise RuntimeError(msg)
            csr = self.keystore.new_csr()
        if self.protocol == "ocpp1.6":
            return await self.call(ocpp.v16.call.SignCertificate(csr=csr))
        return await self.call(
            self._module().call.SignCertificate(csr=csr, certificate_type="ChargingStationCertificate")
        )

    def certificate_signed(self, chain_pem: str) -> tuple[bool, str]:
        """CertificateSigned: install the chain for the pending key; used from the next connection."""
        self.command("CertificateSigned")
        if self.keystore is None:
            accepted, why = False, "no key store"
        else:
            accepted, why = self.keystore.install(chain_pem, utc_now())  # TLS checks real time, not sim time
        if accepted:
            self.stats.certificates_installed += 1
        else:
            self.stats.certificates_refused += 1
            log.warning("charger[%s]: certificate refused: %s", self.charger_id, why)
        return accepted, why

    async def send_triggered(self, message: str) -> None:
        with contextlib.suppress(Exception):
            if message in ("SignChargingStationCertificate", "SignChargePointCertificate"):
                await self.request_certificate()
            elif message == "Heartbeat":
                await self.heartbeat()
            elif message == "MeterValues":
                await self.meter_values()
            elif message == "StatusNotification":
                await self.status()
            elif message == "BootNotification":
                await self.boot()

    async def send_raw(self, frame: str) -> None:
        """Fault injection: put any text on the wire (malformed frames)."""
        assert self.ws is not None
        await self.ws.send(frame)

    async def run_meter_loop(self, *, jitter: bool = True) -> None:
        """Report meter values every ``meter_interval_s`` until stopped."""
        if jitter:
            await asyncio.sleep(random.uniform(0, self.meter_interval_s))
        while not self._stopping:
            try:
                await self.meter_values()
            except Exception as exc:
                self.stats.errors += 1
                log.debug("charger[%s]: meter values failed: %s", self.charger_id, exc)
            await asyncio.sleep(self.meter_interval_s)


async def connect_with_retry(sim: SimCharger, attempts: int = 5, delay_s: float = 0.5) -> None:
    """Start a simulated charger, retrying refused or failed handshakes a few times."""
    for attempt in range(attempts):
        try:
            await sim.start()
            return
        except (OSError, InvalidStatus, TimeoutError) as exc:
            if attempt == attempts - 1:
                raise
            log.debug("charger[%s]: connect failed (%s), retrying", sim.charger_id, exc)
            await asyncio.sleep(delay_s * (attempt + 1))
