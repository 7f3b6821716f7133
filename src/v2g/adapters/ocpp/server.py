"""The CSMS: one WebSocket endpoint ``/ocpp/{charger_id}`` for OCPP 1.6J, 2.0.1 and 2.1.

Built on the ``websockets`` asyncio server (not a Starlette route) because it is the transport the
``ocpp`` library is measured on, it takes an ``ssl.SSLContext`` for security profile 2 and lets the
handshake be refused before the upgrade (``process_request``): unknown charger -> 404, wrong or
missing basic-auth credentials -> 401, deactivated charger or a profile-2 charger on a plain
socket -> 403, an OCPP version the charger's record does not allow (a 2.0.1 charger offering only
1.6) -> 400.

Security profile 3 has its own listener (``mtls_context``, its own port): TLS that requires a client
certificate issued by the platform CA (``ssl.CERT_REQUIRED``), so a charger without one, or with one
from another CA, never completes the TLS handshake. The WebSocket handshake then checks that the
certificate's CN is the charger id in the URL and that the certificate is on record for that charger
and not revoked (403 otherwise); no basic-auth password is needed. A charger registered at profile 3
that connects without a client certificate (the profile-1/2 listener, or a plain socket) is refused
with 403: the platform never lets it down to a lower profile.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import ssl
import weakref
from collections import defaultdict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import ocpp.messages
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, NegotiationError
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from v2g.adapters.ocpp.credentials import PasswordVerifier
from v2g.adapters.ocpp.session import CsmsSession
from v2g.adapters.ocpp.writer import TelemetryWriter
from v2g.compat import ocpp_keys, ocpp_validation
from v2g.devices import (
    CertificateRequestError,
    ChargerAuth,
    ChargerNotice,
    ChargingLimit,
    ChargingNeeds,
    CommandResult,
    CsrRefusal,
    PresentedCertificate,
    ProfilePlan,
    normalise_serial,
)
from v2g.fleet.schedule import PowerSchedule
from v2g.services.clock import Clock, SystemClock
from v2g.services.devices.certificates import StationCertificates
from v2g.services.devices.ports import DeviceStore
from v2g.services.devices.supervisor import DeviceSupervisor, SupervisorConfig

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

    def supervisor(self) -> SupervisorConfig:
        """The device supervisor's part of the configuration."""
        return SupervisorConfig(
            heartbeat_interval_s=self.heartbeat_interval_s,
            offline_after_missed_heartbeats=self.offline_after_missed_heartbeats,
            profile_validity=self.profile_validity,
            send_test_profile_on_first_boot=self.send_test_profile_on_first_boot,
        )


