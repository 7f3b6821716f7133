"""OpenADR 3.0 VEN (the 3.0.1 REST API over ``httpx``): reads programs and events, reports the fleet.

One task keeps the VEN connected: it fetches an OAuth2 token (client credentials) when configured,
registers the VEN by name, subscribes to program and event changes when a webhook URL is configured
and the VTN offers subscriptions, then reads the followed programs' events every ``poll_interval``
(at once after a notification). Each event version goes to the :class:`GridEventDesk` once; events
the VTN no longer has are withdrawn. Every ``report_interval`` a report of the fleet per grid area is
queued (stored) for each event in force or asking for reports; the queue is sent oldest first.

When the VTN cannot be reached (connection refused, time-out, 5xx) the VEN waits and tries again,
doubling the wait up to ``backoff_max``; reports keep being queued meanwhile and go out when it is
back. An answer the VEN cannot use raises :class:`VtnAnswerError` naming the field, logged on
``v2g.openadr3``; a single unreadable event is refused (and audited) without stopping the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as default
from datetime import datetime, timedelta
from typing import Any

import httpx
import uvicorn

from v2g.adapters.openadr.oadr3_model import (
    SOURCE,
    VtnAnswerError,
    VtnEvent,
    VtnProgram,
    field,
    fleet_report,
    parse_event,
    parse_programs,
)
from v2g.services.planning.dso_interface import AreaAggregate
from v2g.services.planning.grid_events import EventRejectedError, GridEvent, GridEventDesk, ReportQueue

log = logging.getLogger("v2g.openadr3")
PAGE = 50


class VtnUnavailableError(ConnectionError):
    """The VTN did not answer, or answered with a server error: try again later."""


@dataclass(repr=False)
class Ven3Config:
    ven_name: str
    vtn_url: str
    served_areas: tuple[str, ...]
    default_areas: tuple[str, ...]
    programs: tuple[str, ...] = ()  # program names followed; empty: every program
    client_id: str = ""
    client_secret: str = ""
    token_url: str = ""  # default: vtn_url + /auth/token
    poll_interval: timedelta = timedelta(seconds=30)
    report_interval: timedelta = timedelta(seconds=60)
    backoff_min: timedelta = timedelta(seconds=1)
    backoff_max: timedelta = timedelta(minutes=5)
    request_timeout: timedelta = timedelta(seconds=10)
    callback_url: str = ""  # the webhook as the VTN reaches it; empty: no subscription, polling only
    callback_host: str = "127.0.0.1"
    callback_port: int = 0

    def __repr__(self) -> str:  # no client secret in logs
        return f"Ven3Config(ven_name={self.ven_name!r}, vtn_url={self.vtn_url!r}, client_id={self.client_id!r})"


@dataclass
class VenState:
    """What the VEN knows and did, for the operator and the tests."""

    connected: bool = False
    ven_id: str | None = None
    subscriptions: dict[str, str] = default(default_factory=dict)  # program id -> subscription id
    subscriptions_offered: bool = True
    programs: dict[str, VtnProgram] = default(default_factory=dict)
    events: dict[str, VtnEvent] = default(default_factory=dict)
    polls: int = 0
    notifications: int = 0
    reports_sent: int = 0
    reports_rejected: int = 0
    attempts_failed: int = 0
    last_error: str | None = None


class OpenAdr3Ven:
    """The aggregator's OpenADR 3 VEN."""

    def __init__(
        self,
        config: Ven3Config,
        desk: GridEventDesk,
        reports: ReportQueue,
        aggregates: Callable[[], Mapping[str, AreaAggregate]],
        now: Callable[[], datetime],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.desk = desk
        self.reports = reports
        self.aggregates = aggregates
        self.now = now
        self.state = VenState()
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._token: str | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._webhook: uvicorn.Server | None = None
        self._webhook_token = secrets.token_urlsafe(24)
        self.webhook_port: int | None = None

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        self._http = httpx.AsyncClient(
            base_url=self.config.vtn_url.rstrip("/"),
            timeout=self.config.request_timeout.total_seconds(),
            transport=self._transport,
        )
        if self.config.callback_url:
            await self._start_webhook()
        self._tasks = [asyncio.create_task(self._connected_loop()), asyncio.create_task(self._report_loop())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._webhook is not None:
            self._webhook.should_exit = True
            await asyncio.sleep(0)
            self._webhook = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        self.state.connected = False

    # ------------------------------------------------------------------ loops
    async def _connected_loop(self) -> None:
        wait = self.config.backoff_min
        while True:
            try:
                if not self.state.connected:
                    await self.connect()
                await self.poll_once()
                if self.config.callback_url and self.state.subscriptions_offered:
                    await self._subscribe()
                await self.flush_reports()
                wait = self.config.backoff_min
                await self._sleep_or_wake(self.config.poll_interval)
            except VtnUnavailableError as exc:
                self._lost(str(exc))
                log.warning("VTN %s unavailable (%s); next attempt in %s", self.config.vtn_url, exc, wait)
                await asyncio.sleep(wait.total_seconds())
                wait = min(wait * 2, self.config.backoff_max)
            except VtnAnswerError as exc:
                self._lost(f"unusable answer: {exc}")
                log.error("VTN %s answered wrongly: %s; next attempt in %s", self.config.vtn_url, exc, wait)
                await asyncio.sleep(wait.total_seconds())
                wait = min(wait * 2, self.config.backoff_max)

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.report_interval.total_seconds())
            try:
                queued = await asyncio.to_thread(self.queue_reports)
            except Exception:  # a report that cannot be built now is built at the next interval
                log.exception("fleet report not queued")
                continue
            if queued and self.state.connected:
                self._wake.set()

    async def _sleep_or_wake(self, interval: timedelta) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), interval.total_seconds())
        self._wake.clear()

    def _lost(self, error: str) -> None:
        self.state.connected = False
        self.state.attempts_failed += 1
        self.state.last_error = error
        self._token = None

    # ------------------------------------------------------------------ one step each
    async def connect(self) -> None:
        """Token, registration and subscription; raises :class:`VtnUnavailableError` when the VTN is away."""
        if self.config.client_id:
            await self._fetch_token()
        await self._register()
        self.state.connected = True
        self.state.last_error = None
        log.info("VEN %r connected to %s", self.config.ven_name, self.config.vtn_url)

    async def poll_once(self) -> int:
        """Read the followed programs and their events; apply new versions, withdraw vanished ones."""
        programs = parse_programs(await self._get_all("/programs"), "GET /programs")
        followed = [p for p in programs if not self.config.programs or p.name in self.config.programs]
        self.state.programs = {p.id: p for p in followed}
        seen: dict[str, VtnEvent] = {}
        changed = 0
        for program in followed:
            answer = await self._get_all("/events", {"programID": program.id})
            for k, item in enumerate(answer):
                changed += self._take_event(item, f"GET /events?programID={program.id} [{k}]", program, seen)
        for ref in sorted(set(self.desk.applied) - {e.ref for e in seen.values()}):
            if ref.startswith(f"{SOURCE}:"):
                self.desk.withdraw(ref, why="no longer at the VTN")
                changed += 1
        self.state.events = seen
        self.state.polls += 1
        return changed

    def _take_event(self, item: Any, path: str, program: VtnProgram, seen: dict[str, VtnEvent]) -> int:
        now = self.now()
        try:
            kept, grid = parse_event(
                item,
                path,
                now=now,
                served=self.config.served_areas,
                default_areas=self.config.default_areas,
                ven_name=self.config.ven_name,
                program_name=program.name,
            )
        except VtnAnswerError as exc:
            event_id = str(item.get("id", "?")) if isinstance(item, dict) else "?"
            modification = str(item.get("modificationDateTime", "")) if isinstance(item, dict) else ""
            bad = GridEvent(SOURCE, f"{SOURCE}:event/{event_id}", program.name, event_id, modification)
            with contextlib.suppress(EventRejectedError):
                self.desk.refuse(bad, [str(exc)])
            if bad.ref in self.desk.applied:  # the version in force stays until a readable one replaces it
                seen[event_id] = VtnEvent(event_id, program.id, "", "", now, now, False)
            return 0
        if kept.program_id != program.id:  # a VTN that does not filter by programID
            log.debug("%s.programID: %s, asked for program %s; skipped", path, kept.program_id, program.id)
            return 0
        seen[kept.id] = kept
        if not grid.prices and not grid.limits:  # for someone else, or nothing the planner uses
            why = "its new version has no signal for the served areas"
            return int(self.desk.withdraw(grid.ref, why=why))
        try:
            return int(self.desk.apply(grid))
        except EventRejectedError:
            return 0

    def queue_reports(self) -> int:
        """Queue (store) one fleet report per event in force or asking for reports; how many."""
        now = self.now()
        events = [e for e in self.state.events.values() if e.end_at > now and (e.start_at <= now or e.wants_reports)]
        if not events:
            return 0
        aggregates = self.aggregates()
        for event in events:
            body = fleet_report(
                ven_name=self.config.ven_name,
                event=event,
                aggregates=aggregates,
                at=now,
                period=self.config.report_interval,
            )
            self.reports.put(body, now)
        return len(events)

    async def flush_reports(self, limit: int = 100) -> int:
        """Send queued reports oldest first; stop at the first the VTN could not take now. How many sent."""
        sent = 0
        for report in await asyncio.to_thread(self.reports.pending, limit):
            try:
                answer = await self._request("POST", "/reports", json=report.body)
            except VtnUnavailableError as exc:
                await asyncio.to_thread(self.reports.mark_attempt, report.id, self.now(), str(exc))
                raise
            if answer.status_code in (200, 201):
                answer_id = _object_id(answer)
                await asyncio.to_thread(self.reports.mark_sent, report.id, self.now(), answer_id)
                self.state.reports_sent += 1
                sent += 1
            else:
                why = f"POST /reports answered {answer.status_code}: {_problem(answer)}"
                log.error("report %d refused by the VTN: %s", report.id, why)
                await asyncio.to_thread(self.reports.mark_rejected, report.id, self.now(), why)
                self.state.reports_rejected += 1
        return sent

    # ------------------------------------------------------------------ HTTP
    async def _fetch_token(self) -> None:
        assert self._http is not None
        url = self.config.token_url or f"{self.config.vtn_url.rstrip('/')}/auth/token"
        try:
            answer = await self._http.post(
                url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.config.client_id,
                    "client_secret": self.config.client_secret,
                },
            )
        except httpx.TransportError as exc:
            msg = f"token endpoint {url}: {type(exc).__name__}: {exc}"
            raise VtnUnavailableError(msg) from exc
        if answer.status_code >= 500:
            msg = f"token endpoint {url} answered {answer.status_code}"
            raise VtnUnavailableError(msg)
        if answer.status_code != 200:
            msg = f"POST {url}"
            raise VtnAnswerError(msg, f"answered {answer.status_code}: {_problem(answer)}")
        self._token = field(_json(answer, f"POST {url}"), "access_token", f"POST {url}", str)

    async def _register(self) -> None:
        """Find the VEN by name, or create it; a VTN that lets only its operator create VENs is noted."""
        name = self.config.ven_name
        answer = await self._request("GET", "/vens", params={"venName": name})
        if answer.status_code == 200:
            for k, ven in enumerate(_list(answer, "GET /vens")):
                if isinstance(ven, dict) and ven.get("venName") == name:
                    self.state.ven_id = str(ven.get("id"))
                    return
                if not isinstance(ven, dict):
                    msg = f"GET /vens[{k}]"
                    raise VtnAnswerError(msg, f"expected an object, got {ven!r}")
        created = await self._request("POST", "/vens", json={"objectType": "VEN", "venName": name})
        if created.status_code in (200, 201):
            self.state.ven_id = _object_id(created)
        else:
            log.warning(
                "VEN %r not registered: POST /vens answered %d (%s)", name, created.status_code, _problem(created)
            )

    async def _subscribe(self) -> None:
        """One subscription per followed program (event and program changes to the webhook), made once."""
        missing = [pid for pid in self.state.programs if pid not in self.state.subscriptions]
        if not missing:
            return
        answer = await self._request("GET", "/subscriptions", params={"clientName": self.config.ven_name})
        if answer.status_code in (404, 405, 501):
            self.state.subscriptions_offered = False
            log.info(
                "the VTN offers no subscriptions (%d): polling every %s", answer.status_code, self.config.poll_interval
            )
            return
        if answer.status_code == 200:
            for sub in _list(answer, "GET /subscriptions"):
                ops = json.dumps(sub.get("objectOperations", [])) if isinstance(sub, dict) else ""
                if self.config.callback_url in ops and self._webhook_token in ops:
                    self.state.subscriptions[str(sub.get("programID"))] = str(sub.get("id"))
        for program_id in missing:
            if program_id in self.state.subscriptions:
                continue
            body = {
                "objectType": "SUBSCRIPTION",
                "clientName": self.config.ven_name,
                "programID": program_id,
                "objectOperations": [
                    {
                        "objects": ["PROGRAM", "EVENT"],
                        "operations": ["POST", "PUT", "DELETE"],
                        "callbackUrl": self.config.callback_url,
                        "bearerToken": self._webhook_token,
                    }
                ],
            }
            created = await self._request("POST", "/subscriptions", json=body)
            if created.status_code in (200, 201):
                self.state.subscriptions[program_id] = _object_id(created) or "?"
            else:
                self.state.subscriptions_offered = False
                log.info("subscription refused (%d: %s): polling only", created.status_code, _problem(created))
                return

    async def _get_all(self, path: str, params: Mapping[str, str] | None = None) -> list[Any]:
        out: list[Any] = []
        while True:
            answer = await self._request("GET", path, params={**(params or {}), "skip": len(out), "limit": PAGE})
            if answer.status_code != 200:
                msg = f"GET {path}"
                raise VtnAnswerError(msg, f"answered {answer.status_code}: {_problem(answer)}")
            page = _list(answer, f"GET {path}")
            out.extend(page)
            if len(page) < PAGE:
                return out

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call; a 401 fetches a fresh token once. Transport errors and 5xx: :class:`VtnUnavailableError`."""
        if self._http is None:
            msg = "the VEN is stopped"
            raise VtnUnavailableError(msg)
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
            try:
                answer = await self._http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                msg = f"{method} {path}: {type(exc).__name__}: {exc}"
                raise VtnUnavailableError(msg) from exc
            if answer.status_code >= 500:
                msg = f"{method} {path} answered {answer.status_code}: {_problem(answer)}"
                raise VtnUnavailableError(msg)
            if answer.status_code == 401 and self.config.client_id and attempt == 0:
                await self._fetch_token()
                continue
            return answer
        return answer

    # ------------------------------------------------------------------ webhook
    async def _start_webhook(self) -> None:
        config = uvicorn.Config(
            self._asgi,
            host=self.config.callback_host,
            port=self.config.callback_port,
            log_level="warning",
            interface="asgi3",
        )
        server = uvicorn.Server(config)
        self._tasks.append(asyncio.create_task(server.serve()))
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.01)
        self._webhook = server
        self.webhook_port = server.servers[0].sockets[0].getsockname()[1] if server.servers else None

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope.get("headers") or [])
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status = 200
        if scope["method"] != "POST":
            status = 405
        elif headers.get(b"authorization", b"").decode() != f"Bearer {self._webhook_token}":
            status = 403
        else:
            try:
                note = json.loads(body)
                kind = note["objectType"]
            except (ValueError, KeyError, TypeError):
                log.warning("webhook: unreadable notification %r", body[:200])
                status = 400
            else:
                self.state.notifications += 1
                log.info("VTN notification: %s %s", note.get("operation"), kind)
                self._wake.set()
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def _json(answer: httpx.Response, path: str) -> Any:
    try:
        return answer.json()
    except ValueError:
        raise VtnAnswerError(path, f"not JSON: {answer.text[:120]!r}") from None


def _list(answer: httpx.Response, path: str) -> list[Any]:
    body = _json(answer, path)
    if not isinstance(body, list):
        raise VtnAnswerError(path, f"expected a list, got {type(body).__name__}")
    return body


def _object_id(answer: httpx.Response) -> str | None:
    with contextlib.suppress(ValueError):
        body = answer.json()
        if isinstance(body, dict) and body.get("id") is not None:
            return str(body["id"])
    return None


def _problem(answer: httpx.Response) -> str:
    """The VTN's problem details (RFC 7807 title/detail), or the start of its answer."""
    with contextlib.suppress(ValueError):
        body = answer.json()
        if isinstance(body, dict) and ("title" in body or "detail" in body):
            return "; ".join(str(body[k]) for k in ("title", "detail") if body.get(k))
    return answer.text[:200] or "(empty)"
