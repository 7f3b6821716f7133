"""The OCPP implementation of :class:`v2g.services.devices.ports.ChargerGateway`.

Commands to different chargers run concurrently (one outstanding CALL per charger, as OCPP-J
requires); a charger without a live session answers ``offline`` at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from v2g.adapters.ocpp.server import CsmsServer
from v2g.adapters.ocpp.session import CsmsSession
from v2g.devices import (
    Ack,
    AckStatus,
    CommandResult,
    DeviceError,
    FrequencyCurvePoint,
    ProfileKind,
    Setpoint,
    plan_from_schedule,
)
from v2g.fleet.model import Charger
from v2g.fleet.schedule import PowerSchedule

_STATUS = {
    "accepted": AckStatus.ACCEPTED,
    "rejected": AckStatus.REJECTED,
    "timeout": AckStatus.TIMEOUT,
    "unsupported": AckStatus.UNSUPPORTED,
    "notsupported": AckStatus.UNSUPPORTED,
    "offline": AckStatus.OFFLINE,
}


def to_ack(charger_id: str, result: CommandResult, extra: str = "") -> Ack:
    status = _STATUS.get(result.status, AckStatus.REJECTED)
    detail = "; ".join(x for x in (result.detail if status is not AckStatus.ACCEPTED else "", extra) if x)
    if status is AckStatus.REJECTED and not detail:
        detail = f"charger answered {result.status}"
    return Ack(charger_id, status, detail)


class OcppChargerGateway:
    """Sends platform commands to whichever OCPP version each charger speaks."""

    def __init__(self, server: CsmsServer) -> None:
        self.server = server
        self._chargers: dict[str, Charger] = {}

    async def _charger(self, charger_id: str) -> Charger:
        charger = self._chargers.get(charger_id)
        if charger is None:
            charger = await asyncio.to_thread(self.server.store.charger, charger_id)
            self._chargers[charger_id] = charger
        return charger

    async def _each(self, ids: Sequence[str], work: Callable[[str], Awaitable[Ack]]) -> list[Ack]:
        return list(await asyncio.gather(*(work(cid) for cid in ids)))

    def _session(self, charger_id: str) -> CsmsSession | None:
        return self.server.sessions.get(charger_id)

    async def send_schedules(self, schedules: Sequence[PowerSchedule]) -> list[Ack]:
        """Install planned schedules; a rejection is recorded on the charger and reported in the ack."""
        now = self.server.clock.now()
        validity = self.server.config.profile_validity

        async def one(schedule: PowerSchedule) -> Ack:
            charger_id = schedule.charger_id or ""
            try:
                charger = await self._charger(charger_id)
            except LookupError:
                return Ack(charger_id, AckStatus.REJECTED, f"schedule[{schedule.ev_id}].charger_id: unknown charger")
            session = self._session(charger_id)
            try:
                plan = plan_from_schedule(
                    schedule,
                    session.plan_kind() if session is not None else ProfileKind.CHARGE_ONLY,
                    now=now,
                    validity=validity,
                    max_charge_kw=charger.max_charge_kw,
                    max_discharge_kw=charger.max_discharge_kw,
                )
            except DeviceError as exc:
                return Ack(charger_id, AckStatus.REJECTED, str(exc))
            self.server.supervisor.set_schedule(charger_id, schedule)  # re-sent on reconnect and refreshed while valid
            if session is None:
                return Ack(charger_id, AckStatus.OFFLINE, "no live connection; the plan is sent on reconnect")
            result = await self.server.install_plan(session, plan, "plan")
            extra = "discharge clamped to 0 (charger cannot discharge)" if plan.clamped_discharge else ""
            return to_ack(charger_id, result, extra)

        return list(await asyncio.gather(*(one(s) for s in schedules)))

    async def send_setpoints(self, setpoints: Sequence[Setpoint]) -> list[Ack]:
        default_valid = timedelta(minutes=5)

        async def one(sp: Setpoint) -> Ack:
            session = self._session(sp.charger_id)
            if session is None:
                return Ack(sp.charger_id, AckStatus.OFFLINE, "no live connection")
            try:
                charger = await self._charger(sp.charger_id)
            except LookupError:
                return Ack(sp.charger_id, AckStatus.REJECTED, "unknown charger")
            p_kw = min(max(sp.p_kw, -charger.max_discharge_kw), charger.max_charge_kw)
            valid_to = sp.valid_until or self.server.clock.now() + default_valid
            result = await session.apply_setpoint(p_kw, valid_to, charger.max_charge_kw)
            extra = ""
            if p_kw < 0 and session.plan_kind().value == "charge_only":
                extra = "discharge clamped to 0 (charger cannot discharge)"
            return to_ack(sp.charger_id, result, extra)

        return list(await asyncio.gather(*(one(sp) for sp in setpoints)))

    async def configure_frequency_curve(
        self, charger_id: str, curve: Sequence[FrequencyCurvePoint], valid_until: datetime | None = None
    ) -> Ack:
        session = self._session(charger_id)
        if session is None:
            return Ack(charger_id, AckStatus.OFFLINE, "no live connection")
        freqs = [pt.frequency_hz for pt in curve]
        if len(curve) < 2 or freqs != sorted(freqs):
            return Ack(charger_id, AckStatus.REJECTED, "curve: needs at least two points in rising frequency")
        return to_ack(charger_id, await session.frequency_curve(curve, valid_until))

    async def deactivate(self, charger_id: str) -> Ack:
        """Clear profiles, make the charger inoperative and close its connection."""
        self.server.supervisor.forget(charger_id)
        session = self._session(charger_id)
        if session is None:
            return Ack(charger_id, AckStatus.OFFLINE, "no live connection; refused at its next handshake")
        cleared = await session.clear_profiles()
        availability = await session.set_available(False)
        await session.disconnect("charger deactivated")
        detail = f"clear={cleared.status} availability={availability.status}"
        ok = cleared.status == "accepted" and availability.status in ("accepted", "scheduled")
        return Ack(charger_id, AckStatus.ACCEPTED if ok else AckStatus.REJECTED, detail)

    async def test_profile(self, charger_id: str) -> Ack:
        """Send the installation-stage test profile now (also sent automatically after first boot)."""
        session = self._session(charger_id)
        if session is None:
            return Ack(charger_id, AckStatus.OFFLINE, "no live connection")
        status = await self.server.send_test_profile(session)
        return to_ack(charger_id, CommandResult(status))

    async def renew_certificate(self, charger_id: str) -> Ack:
        """Ask a charger for a new client certificate (security profile 3): it answers with SignCertificate."""
        session = self._session(charger_id)
        if session is None:
            return Ack(charger_id, AckStatus.OFFLINE, "no live connection")
        return to_ack(charger_id, await self.server.request_certificate_renewal(session))
