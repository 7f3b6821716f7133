"""What every OCPP version's CSMS session shares: frame checks, exactly-once replies, commands.

A session is one ``ocpp`` ``ChargePoint`` per WebSocket connection. The version packages
(``v16``, ``v201``, ``v21``) subclass :class:`CsmsSession` together with the library's
``ChargePoint`` of their version and translate messages into the platform's events
(:mod:`v2g.devices`) and the platform's profile plans into messages. A session talks to its
server only through the small :class:`SessionHost` protocol, and is itself the
:class:`~v2g.services.devices.ports.ChargerLink` the device supervisor commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import math
import re
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from ocpp.exceptions import FormatViolationError, OCPPError, PropertyConstraintViolationError
from ocpp.routing import after as _after
from ocpp.routing import on as _on

from v2g.compat.ocpp_logging import FrameLogger
from v2g.devices import (
    DEFAULT_PROFILE_ID,
    DEFAULT_STACK,
    FREQUENCY_PROFILE_ID,
    FREQUENCY_STACK,
    PLAN_PROFILE_ID,
    PLAN_STACK,
    SETPOINT_PROFILE_ID,
    SETPOINT_STACK,
    TEST_PROFILE_ID,
    TEST_STACK,
    CertificateRequestError,
    ChargerNotice,
    ChargingLimit,
    ChargingNeeds,
    CommandResult,
    FrequencyCurvePoint,
    MeterSample,
    PresentedCertificate,
    ProfileKind,
    ProfilePlan,
    TransactionEventIn,
    profile_kind,
)
from v2g.fleet.model import ChargerProtocol
from v2g.services.clock import Clock
from v2g.services.devices.ports import DeviceStore

log = logging.getLogger("v2g.ocpp")

F = TypeVar("F", bound=Callable[..., Any])


class InvalidValueError(ValueError):
    """A field of a charger's message that is well-formed but not a usable value (e.g. not finite)."""


def _refusal(action: str, exc: Exception) -> OCPPError:
    """The CALLERROR for a message the translator cannot read: the charger's mistake, named."""
    cause = f"{action}: {exc}"[:200]
    if isinstance(exc, InvalidValueError | ArithmeticError):
        return PropertyConstraintViolationError(details={"cause": cause})
    return FormatViolationError(details={"cause": cause})


def on(action: str, *, skip_schema_validation: bool = False) -> Callable[[F], F]:
    """Typed wrapper of ``ocpp.routing.on``: the handler answering a CALL ``action``.

    A value the translator cannot read (a timestamp without offset, a non-finite reading) is
    answered with FormatViolation / PropertyConstraintViolation, never InternalError; nothing of
    the message is stored then.
    """

    def decorate(handler: F) -> F:
        async def finish(pending: Awaitable[Any]) -> Any:
            try:
                return await pending
            except TRANSLATION_ERRORS as exc:
                raise _refusal(action, exc) from exc

        @functools.wraps(handler)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                result = handler(*args, **kwargs)
            except TRANSLATION_ERRORS as exc:
                raise _refusal(action, exc) from exc
            return finish(result) if inspect.isawaitable(result) else result

        return cast("F", _on(action, skip_schema_validation=skip_schema_validation)(guarded))

    return decorate


TRANSLATION_ERRORS = (ValueError, TypeError, KeyError, ArithmeticError)


def after(action: str) -> Callable[[F], F]:
    """Typed wrapper of ``ocpp.routing.after``: runs once the reply to ``action`` was sent."""
    return cast("Callable[[F], F]", _after(action))


REPLY_CACHE_SIZE = 256

__all__ = [
    "DEFAULT_PROFILE_ID",
    "DEFAULT_STACK",
    "FREQUENCY_PROFILE_ID",
    "FREQUENCY_STACK",
    "PLAN_PROFILE_ID",
    "PLAN_STACK",
    "SETPOINT_PROFILE_ID",
    "SETPOINT_STACK",
    "TEST_PROFILE_ID",
    "TEST_STACK",
    "CommandResult",
    "CsmsSession",
    "InvalidValueError",
    "SessionHost",
    "after",
    "finite",
    "on",
    "parse_measured_at",
    "status_of",
]


class TelemetrySink(Protocol):
    """Where sessions submit telemetry (the group-commit writer)."""

    async def submit(self, samples: Sequence[MeterSample], events: Sequence[TransactionEventIn] = ()) -> None: ...


class HostConfig(Protocol):
    """The settings a session reads."""

    @property
    def heartbeat_interval_s(self) -> int: ...

    @property
    def validate_outbound(self) -> bool: ...