class CsmsServer:
    """Accepts chargers, keeps one session per charger, translates frames and tells the supervisor.

    What the platform does with a connected charger (re-sync, fail-safe default, plan refresh,
    test profile, deactivation, liveness) is the :class:`DeviceSupervisor`'s; the server hands it
    the live sessions as its charger links and calls it on every connection event.
    """

    def __init__(
        self,
        store: DeviceStore,
        config: CsmsConfig | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        mtls_context: ssl.SSLContext | None = None,
        certificates: StationCertificates | None = None,
        writer: TelemetryWriter | None = None,
        clock: Clock | None = None,
    ) -> None:
        ocpp_keys.install()
        ocpp_validation.install()
        ocpp.messages.ASYNC_VALIDATION = False  # inline validation measured faster than the thread pool
        self.store = store
        self.config = config or CsmsConfig()
        self.clock: Clock = clock or SystemClock()
        self.ssl_context = ssl_context
        # security profile 3: TLS requiring a client certificate, on its own listener
        if mtls_context is not None and mtls_context.verify_mode is not ssl.CERT_REQUIRED:
            msg = "mtls_context: security profile 3 needs verify_mode CERT_REQUIRED"
            raise ValueError(msg)
        if mtls_context is not None and certificates is None:
            msg = "mtls_context: security profile 3 needs the station certificates (the platform CA)"
            raise ValueError(msg)
        self.mtls_context = mtls_context
        self.certificates = certificates
        self.mtls_port: int | None = None
        self.writer = writer or TelemetryWriter(store, clock=self.clock)
        self.sessions: dict[str, CsmsSession] = {}
        self.stats: defaultdict[str, int] = defaultdict(int)
        self._verifier = PasswordVerifier()
        # the OCPP versions each connection in its handshake may use (its charger's record)
        self._allowed: weakref.WeakKeyDictionary[ServerConnection, list[str]] = weakref.WeakKeyDictionary()
        # the client certificate each admitted profile-3 connection presented
        self._presented: weakref.WeakKeyDictionary[ServerConnection, PresentedCertificate] = weakref.WeakKeyDictionary()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._servers: list[Server] = []
        self._jobs: list[asyncio.Task[None]] = []
        self.supervisor = DeviceSupervisor(
            store,
            self.sessions,
            self.config.supervisor(),
            clock=self.clock,
            spawn=self.spawn,
            stats=self.stats,
            interrupted=(ConnectionClosed,),
        )
        self.schedules: dict[str, PowerSchedule] = self.supervisor.schedules
        self.plan_valid_to: dict[str, datetime] = self.supervisor.plan_valid_to
        self.on_profile_rejected: list[Callable[[str, str, str], Any]] = self.supervisor.on_profile_rejected
        # (charger_id, kind, detail) with kind "boot" or "test_profile_accepted"; run in a worker thread
        self.on_device_event: list[Callable[[str, str, str], Any]] = self.supervisor.on_device_event
        # (charger_id, online): awaited after a connection is accepted and after it ends; the
        # multi-worker registry (``routing.py``) records which worker holds which charger
        self.on_connection: list[Callable[[str, bool], Coroutine[Any, Any, None]]] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False, mtls_port: int = 0
    ) -> int:
        """Listen; return the bound port (``port=0`` picks a free one).

        With an ``mtls_context`` the security-profile-3 listener binds ``mtls_port`` too (its bound
        port is then :attr:`mtls_port`).
        """
        self.writer.start()
        bound = await self._listen(host, port, self.ssl_context, reuse_port)
        if self.mtls_context is not None:
            self.mtls_port = await self._listen(host, mtls_port, self.mtls_context, reuse_port)
        self._jobs.append(asyncio.create_task(self._liveness_job(), name="csms-liveness"))
        return bound

    async def _listen(self, host: str, port: int, context: ssl.SSLContext | None, reuse_port: bool) -> int:
        server = await serve(
            self._handle,
            host,
            port,
            subprotocols=list(SUBPROTOCOLS),  # type: ignore[arg-type]
            select_subprotocol=self._select_subprotocol,
            process_request=self._process_request,
            ssl=context,
            ping_interval=None,
            max_size=2**20,
            reuse_port=reuse_port,
            backlog=4096,  # thousands of chargers reconnect at once after an outage
            open_timeout=self.config.handshake_timeout_s,
            compression="deflate" if self.config.compression else None,
        )
        self._servers.append(server)
        sock = next(iter(server.sockets))
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        for job in self._jobs:
            job.cancel()
        for job in self._jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job
        self._jobs.clear()
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self.mtls_port = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.writer.stop()
        await asyncio.to_thread(self.supervisor.flush_last_seen)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background task tied to the server's lifetime."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def touch(self, charger_id: str) -> None:
        self.supervisor.touch(charger_id)

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
        presented = _presented_certificate(connection)
        if presented is not None:
            refused = await self._admit_certificate(charger_id, presented)
            if refused is not None:
                return connection.respond(HTTPStatus.FORBIDDEN, f"charger {charger_id!r}: {refused}\n")
            self._presented[connection] = presented  # authenticated by its certificate: no password needed
        elif auth.security_profile >= 3:
            self.stats["refused_downgrade"] += 1
            log.warning(
                "charger[%s]: refused: registered at security profile 3 but connected without a client "
                "certificate (a downgrade to profile %d)",
                charger_id,
                2 if _is_tls(connection) else 1,
            )
            text = (
                f"charger {charger_id!r} is registered at security profile 3: connect to the profile-3 "
                "endpoint with its client certificate\n"
            )
            return connection.respond(HTTPStatus.FORBIDDEN, text)
        elif auth.security_profile >= 2 and self.ssl_context is None:
            self.stats["refused_no_tls"] += 1
            return connection.respond(HTTPStatus.FORBIDDEN, f"charger {charger_id!r} must connect over TLS\n")
        if presented is None and (refusal := await self._check_password(connection, request, charger_id, auth)):
            return refusal
        return self._check_protocol(connection, request, charger_id, auth)

    async def _admit_certificate(self, charger_id: str, presented: PresentedCertificate) -> str | None:
        """Why a verified client certificate may not open this charger's connection (None: it may)."""
        if self.certificates is None:  # pragma: no cover - the profile-3 listener needs them
            refused: str | None = "the CSMS runs no certificate authority"
        else:
            refused = await asyncio.to_thread(self.certificates.admit, charger_id, presented)
        if refused is not None:
            self.stats["refused_certificate"] += 1
            log.warning("charger[%s]: refused at the TLS client check: %s", charger_id, refused)
        return refused

    async def _check_password(
        self, connection: ServerConnection, request: Request, charger_id: str, auth: ChargerAuth
    ) -> Response | None:
        """Security profiles 1 and 2: HTTP basic auth with the charger id as user (None: accepted)."""
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

    def _check_protocol(
        self, connection: ServerConnection, request: Request, charger_id: str, auth: ChargerAuth
    ) -> Response | None:
        """The OCPP versions the charger's record allows among those it offers."""
        offered = _offered_subprotocols(request)
        allowed = [p for p in SUBPROTOCOLS if p in offered and p in auth.allowed_protocols]
        ocpp_offered = [p for p in offered if p in SUBPROTOCOLS]
        if ocpp_offered and not allowed:
            self.stats["refused_protocol"] += 1
            registered = ", ".join(sorted(auth.allowed_protocols))
            log.warning(
                "charger[%s]: refused %s: registered for %s (its record allows no other OCPP version)",
                charger_id,
                ", ".join(ocpp_offered),
                registered,
            )
            text = f"charger {charger_id!r} is registered for {registered}; {', '.join(ocpp_offered)} is not allowed\n"
            return connection.respond(HTTPStatus.BAD_REQUEST, text)
        self._allowed[connection] = allowed
        return None

    def _select_subprotocol(self, connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol:
        """The server's preferred OCPP version among those offered and allowed by the charger's record."""
        allowed = self._allowed.pop(connection, list(SUBPROTOCOLS))
        for protocol in allowed:
            if protocol in offered:
                return Subprotocol(protocol)
        msg = f"no OCPP subprotocol offered; expected one of {', '.join(allowed)}"
        raise NegotiationError(msg)

    # ------------------------------------------------------------------ sessions
    async def _handle(self, connection: ServerConnection) -> None:
        protocol = connection.subprotocol
        charger_id = unquote(connection.request.path.split("?", 1)[0].strip("/").split("/")[1])  # type: ignore[union-attr]
        if protocol not in SUBPROTOCOLS:
            await connection.close(1002, "no OCPP subprotocol negotiated")
            return
        session = self._new_session(str(protocol), charger_id, connection)
        session.client_certificate = self._presented.pop(connection, None)
        previous = self.sessions.get(charger_id)
        if previous is not None:
            self.stats["replaced_connections"] += 1
            await previous.disconnect("replaced by a newer connection")
        self.sessions[charger_id] = session
        await self.supervisor.connected(charger_id, str(protocol))
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
                    await self.supervisor.disconnected(charger_id)
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

    # ------------------------------------------------------------------ events -> the supervisor
    async def booted(self, session: CsmsSession, firmware_version: str | None) -> None:
        """After an accepted BootNotification (called from the version's ``@after`` hook)."""
        await self.supervisor.booted(session, firmware_version)
        await self._renew_if_due(session)

    async def resync(self, session: CsmsSession) -> None:
        """Bring a (re)connected charger up to date (the first CALL of a connection without a boot)."""
        await self.supervisor.resync(session)
        await self._renew_if_due(session)

    # ------------------------------------------------------------------ security profile 3
    async def check_csr(self, session: CsmsSession, csr: str, certificate_type: str) -> None:
        """SignCertificate: refuse a CSR the platform will not sign (raises CertificateRequestError)."""
        if self.certificates is None:
            raise CertificateRequestError(CsrRefusal.NO_CA, "the CSMS runs no certificate authority")
        await asyncio.to_thread(self.certificates.check_request, session.id, csr, certificate_type)

    def certificate_requested(self, session: CsmsSession, csr: str) -> None:
        """After an accepted SignCertificate: sign it and send CertificateSigned in the background."""
        if self.certificates is not None:
            self.spawn(self._sign_and_install(session, csr))

    async def _sign_and_install(self, session: CsmsSession, csr: str) -> None:
        assert self.certificates is not None
        result = await self.certificates.sign_and_install(session, csr)
        self.stats[f"certificate_signed_{result.status}"] += 1

    async def request_certificate_renewal(self, session: CsmsSession) -> CommandResult:
        """CSMS-initiated renewal: ask the charger for a SignCertificate."""
        if self.certificates is None:
            return CommandResult("unsupported", "the CSMS runs no certificate authority")
        session.renewal_requested = True
        return await self.certificates.request_renewal(session)

    async def _renew_if_due(self, session: CsmsSession) -> None:
        presented = session.client_certificate
        if self.certificates is None or presented is None or session.renewal_requested:
            return
        if self.certificates.renewal_due(presented):
            self.stats["certificate_renewals_requested"] += 1
            await self.request_certificate_renewal(session)

    async def needs_received(self, session: CsmsSession, needs: ChargingNeeds) -> None:
        await self.supervisor.needs_received(session, needs)

    async def authorize(self, session: CsmsSession, id_token: str) -> str:
        return (await self.supervisor.authorize(session.id, id_token)).value

    async def notice(self, session: CsmsSession, notice: ChargerNotice) -> None:
        await self.supervisor.notice(notice)

    async def charging_limit(self, session: CsmsSession, limit: ChargingLimit) -> None:
        await self.supervisor.charging_limit(limit)

    async def install_plan(self, session: CsmsSession, plan: ProfilePlan, purpose: str) -> CommandResult:
        """Send a plan as the charger's plan profile and record the answer."""
        return await self.supervisor.install_plan(session, plan, purpose)

    async def send_test_profile(self, session: CsmsSession) -> str:
        """The installation-stage test profile (also sent automatically after first boot)."""
        return await self.supervisor.send_test_profile(session)

    async def enforce_deactivation(self) -> list[str]:
        """Remote deactivation of live chargers marked inactive; returns the charger ids handled."""
        return await self.supervisor.enforce_deactivation()

    # ------------------------------------------------------------------ liveness
    async def _liveness_job(self) -> None:
        interval = max(1.0, self.config.heartbeat_interval_s / 2)
        while True:
            await asyncio.sleep(interval)
            await self.supervisor.liveness_tick()


def _is_tls(connection: ServerConnection) -> bool:
    return connection.transport.get_extra_info("ssl_object") is not None


def _presented_certificate(connection: ServerConnection) -> PresentedCertificate | None:
    """The client certificate of the TLS handshake, when one was presented and verified."""
    ssl_object = connection.transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    info = ssl_object.getpeercert()  # filled only when the certificate was verified against the CA
    if not der or not info:
        return None
    names = [value for rdn in info.get("subject", ()) for key, value in rdn if key == "commonName"]
    not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(info["notAfter"]), UTC)
    return PresentedCertificate(
        common_name=names[0] if len(names) == 1 else None,
        serial_hex=normalise_serial(str(info["serialNumber"])),
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        not_after=not_after,
    )


def _offered_subprotocols(request: Request) -> list[str]:
    values = request.headers.get_all("Sec-WebSocket-Protocol")
    return [p.strip() for value in values for p in value.split(",") if p.strip()]


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else (user, None)
