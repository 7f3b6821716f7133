"""Several CSMS workers behind one port: the charger registry and command routing over NATS.

Each worker process runs a :class:`~v2g.adapters.ocpp.server.CsmsServer` bound with
``SO_REUSEPORT`` on the same port, so the kernel spreads charger connections over the workers. A
:class:`CsmsWorkerNode` next to each server

* records in the NATS key-value bucket ``v2g_csms_chargers`` which worker holds which charger
  (written on connect, removed on disconnect only if the entry is still this worker's), and
* answers command batches on the subject ``v2g.csms.worker.<worker_id>`` by running them through
  its local :class:`~v2g.adapters.ocpp.gateway.OcppChargerGateway`, replying with every ``Ack``.

:class:`RoutedChargerGateway` is the ``ChargerGateway`` the platform uses then: it watches the
bucket, groups a command batch by worker and sends ONE request per worker (split only to stay
under the NATS payload limit), so a fan-out to 5,000 chargers is two routed messages with two
workers. A charger that is in no worker's registry entry, or whose worker does not answer (it died:
NATS reports no responders at once), answers ``offline``. The gateway keeps the latest schedule of
every charger and sends it again when the charger shows up at another worker, as the single
worker re-sends its plan on reconnect.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from v2g.adapters.ocpp.gateway import OcppChargerGateway
from v2g.adapters.ocpp.server import CsmsServer
from v2g.devices import Ack, AckStatus, FrequencyCurvePoint, Setpoint
from v2g.fleet.schedule import PowerSchedule
from v2g.services.clock import Clock, SystemClock

log = logging.getLogger("v2g.ocpp.routing")

DEFAULT_NAMESPACE = "v2g"  # subjects ``<ns>.csms.worker.<id>``, bucket ``<ns>_csms_chargers``
MAX_ITEMS_PER_MESSAGE = 500  # a 96-interval schedule is about 1 kB: stays under NATS' 1 MB payload limit
T = TypeVar("T")
_PLAIN_KEY = re.compile(r"[-_A-Za-z0-9]+")


class RoutingError(Exception):
    """A routed command batch that cannot be understood (names the field and why)."""


def registry_key(charger_id: str) -> str:
    """NATS KV keys allow ``[-/_=.a-zA-Z0-9]``: other charger ids are stored base64url-encoded."""
    if _PLAIN_KEY.fullmatch(charger_id):
        return charger_id
    return "b64." + base64.urlsafe_b64encode(charger_id.encode()).decode().rstrip("=")


def worker_subject(worker_id: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    return f"{namespace}.csms.worker.{worker_id}"


def events_subject(namespace: str = DEFAULT_NAMESPACE) -> str:
    """Device events (``boot``, ``test_profile_accepted``) from every worker to the platform."""
    return f"{namespace}.csms.events"


def registry_bucket(namespace: str = DEFAULT_NAMESPACE) -> str:
    return f"{namespace}_csms_chargers"


async def registry(nc: Client, namespace: str = DEFAULT_NAMESPACE) -> KeyValue:
    """The charger -> worker bucket (created on first use, one revision per key)."""
    js = nc.jetstream()
    bucket = registry_bucket(namespace)
    try:
        return await js.key_value(bucket)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(KeyValueConfig(bucket=bucket, history=1))


# ---------------------------------------------------------------------------- wire format
def schedule_to_json(schedule: PowerSchedule) -> dict[str, Any]:
    return {
        "ev_id": schedule.ev_id,
        "start_at": schedule.start_at.isoformat(),
        "p_kw": list(schedule.p_kw),
        "step_s": schedule.step.total_seconds(),
        "charger_id": schedule.charger_id,
    }


def schedule_from_json(raw: dict[str, Any]) -> PowerSchedule:
    return PowerSchedule(
        ev_id=str(raw["ev_id"]),
        start_at=datetime.fromisoformat(raw["start_at"]),
        p_kw=tuple(float(x) for x in raw["p_kw"]),
        step=timedelta(seconds=float(raw["step_s"])),
        charger_id=raw.get("charger_id"),
    )


def _ack_to_json(ack: Ack) -> list[str]:
    return [ack.charger_id, ack.status.value, ack.detail]


def _ack_from_json(raw: Any) -> Ack:
    return Ack(str(raw[0]), AckStatus(raw[1]), str(raw[2]))


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _dt(raw: Any) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


def _parse(index: int, item: Any, op: str, build: Callable[[Any], T]) -> T:
    try:
        return build(item)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        msg = f"items[{index}]: not a valid {op} item ({type(exc).__name__}: {exc})"
        raise RoutingError(msg) from exc


# ---------------------------------------------------------------------------- worker side
class CsmsWorkerNode:
    """One CSMS worker's presence in the registry and its command endpoint."""

    def __init__(self, server: CsmsServer, nc: Client, worker_id: str, *, namespace: str = DEFAULT_NAMESPACE) -> None:
        if not _PLAIN_KEY.fullmatch(worker_id):
            msg = f"worker_id: {worker_id!r} must be letters, digits, '-' or '_'"
            raise ValueError(msg)
        self.server = server
        self.nc = nc
        self.worker_id = worker_id
        self.namespace = namespace
        self.gateway = OcppChargerGateway(server)
        self.requests = 0  # routed batches answered
        self._kv: KeyValue | None = None
        self._sub: Any = None

    async def start(self) -> None:
        self._kv = await registry(self.nc, self.namespace)
        self.server.on_connection.append(self._connection)
        loop = asyncio.get_running_loop()
        subject = events_subject(self.namespace)

        def forward(charger_id: str, kind: str, detail: str) -> None:  # runs in a thread (CsmsServer.device_event)
            event = json.dumps({"charger_id": charger_id, "kind": kind, "detail": detail, "worker": self.worker_id})
            asyncio.run_coroutine_threadsafe(self.nc.publish(subject, event.encode()), loop).result(timeout=10)

        self.server.on_device_event.append(forward)
        self._sub = await self.nc.subscribe(worker_subject(self.worker_id, self.namespace), cb=self._on_request)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _connection(self, charger_id: str, online: bool) -> None:
        assert self._kv is not None
        key = registry_key(charger_id)
        if online:
            await self._kv.put(key, json.dumps({"charger_id": charger_id, "worker": self.worker_id}).encode())
            return
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return
        if entry.value and json.loads(entry.value).get("worker") == self.worker_id:
            # only if still ours: the charger may already be connected to another worker
            with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
                await self._kv.delete(key, last=entry.revision)

    async def _on_request(self, msg: Msg) -> None:
        self.requests += 1
        try:
            request = json.loads(msg.data)
            if not isinstance(request, dict):
                msg_0 = "request: must be a JSON object"
                raise RoutingError(msg_0)
            reply = await self.handle(request)
        except (RoutingError, ValueError) as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:  # the caller must get an answer, never a silent timeout
            log.exception("worker %s: routed batch failed", self.worker_id)
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        await msg.respond(json.dumps(reply).encode())

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one routed batch through the local gateway; answer with the acks (or the status)."""
        op = request.get("op")
        items = request.get("items", [])
        if not isinstance(items, list):
            msg = "items: must be a list"
            raise RoutingError(msg)
        gateway = self.gateway
        if op == "setpoints":
            sps = [_parse(n, i, op, lambda i: Setpoint(str(i[0]), float(i[1]), _dt(i[2]))) for n, i in enumerate(items)]
            acks = await gateway.send_setpoints(sps)
        elif op == "schedules":
            acks = await gateway.send_schedules([_parse(n, i, op, schedule_from_json) for n, i in enumerate(items)])
        elif op == "frequency_curve":
            curves = [
                _parse(
                    n,
                    i,
                    op,
                    lambda i: (
                        str(i["charger_id"]),
                        [FrequencyCurvePoint(float(f), float(p)) for f, p in i["curve"]],
                        _dt(i.get("valid_until")),
                    ),
                )
                for n, i in enumerate(items)
            ]
            acks = list(await asyncio.gather(*(gateway.configure_frequency_curve(*c) for c in curves)))
        elif op == "deactivate":
            acks = list(await asyncio.gather(*(gateway.deactivate(str(cid)) for cid in items)))
        elif op == "test_profile":
            acks = list(await asyncio.gather(*(gateway.test_profile(str(cid)) for cid in items)))
        elif op == "status":
            return self.status()
        else:
            msg = f"op: unknown operation {op!r}"
            raise RoutingError(msg)
        return {"acks": [_ack_to_json(a) for a in acks]}

    def status(self) -> dict[str, Any]:
        import time

        server = self.server
        return {
            "worker": self.worker_id,
            "sessions": len(server.sessions),
            "booted": sum(1 for s in server.sessions.values() if s.booted),
            "pending_tasks": len(server._tasks),
            "cpu_s": time.process_time(),
            "telemetry_rows_stored": server.writer.totals["samples_stored"],
            "telemetry_batches": server.writer.batches,
        }


# ---------------------------------------------------------------------------- platform side
class RoutedChargerGateway:
    """``ChargerGateway`` over several CSMS workers: one routed request per worker and batch."""

    def __init__(
        self, nc: Client, *, timeout_s: float = 30.0, namespace: str = DEFAULT_NAMESPACE, clock: Clock | None = None
    ) -> None:
        self.nc = nc
        self.namespace = namespace
        self.clock: Clock = clock or SystemClock()
        self._key_to_charger: dict[str, str] = {}
        self.timeout_s = timeout_s
        self.where: dict[str, str] = {}  # charger_id -> worker_id, mirrored from the registry bucket
        self.schedules: dict[str, PowerSchedule] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        # (charger_id, kind, detail) forwarded from the workers; callbacks run in a worker thread
        self.on_device_event: list[Callable[[str, str, str], Any]] = []

    @classmethod
    async def connect(
        cls, url: str, *, timeout_s: float = 30.0, namespace: str = DEFAULT_NAMESPACE
    ) -> RoutedChargerGateway:
        nc = await nats.connect(url, name="v2g-platform", max_reconnect_attempts=-1)
        gateway = cls(nc, timeout_s=timeout_s, namespace=namespace)
        await gateway.start()
        return gateway

    async def start(self) -> None:
        kv = await registry(self.nc, self.namespace)
        watcher = await kv.watchall()
        self._watch_task = asyncio.create_task(self._watch(watcher), name="csms-registry-watch")
        await self.nc.subscribe(events_subject(self.namespace), cb=self._on_event)
        await asyncio.wait_for(self._synced.wait(), timeout=self.timeout_s)

    async def close(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.nc.drain()

    async def _watch(self, watcher: Any) -> None:
        while True:
            try:
                entry = await watcher.updates(timeout=3600)
            except nats.errors.TimeoutError:
                continue
            if entry is None:  # the end of the initial values
                self._synced.set()
                continue
            if entry.operation in ("DEL", "PURGE") or not entry.value:
                gone = self._key_to_charger.pop(entry.key, None)
                if gone is not None:
                    self.where.pop(gone, None)
            else:
                raw = json.loads(entry.value)
                cid, worker = str(raw["charger_id"]), str(raw["worker"])
                moved = self.where.get(cid) != worker
                self.where[cid] = worker
                self._key_to_charger[entry.key] = cid
                schedule = self.schedules.get(cid)
                if moved and schedule is not None:  # a new connection: bring it the current plan
                    self._spawn(self._resend(schedule))
            self._changed.set()

    async def _on_event(self, msg: Msg) -> None:
        try:
            event = json.loads(msg.data)
            args = (str(event["charger_id"]), str(event["kind"]), str(event["detail"]))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("device event dropped: %s: %r", exc, msg.data[:200])
            return
        for callback in self.on_device_event:
            try:
                await asyncio.to_thread(callback, *args)
            except Exception:
                log.exception("charger[%s]: device event %s not delivered", args[0], args[1])

    async def _resend(self, schedule: PowerSchedule) -> None:
        if schedule.end_at > self.clock.now():
            await self._route("schedules", [(schedule.charger_id or "", schedule_to_json(schedule))])

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_registered(self, charger_ids: Sequence[str], timeout_s: float = 30.0) -> None:
        """Until every charger id is held by some worker (tests, benchmarks, start-up)."""

        async def until() -> None:
            while any(cid not in self.where for cid in charger_ids):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout=timeout_s)

    async def wait_count(self, n: int, timeout_s: float = 30.0) -> None:
        """Until at least ``n`` chargers are held by some worker."""

        async def until() -> None:
            while len(self.where) < n:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout=timeout_s)

    async def _route(self, op: str, items: Sequence[tuple[str, Any]]) -> list[Ack]:
        """Group by worker, one request per worker (chunked under the payload limit); acks in input order."""
        by_worker: defaultdict[str, list[int]] = defaultdict(list)
        acks: list[Ack | None] = [None] * len(items)
        for index, (cid, _) in enumerate(items):
            worker = self.where.get(cid)
            if worker is None:
                acks[index] = Ack(cid, AckStatus.OFFLINE, "no live connection at any CSMS worker")
            else:
                by_worker[worker].append(index)

        async def ask(worker: str, indexes: list[int]) -> None:
            payload = json.dumps({"op": op, "items": [items[i][1] for i in indexes]}).encode()
            try:
                reply = await self.nc.request(worker_subject(worker, self.namespace), payload, timeout=self.timeout_s)
                answer = json.loads(reply.data)
                if "error" in answer:
                    msg = f"worker {worker}: {answer['error']}"
                    raise RoutingError(msg)
                got = [_ack_from_json(a) for a in answer["acks"]]
                if len(got) != len(indexes):
                    msg = f"worker {worker}: {len(got)} acks for {len(indexes)} commands"
                    raise RoutingError(msg)
            except nats.errors.NoRespondersError:
                for i in indexes:
                    acks[i] = Ack(items[i][0], AckStatus.OFFLINE, f"worker {worker} is gone; waiting for reconnect")
                return
            except nats.errors.TimeoutError:
                for i in indexes:
                    acks[i] = Ack(items[i][0], AckStatus.TIMEOUT, f"worker {worker} did not answer in time")
                return
            for i, ack in zip(indexes, got, strict=True):
                acks[i] = ack

        jobs = []
        for worker, indexes in by_worker.items():
            for start in range(0, len(indexes), MAX_ITEMS_PER_MESSAGE):
                jobs.append(ask(worker, indexes[start : start + MAX_ITEMS_PER_MESSAGE]))
        await asyncio.gather(*jobs)
        return [a for a in acks if a is not None]

    # ------------------------------------------------------------------ ChargerGateway
    async def send_schedules(self, schedules: Sequence[PowerSchedule]) -> list[Ack]:
        items = []
        for schedule in schedules:
            if schedule.charger_id:
                self.schedules[schedule.charger_id] = schedule  # re-sent when the charger reconnects
            items.append((schedule.charger_id or "", schedule_to_json(schedule)))
        acks = await self._route("schedules", items)
        return [
            Ack(a.charger_id, a.status, "no live connection; the plan is sent on reconnect")
            if a.status is AckStatus.OFFLINE
            else a
            for a in acks
        ]

    async def send_setpoints(self, setpoints: Sequence[Setpoint]) -> list[Ack]:
        return await self._route(
            "setpoints", [(sp.charger_id, [sp.charger_id, sp.p_kw, _iso(sp.valid_until)]) for sp in setpoints]
        )

    async def configure_frequency_curve(
        self, charger_id: str, curve: Sequence[FrequencyCurvePoint], valid_until: datetime | None = None
    ) -> Ack:
        item = {
            "charger_id": charger_id,
            "curve": [[pt.frequency_hz, pt.p_kw] for pt in curve],
            "valid_until": _iso(valid_until),
        }
        [ack] = await self._route("frequency_curve", [(charger_id, item)])
        return ack

    async def deactivate(self, charger_id: str) -> Ack:
        self.schedules.pop(charger_id, None)
        [ack] = await self._route("deactivate", [(charger_id, charger_id)])
        if ack.status is AckStatus.OFFLINE:
            return Ack(charger_id, AckStatus.OFFLINE, "no live connection; refused at its next handshake")
        return ack

    async def test_profile(self, charger_id: str) -> Ack:
        [ack] = await self._route("test_profile", [(charger_id, charger_id)])
        return ack

    async def worker_status(self, worker_id: str) -> dict[str, Any]:
        """A worker's sessions, boots, pending re-syncs, CPU seconds and telemetry totals."""
        reply = await self.nc.request(
            worker_subject(worker_id, self.namespace), json.dumps({"op": "status"}).encode(), timeout=self.timeout_s
        )
        result: dict[str, Any] = json.loads(reply.data)
        return result
