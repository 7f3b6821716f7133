"""The CSMS: one WebSocket endpoint ``/ocpp/{charger_id}`` for OCPP 1.6J, 2.0.1 and 2.1.

Built on the ``websockets`` asyncio server (not a Starlette route) because it is the transport the
``ocpp`` library is measured on, it takes an ``ssl.SSLContext`` for security profile 2 and lets the
handshake be refused before the upgrade (``process_request``): unknown charger -> 404, wrong or
missing basic-auth credentials -> 401, deactivated charger or a profile-2 charger on a plain
socket -> 403.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import ssl
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import ocpp.messages
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.ocpp import fastvalidation, keyfix
from v2g.adapters.ocpp.credentials import PasswordVerifier
from v2g.adapters.ocpp.session import CommandResult, CsmsSession
from v2g.adapters.ocpp.writer import TelemetryWriter
from v2g.fleet.schedule import PowerSchedule
from v2g.services.devices import ChargingNeeds, ProfilePlan, fallback_p_kw, plan_from_schedule
from v2g.units import utc_now

log = logging.getLogger("v2g.ocpp")

SUBPROTOCOLS = ("ocpp2.1", "ocpp2.0.1", "ocpp1.6")


@dataclass(frozen=True, slots=True)
class CsmsConfig:
    """Tunables of the CSMS; the defaults suit a real deployment, tests shorten the timers."""

    heartbeat_interval_s: int = 300
    offline_after_missed_heartbeats: float = 2.5
    response_timeout_s: float = 10.0
    profile_validity: timedelta = timedelta(minutes=30)
    default_departure_h: float = 8.0
    validate_outbound: bool = False  # inbound messages are always validated
    send_test_profile_on_first_boot: bool = True
    compression: bool = False  # permessage-deflate costs CPU per frame; enable for metered links
    handshake_timeout_s: float = 60.0  # thousands of chargers reconnecting at once queue for their handshakes


class CsmsServer:
    """Accepts chargers, keeps one session per charger, and runs the background jobs."""

    def __init__(
        self,
        store: SqlDeviceStore,
        config: CsmsConfig | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        writer: TelemetryWriter | None = None,
    ) -> None:
        keyfix.install()
        fastvalidation.install()
        ocpp.messages.ASYNC_VALIDATION = False  # inline validation measured faster than the thread pool
        self.store = store
        self.config = config or CsmsConfig()
        self.ssl_context = ssl_context
        self.writer = writer or TelemetryWriter(store)
        self.sessions: dict[str, CsmsSession] = {}
        self.schedules: dict[str, PowerSchedule] = {}
        self.plan_valid_to: dict[str, datetime] = {}
        self.stats: defaultdict[str, int] = defaultdict(int)
        self._replies: dict[str, OrderedDict[str, str]] = {}
        self._verifier = PasswordVerifier()
        self._last_seen: dict[str, datetime] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: Server | None = None
        self._jobs: list[asyncio.Task[None]] = []
        self.on_profile_rejected: list[Any] = []
        # (charger_id, kind, detail) with kind "boot" or "test_profile_accepted": the journey's
        # ``verify_connectivity`` waits for both; callbacks run in a worker thread
        self.on_device_event: list[Callable[[str, str, str], Any]] = []
        # (charger_id, online): awaited after a connection is accepted and after it ends; the
        # multi-worker registry (``routing.py``) records which worker holds which charger
        self.on_connection: list[Callable[[str, bool], Coroutine[Any, Any, None]]] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False) -> int:
        """Listen; return the bound port (``port=0`` picks a free one)."""
        self.writer.start()
        self._server = await serve(
            self._handle,
            host,
            port,
            subprotocols=list(SUBPROTOCOLS),  # type: ignore[arg-type]
            process_request=self._process_request,
            ssl=self.ssl_context,
            ping_interval=None,
            max_size=2**20,
            reuse_port=reuse_port,
            backlog=4096,  # thousands of chargers reconnect at once after an outage
            open_timeout=self.config.handshake_timeout_s,
            compression="deflate" if self.config.compression else None,
        )
        self._jobs.append(asyncio.create_task(self._liveness_job(), name="csms-liveness"))
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        for job in self._jobs:
            job.cancel()
        for job in self._jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job
        self._jobs.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.writer.stop()
        await asyncio.to_thread(self._flush_last_seen)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background task tied to the server's lifetime."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def reply_cache(self, charger_id: str) -> OrderedDict[str, str]:
        """Replies to recent CALLs of a charger, kept across reconnects for duplicate detection."""
        return self._replies.setdefault(charger_id, OrderedDict())

    def touch(self, charger_id: str) -> None:
        self._last_seen[charger_id] = utc_now()

    # ------------------------------------------------------------------ handshake
    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "ocpp" or not parts[1]:
            return connection.respond(HTTPStatus.NOT_FOUND, "path must be /ocpp/{charger_id}\n")
        charger_id = unquote(parts[1])
        auth = await asyncio.to_thread(self.store.auth, charger_id)
        if auth is None:
            self.stats["refused_unknown"] += 1
            return connection.respond(HTTPStatus.NOT_FOUND, f"charger {charger_id!r} is not registered\n")
        if not auth.active:
            self.stats["refused_inactive"] += 1
            return connection.respond(HTTPStatus.FORBIDDEN, f"charger {charger_id!r} is deactivated\n")
        if auth.security_profile >= 2 and self.ssl_context is None:
            self.stats["refused_no_tls"] += 1
            return connection.respond(HTTPStatus.FORBIDDEN, f"charger {charger_id!r} must connect over TLS\n")
        user, password = _basic_auth(request.headers.get("Authorization"))
        if user != charger_id or password is None:
            self.stats["refused_auth"] += 1
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "basic auth with the charger id required\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
            return response
        ok = await asyncio.to_thread(self._verifier.verify, charger_id, auth.password_hash, password)
        if not ok:
            self.stats["refused_auth"] += 1
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "wrong credentials\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
            return response
        return None

    # ------------------------------------------------------------------ sessions
    async def _handle(self, connection: ServerConnection) -> None:
        protocol = connection.subprotocol
        charger_id = unquote(connection.request.path.split("?", 1)[0].strip("/").split("/")[1])  # type: ignore[union-attr]
        if protocol not in SUBPROTOCOLS:
            await connection.close(1002, "no OCPP subprotocol negotiated")
            return
        session = self._new_session(str(protocol), charger_id, connection)
        previous = self.sessions.get(charger_id)
        if previous is not None:
            self.stats["replaced_connections"] += 1
            await previous._connection.close(1000, "replaced by a newer connection")
        self.sessions[charger_id] = session
        now = utc_now()
        self.touch(charger_id)
        await asyncio.to_thread(self.store.mark_connected, charger_id, str(protocol), now)
        self.stats["connections"] += 1
        try:
            await self._connection_event(charger_id, True)
            await session.start()  # type: ignore[attr-defined]
        except ConnectionClosed:
            pass
        finally:
            if self.sessions.get(charger_id) is session:
                del self.sessions[charger_id]
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.store.mark_disconnected, charger_id, utc_now())
                await self._connection_event(charger_id, False)

    async def _connection_event(self, charger_id: str, online: bool) -> None:
        for callback in self.on_connection:
            try:
                await callback(charger_id, online)
            except Exception:
                log.exception("charger[%s]: connection event (online=%s) not delivered", charger_id, online)

    def _new_session(self, protocol: str, charger_id: str, connection: ServerConnection) -> CsmsSession:
        timeout = self.config.response_timeout_s
        if protocol == "ocpp1.6":
            from v2g.adapters.ocpp.v16 import V16Session

            return V16Session(charger_id, connection, self, response_timeout=timeout)
        if protocol == "ocpp2.0.1":
            from v2g.adapters.ocpp.v201 import V201Session

            return V201Session(charger_id, connection, self, response_timeout=timeout)
        from v2g.adapters.ocpp.v21 import V21Session

        return V21Session(charger_id, connection, self, response_timeout=timeout)

    async def booted(self, session: CsmsSession, firmware_version: str | None) -> None:
        """After an accepted BootNotification (called from the version's ``@after`` hook)."""
        session.booted = True
        await asyncio.to_thread(self.store.mark_booted, session.id, utc_now(), firmware_version)
        await self.device_event(session.id, "boot", f"firmware {firmware_version or 'unknown'}")
        await self.resync(session)

    async def resync(self, session: CsmsSession) -> None:
        """Bring a (re)connected charger up to date: discharge support, fail-safe default, current plan."""
        try:
            session.discharge_supported = await session.read_discharge_support()
            charger = await asyncio.to_thread(self.store.charger, session.id)
            session.discharge_supported = session.discharge_supported and charger.bidirectional
            await asyncio.to_thread(self.store.set_discharge_supported, session.id, session.discharge_supported)
            await self.install_default(session)
            await self.refresh_plan(session, "plan_resync")
            connectivity = await asyncio.to_thread(self.store.connectivity, session.id)
            if self.config.send_test_profile_on_first_boot and connectivity.test_profile_accepted_at is None:
                await self.send_test_profile(session)
        except (TimeoutError, ConnectionClosed) as exc:
            log.warning("charger[%s]: re-sync interrupted: %s", session.id, exc)

    async def refresh_plan(self, session: CsmsSession, purpose: str) -> None:
        """Re-install the current plan with a fresh validity window (reconnect, or before it lapses)."""
        schedule = self.schedules.get(session.id)
        now = utc_now()
        if schedule is None or schedule.end_at <= now:
            return
        charger = await asyncio.to_thread(self.store.charger, session.id)
        plan = plan_from_schedule(
            schedule,
            session.plan_kind(),
            now=now,
            validity=self.config.profile_validity,
            max_charge_kw=charger.max_charge_kw,
            max_discharge_kw=charger.max_discharge_kw,
        )
        await self.install_plan(session, plan, purpose)

    async def install_plan(self, session: CsmsSession, plan: ProfilePlan, purpose: str) -> CommandResult:
        """Send a plan as the charger's plan profile and record the answer."""
        from v2g.adapters.ocpp.session import PLAN_PROFILE_ID, PLAN_STACK

        result = await session.install_plan(plan, profile_id=PLAN_PROFILE_ID, stack_level=PLAN_STACK)
        if result.status == "accepted":
            self.plan_valid_to[session.id] = plan.valid_to
        await self._record(session.id, PLAN_PROFILE_ID, purpose, plan.valid_to, result.status, result.detail)
        return result

    async def install_default(self, session: CsmsSession, needs: ChargingNeeds | None = None) -> None:
        """The fail-safe: charge-only, enough to meet the departure target without the platform.

        Sized for the worst case: the EV's energy request plus what a plan could discharge during
        one validity window, delivered in the time left after that window. Without known needs the
        default is full charging power.
        """
        from v2g.adapters.ocpp.session import DEFAULT_PROFILE_ID

        charger = await asyncio.to_thread(self.store.charger, session.id)
        p_kw = charger.max_charge_kw
        if needs is not None and needs.departure_at is not None and needs.energy_request_kwh is not None:
            window_h = self.config.profile_validity.total_seconds() / 3600.0
            hours = (needs.departure_at - utc_now()).total_seconds() / 3600.0 - window_h
            worst_kwh = max(0.0, needs.energy_request_kwh) + charger.max_discharge_kw * window_h
            p_kw = fallback_p_kw(0.0, 100.0, worst_kwh, hours, charger.max_charge_kw, charge_efficiency=0.9)
        result = await session.install_default(p_kw)
        await self._record(session.id, DEFAULT_PROFILE_ID, "fail_safe_default", None, result.status, result.detail)

    async def send_test_profile(self, session: CsmsSession) -> str:
        """A short, harmless profile that proves the command path (installation connectivity check)."""
        from v2g.adapters.ocpp.session import TEST_PROFILE_ID, TEST_STACK
        from v2g.services.devices import ProfileKind, ProfilePeriod

        now = utc_now()
        plan = ProfilePlan(
            session.id, now, (ProfilePeriod(0, 1.4),), now + timedelta(seconds=60), ProfileKind.CHARGE_ONLY
        )
        result = await session.install_plan(plan, profile_id=TEST_PROFILE_ID, stack_level=TEST_STACK)
        if result.status == "accepted":  # proven; remove it so it never overrides the plan
            await session.clear_profiles(TEST_PROFILE_ID)
        await asyncio.to_thread(
            self.store.record_profile,
            session.id,
            profile_id=TEST_PROFILE_ID,
            purpose="connectivity_test",
            sent_at=now,
            valid_to=plan.valid_to,
            status=result.status,
            detail=result.detail,
            test_profile=True,
        )
        if result.status == "accepted":
            await self.device_event(session.id, "test_profile_accepted", f"profile {TEST_PROFILE_ID}")
        return result.status

    async def device_event(self, charger_id: str, kind: str, detail: str) -> None:
        """Tell the installation journey (and anyone else listening) what a charger just proved."""
        for callback in self.on_device_event:
            try:
                await asyncio.to_thread(callback, charger_id, kind, detail)
            except Exception:
                log.exception("charger[%s]: device event %s not delivered", charger_id, kind)

    async def enforce_deactivation(self) -> list[str]:
        """Remote deactivation of live chargers that were marked inactive (e.g. by the termination journey).

        Clears their profiles, makes them Inoperative and closes the connection; the handshake then
        refuses them. Returns the charger ids handled.
        """
        live = list(self.sessions)
        if not live:
            return []
        inactive = await asyncio.to_thread(self.store.inactive_among, live)
        for charger_id in inactive:
            session = self.sessions.get(charger_id)
            if session is None:
                continue
            self.schedules.pop(charger_id, None)
            self.plan_valid_to.pop(charger_id, None)
            cleared = await session.clear_profiles()
            unavailable = await session.set_available(False)
            await session._connection.close(1000, "charger deactivated")
            self.stats["remote_deactivations"] += 1
            await self._record(charger_id, 0, "deactivation", None, unavailable.status, f"clear={cleared.status}")
        return inactive

    async def needs_received(self, session: CsmsSession, needs: ChargingNeeds) -> None:
        await asyncio.to_thread(self.store.save_needs, needs)
        self.spawn(self.install_default(session, needs))

    async def _record(
        self, charger_id: str, profile_id: int, purpose: str, valid_to: datetime | None, status: str, detail: str
    ) -> None:
        await asyncio.to_thread(
            self.store.record_profile,
            charger_id,
            profile_id=profile_id,
            purpose=purpose,
            sent_at=utc_now(),
            valid_to=valid_to,
            status=status,
            detail=detail,
        )
        if status == "rejected":
            self.stats["profiles_rejected"] += 1
            for callback in self.on_profile_rejected:
                callback(charger_id, purpose, detail)

    # ------------------------------------------------------------------ liveness
    async def _liveness_job(self) -> None:
        interval = max(1.0, self.config.heartbeat_interval_s / 2)
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self._flush_last_seen)
            await self.enforce_deactivation()
            silence = timedelta(seconds=self.config.heartbeat_interval_s * self.config.offline_after_missed_heartbeats)
            now = utc_now()
            for charger_id, seen in list(self._last_seen.items()):
                session = self.sessions.get(charger_id)
                if session is not None and now - seen > silence:
                    self.stats["offline_detected"] += 1
                    log.warning("charger[%s]: silent since %s, closing", charger_id, seen.isoformat())
                    await session._connection.close(1001, "heartbeat missed")
            await asyncio.to_thread(self.store.mark_offline_if_silent, now - silence, now)
            for charger_id, valid_to in list(self.plan_valid_to.items()):
                live = self.sessions.get(charger_id)
                if live is not None and valid_to - now < self.config.profile_validity / 2:
                    self.spawn(self.refresh_plan(live, "plan_refresh"))

    def _flush_last_seen(self) -> None:
        seen, self._last_seen = self._last_seen, {}
        self.store.touch_many(seen)
        for charger_id, at in seen.items():
            self._last_seen.setdefault(charger_id, at)


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else (user, None)