class SessionHost(Protocol):
    """What a session needs from the server that accepted it (the CSMS in production)."""

    @property
    def config(self) -> HostConfig: ...

    @property
    def store(self) -> DeviceStore: ...

    @property
    def writer(self) -> TelemetrySink: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def stats(self) -> defaultdict[str, int]: ...

    def touch(self, charger_id: str) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...

    async def booted(self, session: CsmsSession, firmware_version: str | None) -> None: ...

    async def resync(self, session: CsmsSession) -> None: ...

    async def needs_received(self, session: CsmsSession, needs: ChargingNeeds) -> None: ...

    async def notice(self, session: CsmsSession, notice: ChargerNotice) -> None: ...

    async def authorize(self, session: CsmsSession, id_token: str) -> str: ...

    async def charging_limit(self, session: CsmsSession, limit: ChargingLimit) -> None: ...

    async def check_csr(self, session: CsmsSession, csr: str, certificate_type: str) -> None: ...

    def certificate_requested(self, session: CsmsSession, csr: str) -> None: ...


_MAYBE_NON_FINITE = re.compile(r"NaN|Infinity|[eE]\+?\d{3}")


def _all_finite(value: Any) -> bool:
    """No NaN or infinite number anywhere in a decoded payload."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    return True


def finite(value: float, field: str) -> float:
    """``value`` if it is a finite number, else the charger's mistake (PropertyConstraintViolation)."""
    if not math.isfinite(value):
        msg = f"{field}: {value!r} is not a finite number"
        raise InvalidValueError(msg)
    return value


def call_fingerprint(action: str, payload: Any) -> str:
    """What makes two CALLs the same message: the action and the payload (key order ignored)."""
    return action + "\x00" + json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_measured_at(text: str | None, fallback: datetime) -> datetime:
    """An OCPP timestamp as aware UTC (``Z`` accepted); the receive time when absent."""
    if not text:
        return fallback
    from v2g.units import parse_utc

    return parse_utc(text, field="timestamp")


