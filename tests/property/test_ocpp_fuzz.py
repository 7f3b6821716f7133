"""Property-based fuzzing of OCPP frame decoding and the translators (all three versions, in process).

Whatever a charger sends, the CSMS answers every CALL with a CALLRESULT or a CALLERROR whose code
the version defines and that names the charger's mistake (never ``InternalError``), never raises,
keeps the connection usable, and stores every reading it acknowledged, with finite values only.
The examples are bounded so the suite stays fast; ``V2G_FUZZ_EXAMPLES`` raises the count.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v2g.adapters.ocpp.session import CsmsSession
from v2g.adapters.ocpp.v16 import V16Session
from v2g.adapters.ocpp.v21 import V21Session
from v2g.adapters.ocpp.v201 import V201Session
from v2g.compat import ocpp_keys, ocpp_validation
from v2g.devices import MeterSample, TransactionEventIn

EXAMPLES = int(os.environ.get("V2G_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
COMMON = {
    "NotImplemented",
    "NotSupported",
    "ProtocolError",
    "SecurityError",
    "PropertyConstraintViolation",
    "TypeConstraintViolation",
    "GenericError",
}
CODES = {
    "1.6": COMMON | {"FormationViolation", "OccurenceConstraintViolation"},
    "2.0.1": COMMON | {"FormatViolation", "OccurrenceConstraintViolation", "MessageTypeNotSupported"},
    "2.1": COMMON | {"FormatViolation", "OccurrenceConstraintViolation", "MessageTypeNotSupported"},
}
SESSIONS: dict[str, type[CsmsSession]] = {"1.6": V16Session, "2.0.1": V201Session, "2.1": V21Session}
ACTIONS = [
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "MeterValues",
    "TransactionEvent",
    "StartTransaction",
    "StopTransaction",
    "Authorize",
    "DataTransfer",
    "NotifyEVChargingNeeds",
    "NotifyChargingLimit",
    "ClearedChargingLimit",
    "NotifyReport",
    "NotifyEvent",
    "SecurityEventNotification",
    "SignCertificate",
    "Reset",
    "NoSuchAction",
]


@dataclass
class Writer:
    samples: list[MeterSample] = field(default_factory=list)
    events: list[TransactionEventIn] = field(default_factory=list)

    async def submit(self, samples: Sequence[MeterSample], events: Sequence[TransactionEventIn] = ()) -> None:
        self.samples.extend(samples)
        self.events.extend(events)


@dataclass
class Host:
    """The server side a session talks to, in memory."""

    writer: Writer = field(default_factory=Writer)
    stats: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    config: Any = field(default_factory=lambda: type("C", (), {"heartbeat_interval_s": 60, "validate_outbound": False}))
    store: Any = None

    @property
    def clock(self) -> Any:
        return type("Clock", (), {"now": staticmethod(lambda: T0)})

    def touch(self, charger_id: str) -> None:
        pass

    def spawn(self, coro: Any) -> None:
        coro.close()

    async def booted(self, session: Any, firmware_version: str | None) -> None:
        pass

    async def resync(self, session: Any) -> None:
        pass

    async def needs_received(self, session: Any, needs: Any) -> None:
        for value in vars_of(needs):
            assert not (isinstance(value, float) and not math.isfinite(value)), needs

    async def notice(self, session: Any, notice: Any) -> None:
        json.dumps(notice.payload, default=str)

    async def charging_limit(self, session: Any, limit: Any) -> None:
        value = limit.limit_kw_at(T0)
        assert value is None or math.isfinite(value), limit

    async def authorize(self, session: Any, id_token: str) -> str:
        return "Accepted"


def vars_of(obj: Any) -> list[Any]:
    return [getattr(obj, name) for name in obj.__slots__]


class Connection:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: str) -> None:
        self.sent.append(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    ocpp_keys.install()
    ocpp_validation.install()
    import ocpp.messages

    ocpp.messages.ASYNC_VALIDATION = False
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def session_for(version: str) -> tuple[CsmsSession, Connection, Host]:
    host, connection = Host(), Connection()
    session = SESSIONS[version]("CP-FUZZ", connection, host, response_timeout=1.0)  # type: ignore[arg-type]
    return session, connection, host


def exchange(loop: asyncio.AbstractEventLoop, version: str, frame: str | bytes) -> tuple[list[Any], Host]:
    """Send ``frame`` and then a Heartbeat; return the reply to the frame (if any) and the host."""
    session, connection, host = session_for(version)
    loop.run_until_complete(session.route_message(frame))
    replies = [json.loads(m) for m in connection.sent]
    connection.sent.clear()
    loop.run_until_complete(session.route_message(json.dumps([2, "hb-after", "Heartbeat", {}])))
    [heartbeat] = [json.loads(m) for m in connection.sent]
    assert heartbeat[:2] == [3, "hb-after"], "the connection must stay usable"
    assert len(replies) <= 1
    return replies, host


def check_reply(version: str, frame_uid: Any, replies: list[Any]) -> None:
    for reply in replies:
        assert isinstance(reply, list)
        assert reply[0] in (3, 4), reply
        if isinstance(frame_uid, str) and 0 < len(frame_uid) <= 36:
            assert reply[1] in (frame_uid, "-1"), reply
        if reply[0] == 4:
            assert reply[2] in CODES[version], reply  # never InternalError: the charger's mistake is named


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
versions = st.sampled_from(["1.6", "2.0.1", "2.1"])


@FUZZ
@given(version=versions, raw=st.binary(max_size=64) | st.text(max_size=64))
def test_arbitrary_bytes_and_text(loop: asyncio.AbstractEventLoop, version: str, raw: bytes | str) -> None:
    replies, _ = exchange(loop, version, raw)
    check_reply(version, None, replies)


@FUZZ
@given(version=versions, frame=st.lists(json_values, max_size=5) | json_values)
def test_arbitrary_json(loop: asyncio.AbstractEventLoop, version: str, frame: Any) -> None:
    replies, _ = exchange(loop, version, json.dumps(frame))
    uid = frame[1] if isinstance(frame, list) and len(frame) > 1 else None
    check_reply(version, uid, replies)
    if isinstance(frame, list) and frame and frame[0] == 2 and len(frame) == 4:
        assert len(replies) == 1  # every well-formed CALL gets exactly one answer


@FUZZ
@given(
    version=versions,
    uid=st.text(min_size=1, max_size=36),
    action=st.sampled_from(ACTIONS),
    payload=st.dictionaries(st.text(max_size=16), json_values, max_size=5),
)
def test_calls_with_arbitrary_payloads(
    loop: asyncio.AbstractEventLoop, version: str, uid: str, action: str, payload: dict[str, Any]
) -> None:
    replies, _ = exchange(loop, version, json.dumps([2, uid, action, payload]))
    check_reply(version, uid, replies)
    assert len(replies) == 1


timestamps = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    st.datetimes().map(lambda d: d.isoformat()),  # no offset
    st.text(max_size=30),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.just(1e308),
)


@st.composite
def meter_frames(draw: st.DrawFn, version: str) -> tuple[list[Any], int]:
    n = draw(st.integers(min_value=1, max_value=3))
    values = []
    for _ in range(n):
        value = draw(numbers)
        measurand = draw(st.sampled_from(["Energy.Active.Import.Register", "Power.Active.Import", "SoC"]))
        if version == "1.6":
            text = draw(st.sampled_from([repr(value), "NaN", "inf", "-1e999", "abc", "12.5"]))
            values.append({"value": text, "measurand": measurand})
        else:
            unit = {"unit": draw(st.sampled_from(["Wh", "W", "kWh"]))}
            if draw(st.booleans()):
                unit["multiplier"] = draw(st.integers(min_value=-400, max_value=400))
            values.append({"value": value, "measurand": measurand, "unitOfMeasure": unit})
    entry = {"timestamp": draw(timestamps), "sampledValue": values}
    key = "connectorId" if version == "1.6" else "evseId"
    return [2, "mv", "MeterValues", {key: 1, "meterValue": [entry]}], n


@FUZZ
@given(data=st.data(), version=versions)
def test_meter_values_are_acknowledged_only_when_stored_and_finite(
    loop: asyncio.AbstractEventLoop, data: st.DataObject, version: str
) -> None:
    frame, n = data.draw(meter_frames(version))
    replies, host = exchange(loop, version, json.dumps(frame))  # NaN and Infinity literals included
    check_reply(version, "mv", replies)
    [reply] = replies
    if reply[0] == 3:
        assert len(host.writer.samples) == n  # acknowledged: every reading reached the store
        for sample in host.writer.samples:
            assert math.isfinite(sample.value), sample
            assert sample.measured_at.tzinfo is not None
    else:
        assert host.writer.samples == []


@FUZZ
@given(
    version=st.sampled_from(["2.0.1", "2.1"]),
    energy=numbers,
    power=numbers,
    departure=timestamps,
    limit=numbers,
    unit=st.sampled_from(["W", "A"]),
    phases=st.integers(min_value=-3, max_value=4),
)
def test_needs_and_limits_translate_or_are_refused(
    loop: asyncio.AbstractEventLoop,
    version: str,
    energy: float,
    power: float,
    departure: str,
    limit: float,
    unit: str,
    phases: int,
) -> None:
    needs = {
        "requestedEnergyTransfer": "DC",
        "departureTime": departure,
        "dcChargingParameters": {"evMaxCurrent": 100, "evMaxVoltage": 400, "energyAmount": energy, "evMaxPower": power},
    }
    replies, _ = exchange(
        loop, version, json.dumps([2, "n", "NotifyEVChargingNeeds", {"evseId": 1, "chargingNeeds": needs}])
    )
    check_reply(version, "n", replies)
    schedule = {
        "id": 1,
        "chargingRateUnit": unit,
        "startSchedule": departure,
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit, "numberPhases": phases}],
    }
    payload = {"chargingLimit": {"chargingLimitSource": "EMS"}, "chargingSchedule": [schedule], "evseId": 1}
    replies, _ = exchange(loop, version, json.dumps([2, "l", "NotifyChargingLimit", payload]))
    check_reply(version, "l", replies)