class CsmsSession:
    """Version-independent part of a CSMS-side connection (mixed into the library's ChargePoint)."""

    protocol: str = ""
    format_error_code: str = "FormatViolation"
    message_type_error_code: str = "ProtocolError"
    error_code_aliases: dict[str, str] = {}  # noqa: RUF012  (the library's error code -> this version's)
    id: str
    _connection: Any
    _response_timeout: float

    def __init__(self, charger_id: str, connection: Any, server: SessionHost, *, response_timeout: float) -> None:
        super().__init__(  # type: ignore[call-arg]
            charger_id, connection, response_timeout=response_timeout, logger=FrameLogger(charger_id)
        )
        self.server = server
        self.booted = False
        self.synced = False
        self.discharge_supported = False
        # replies to this connection's recent CALLs: message id -> (action and payload, reply frame)
        self.replies: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._current: tuple[str, str] | None = None
        self.duplicates = 0
        self.rejected_frames = 0
        # security profile 3: the client certificate of this connection, and whether renewal was asked for
        self.client_certificate: PresentedCertificate | None = None
        self.renewal_requested = False
        self._accepted_csrs: set[str] = set()
        self._ev_connected_write: asyncio.Task[None] | None = None

    def record_ev_connected(self, connected: bool) -> None:
        """Store whether an EV is plugged in, in the order the charger reported it.

        The write runs in the background (the reply is not held up by the database), each one after
        the previous one of this charger, so a late "Available" never overwrites a newer "Occupied".
        """
        previous = self._ev_connected_write

        async def write() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            await asyncio.to_thread(self.server.store.set_ev_connected, self.id, connected)

        task = asyncio.ensure_future(write())
        self._ev_connected_write = task
        self.server.spawn(_follow(task))

    async def call(
        self,
        payload: Any,
        suppress: bool = True,
        unique_id: str | None = None,
        skip_schema_validation: bool | None = None,
    ) -> Any:
        """The library's ``call``; the platform's own requests skip schema validation unless configured.

        Inbound CALLs are always validated. Outbound requests are built by the translators and are
        validated by the simulator's charge points in the interop tests; skipping the check on the
        hot path halves the CPU cost of a setpoint fan-out.
        """
        skip = (not self.server.config.validate_outbound) if skip_schema_validation is None else skip_schema_validation
        return await super().call(payload, suppress, unique_id, skip)  # type: ignore[misc]

    # ------------------------------------------------------------------ inbound frames
    async def route_message(self, raw_msg: str | bytes) -> None:
        """Check the frame, answer repeats from this connection's reply cache, then let the library route it.

        A repeat is a CALL with the message id, action and payload of one already answered on
        this connection; OCPP-J ids are unique only within a connection and chargers restart
        their counters after a reboot, so the cache lives and dies with the connection, and an
        id reused for another message is processed as the new message it is.
        """
        self.server.touch(self.id)
        try:
            msg = json.loads(raw_msg)
        except (ValueError, UnicodeDecodeError):
            await self._reject("-1", self.format_error_code, "Message is not valid JSON")
            return
        if not isinstance(msg, list) or len(msg) < 3 or not isinstance(msg[0], int) or isinstance(msg[0], bool):
            uid = msg[1] if isinstance(msg, list) and len(msg) > 1 and isinstance(msg[1], str) else "-1"
            await self._reject(uid, "ProtocolError", "Frame must be a JSON array [MessageTypeId, MessageId, ...]")
            return
        if not isinstance(msg[1], str) or not msg[1] or len(msg[1]) > 36:
            await self._reject("-1", "ProtocolError", "MessageId must be a non-empty string of at most 36 characters")
            return
        uid = msg[1]
        if msg[0] == 2:
            if len(msg) != 4 or not isinstance(msg[2], str):
                await self._reject(uid, "ProtocolError", "CALL must be [2, MessageId, Action, Payload]")
                return
            if not isinstance(msg[3], dict):
                await self._reject(uid, self.format_error_code, "CALL payload must be a JSON object")
                return
            text = raw_msg if isinstance(raw_msg, str) else raw_msg.decode("utf-8", "replace")
            if _MAYBE_NON_FINITE.search(text) and not _all_finite(msg[3]):
                await self._reject(uid, "PropertyConstraintViolation", "numbers must be finite (no NaN, Infinity)")
                return
            if msg[2] not in self.route_map:  # type: ignore[attr-defined]
                # answered here for every version: ocpp 2.1.0 sends no reply at all for 2.1
                # OCPP-J: NotImplemented = the action is not known, NotSupported = known but not supported
                known = hasattr(self._call, msg[2])  # type: ignore[attr-defined]
                code = "NotSupported" if known else "NotImplemented"
                why = "not supported by this CSMS" if known else f"not an action of {self.protocol}"
                await self._reject(uid, code, f"{msg[2]} is {why}")
                return
            fingerprint = call_fingerprint(msg[2], msg[3])
            cached = self.replies.get(uid)
            if cached is not None and cached[0] == fingerprint:
                self.duplicates += 1
                self.server.stats["duplicate_calls"] += 1
                await self._connection.send(cached[1])
                return
            self.replies.pop(uid, None)  # a reused id with another message is a new message
            self._current = (uid, fingerprint)
            try:
                await super().route_message(raw_msg)  # type: ignore[misc]
            finally:
                self._current = None
            if not self.synced:
                self.synced = True  # a BootNotification re-syncs from its own @after hook
                if msg[2] != "BootNotification":
                    self.server.spawn(self.server.resync(self))
            return
        if msg[0] in (3, 4):
            await super().route_message(raw_msg)  # type: ignore[misc]
            return
        if not await self.handle_other_message_type(msg):
            await self._reject(uid, self.message_type_error_code, f"MessageTypeId {msg[0]} is not supported")

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        """The platform implements no vendor extensions: every vendorId is unknown (a reply, not an error)."""
        log.debug("charger[%s]: DataTransfer for vendor %r answered UnknownVendorId", self.id, vendor_id)
        return self._call_result.DataTransfer(status="UnknownVendorId")  # type: ignore[attr-defined]

    def now(self) -> datetime:
        """The current time, from the server's clock."""
        return self.server.clock.now()

    async def disconnect(self, reason: str, code: int = 1000) -> None:
        """Close the connection (1000 normal, 1001 going away)."""
        await self._connection.close(code, reason)

    async def handle_other_message_type(self, msg: list[Any]) -> bool:
        """Version hook for message types beyond CALL/CALLRESULT/CALLERROR (OCPP 2.1 SEND)."""
        return False

    async def _reject(self, uid: str, code: str, description: str) -> None:
        self.rejected_frames += 1
        self.server.stats["rejected_frames"] += 1
        log.warning("charger[%s]: frame rejected (%s): %s", self.id, code, description)
        await self._connection.send(json.dumps([4, uid, code, description, {}]))

    async def _send(self, message: str) -> None:
        if message[:2] == "[4" and self.error_code_aliases:
            message = self._version_error_code(message)
        current = self._current
        if current is not None and message[:2] in ("[3", "[4"):
            uid, fingerprint = current
            self.replies[uid] = (fingerprint, message)
            while len(self.replies) > REPLY_CACHE_SIZE:
                self.replies.popitem(last=False)
        await self._connection.send(message)

    def _version_error_code(self, message: str) -> str:
        """A CALLERROR with the error code under this version's name (the library uses the 2.x names)."""
        frame = json.loads(message)
        code = self.error_code_aliases.get(frame[2]) if len(frame) > 2 and isinstance(frame[2], str) else None
        if code is None:
            return message
        frame[2] = code
        return json.dumps(frame, separators=(",", ":"))

    # ------------------------------------------------------------------ helpers for translators
    def sample(
        self,
        *,
        evse_id: int,
        measurand: str,
        measured_at: datetime,
        value: float,
        unit: str,
        transaction_id: str | None = None,
        context: str | None = None,
    ) -> MeterSample:
        return MeterSample(self.id, evse_id, measurand, measured_at, value, unit, transaction_id, context)

    async def submit(self, samples: Sequence[MeterSample], events: Sequence[TransactionEventIn] = ()) -> None:
        """Store telemetry durably before the reply goes out (group commit with other chargers)."""
        if samples or events:
            await self.server.writer.submit(samples, events)

    async def needs_received(self, needs: ChargingNeeds) -> None:
        await self.server.needs_received(self, needs)

    async def authorize(self, id_token: str) -> str:
        """The platform's decision on an idToken, as an OCPP 2.x AuthorizationStatus name."""
        return await self.server.authorize(self, id_token)

    async def notice(self, kind: str, summary: str, payload: dict[str, Any], occurred_at: str | None = None) -> None:
        """Hand a charger's report to the platform (stored before the reply goes out)."""
        at = self.now()
        if occurred_at:
            with contextlib.suppress(ValueError):  # the receive time stands in for an unreadable timestamp
                at = parse_measured_at(occurred_at, at)
        await self.server.notice(self, ChargerNotice(self.id, kind, at, summary, payload))

    # ------------------------------------------------------------------ commands (per version)
    async def install_plan(self, plan: ProfilePlan, *, profile_id: int, stack_level: int) -> CommandResult:
        raise NotImplementedError

    async def install_default(self, p_kw: float) -> CommandResult:
        raise NotImplementedError

    async def apply_setpoint(self, p_kw: float, valid_to: datetime, max_charge_kw: float) -> CommandResult:
        raise NotImplementedError

    async def frequency_curve(self, curve: Sequence[FrequencyCurvePoint], valid_to: datetime | None) -> CommandResult:
        return CommandResult("unsupported", f"{self.protocol} has no local frequency mode")

    async def clear_profiles(self, profile_id: int | None = None) -> CommandResult:
        raise NotImplementedError

    async def set_available(self, available: bool) -> CommandResult:
        raise NotImplementedError

    async def reset(self, hard: bool = False) -> CommandResult:
        raise NotImplementedError

    async def trigger(self, message: str) -> CommandResult:
        raise NotImplementedError

    async def composite_schedule(self, duration_s: int) -> dict[str, Any] | None:
        raise NotImplementedError

    async def get_variable(self, component: str, variable: str) -> str | None:
        raise NotImplementedError

    async def set_variable(self, component: str, variable: str, value: str) -> CommandResult:
        raise NotImplementedError

    async def read_discharge_support(self) -> bool:
        """Whether the charger declares discharge support (the device model, 2.x only)."""
        return False

    async def install_certificate(self, chain_pem: str) -> CommandResult:
        """CertificateSigned: the charger's new client certificate chain (security profile 3)."""
        raise NotImplementedError

    async def request_certificate(self) -> CommandResult:
        """Ask the charger to send SignCertificate for a new key pair (certificate renewal)."""
        raise NotImplementedError

    async def sign_certificate(self, csr: str, certificate_type: str) -> tuple[bool, str, str]:
        """Check a charger's SignCertificate: (accepted, reason code, detail); the notice is stored."""
        try:
            await self.server.check_csr(self, csr, certificate_type)
        except CertificateRequestError as exc:
            summary = f"{certificate_type} signing request rejected ({exc.reason.value}): {exc.detail}"
            log.warning("charger[%s]: %s", self.id, summary)
            payload = {"certificate_type": certificate_type, "reason_code": exc.reason.value, "detail": exc.detail}
            await self.notice("SignCertificate", summary, payload)
            return False, exc.reason.value, exc.detail
        payload = {"certificate_type": certificate_type}
        await self.notice("SignCertificate", f"{certificate_type} signing request accepted", payload)
        self._accepted_csrs.add(csr)
        return True, "", ""

    def certificate_request_answered(self, csr: str) -> None:
        """From the ``@after`` hook of SignCertificate: an accepted request is signed and sent back."""
        if csr in self._accepted_csrs:
            self._accepted_csrs.discard(csr)
            self.server.certificate_requested(self, csr)

    def plan_kind(self) -> ProfileKind:
        return profile_kind(ChargerProtocol(self.protocol), self.discharge_supported)


def status_of(response: Any) -> CommandResult:
    """The OCPP ``status`` of a response, lower-cased, with any reason text."""
    status = str(getattr(response, "status", "unknown"))
    info = getattr(response, "status_info", None)
    detail = ""
    if isinstance(info, dict):
        detail = " ".join(str(v) for v in (info.get("reason_code"), info.get("additional_info")) if v)
    return CommandResult(status.lower(), detail)


async def _follow(task: asyncio.Task[None]) -> None:
    """Await a background write (so the server keeps a reference and logs its failure)."""
    await task
