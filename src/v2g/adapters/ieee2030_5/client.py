"""The aggregator's IEEE 2030.5 client: discovery, DER controls into the planner, reports out.

One EndDevice per served grid area (the area's EV fleet as one DER), registered by the aggregator's
certificate. Every poll walks DeviceCapability -> EndDeviceList -> FunctionSetAssignments ->
DERProgramList -> DERControlList / DefaultDERControl of each area, resolves which control holds when
(:func:`~v2g.services.planning.der_controls.resolve_windows`) and hands a changed set of limit
windows to the :class:`~v2g.services.planning.dso_interface.DsoLimitDesk` (checked, audited, planned).
Responses (received, started, completed, cancelled, superseded, rejected), DERCapability, DERSettings,
DERStatus and meter readings go through a :class:`~v2g.services.planning.der_reports.ReportQueue`:
made when their facts are known, delivered in order when the server is there. A server that is away
is retried with exponential backoff; one that answers wrongly is logged with the resource, element
and reason, and retried the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from envoy_schema.server.schema.sep2.der import (
    DefaultDERControl,
    DERControlListResponse,
    DERListResponse,
    DERProgramListResponse,
)
from envoy_schema.server.schema.sep2.device_capability import DeviceCapabilityResponse
from envoy_schema.server.schema.sep2.end_device import EndDeviceListResponse, EndDeviceResponse
from envoy_schema.server.schema.sep2.function_set_assignments import FunctionSetAssignmentsListResponse
from envoy_schema.server.schema.sep2.response import ResponseType
from envoy_schema.server.schema.sep2.time import TimeResponse

from v2g.adapters.ieee2030_5 import resources as doc
from v2g.adapters.ieee2030_5.identity import DeviceId, area_identity, certificate_identity
from v2g.adapters.ieee2030_5.transport import M, Sep2Http, ServerAnswerError, ServerUnavailableError, TlsFiles
from v2g.services.actors.ports import AuditEntry
from v2g.services.planning.der_controls import ControlBase, DerControl, EventStatus, LimitWindow, resolve_windows
from v2g.services.planning.der_reports import AreaFacts, Report, ReportQueue
from v2g.services.planning.dso_interface import DsoLimitDesk, LimitRejectedError
from v2g.services.planning.ports import AuditLog

log = logging.getLogger("v2g.signals.ieee2030_5")
PAGE = "?s=0&l=255"
DCAP = "/dcap"
MAX_ATTEMPTS = 10  # a report the server refuses this often is dropped (logged as an error with the reason)


@dataclass(frozen=True, slots=True)
class Ieee2030Config:
    server_url: str
    tls: TlsFiles
    areas: tuple[str, ...]
    poll_interval: timedelta = timedelta(seconds=60)
    report_interval: timedelta = timedelta(seconds=60)
    backoff_initial: timedelta = timedelta(seconds=2)
    backoff_max: timedelta = timedelta(minutes=5)
    horizon: timedelta = timedelta(hours=48)


@dataclass
class _Program:
    mrid: str
    primacy: int
    controls_href: str | None
    default_href: str | None


@dataclass
class _Area:
    area_id: str
    device: DeviceId
    edev_href: str | None = None
    der_href: str | None = None
    links: dict[str, str] = field(default_factory=dict)  # dercap, derg, ders -> href
    mup_href: str | None = None
    programs: list[_Program] = field(default_factory=list)
    windows: tuple[LimitWindow, ...] | None = None
    seen: dict[str, DerControl] = field(default_factory=dict)
    answered: set[tuple[str, int]] = field(default_factory=set)
    rating: tuple[float, float] | None = None


class Ieee2030Client:
    def __init__(
        self,
        config: Ieee2030Config,
        desk: DsoLimitDesk,
        queue: ReportQueue,
        facts: Callable[[], Mapping[str, AreaFacts]],
        now: Callable[[], datetime],
        audit: AuditLog | None = None,
    ) -> None:
        self.config = config
        self.desk = desk
        self.queue = queue
        self.facts = facts
        self.now = now
        self.audit = audit
        fingerprint, self.identity = certificate_identity(config.tls.cert_file)
        self.areas = {a: _Area(a, area_identity(fingerprint, a)) for a in config.areas}
        self.http: Sep2Http | None = None
        self.offset = timedelta(0)  # server time minus platform time
        self.discovered = False
        self.connected = False
        self.last_error: str | None = None
        self.failures = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._last_reading_at: datetime | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.http = Sep2Http(self.config.server_url, self.config.tls)
        self._tasks = [
            asyncio.create_task(self._server_loop(), name="ieee2030_5-server"),
            asyncio.create_task(self._report_loop(), name="ieee2030_5-reports"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.http is not None:
            await self.http.close()
            self.http = None

    def backoff(self) -> timedelta:
        """The wait after ``failures`` failed exchanges in a row: doubling from the initial one, capped."""
        if self.failures == 0:
            return self.config.poll_interval
        step: timedelta = self.config.backoff_initial * float(2 ** min(self.failures - 1, 30))
        return min(self.config.backoff_max, step)

    async def _server_loop(self) -> None:
        while True:
            await self.exchange()
            await asyncio.sleep(self.backoff().total_seconds())

    async def _report_loop(self) -> None:
        while True:
            self.make_reports()
            await asyncio.sleep(self.config.report_interval.total_seconds())

    async def exchange(self) -> bool:
        """One round with the server: discover (once), poll the controls, deliver the queued reports."""
        try:
            if not self.discovered:
                await self.discover()
            await self.poll()
            await self.deliver()
        except (ServerUnavailableError, ServerAnswerError) as exc:
            self.failures += 1
            self.connected = False
            self.last_error = str(exc)
            if isinstance(exc, ServerAnswerError):
                self.discovered = False  # the server's resources may have moved: walk them again
                log.error("2030.5 server answered wrongly: %s (retry in %s)", exc, self.backoff())
            else:
                log.warning("2030.5 server unavailable: %s (retry in %s)", exc, self.backoff())
            return False
        if not self.connected:
            log.info("2030.5 server %s reached; %d report(s) queued", self.config.server_url, self.queue.count())
        self.connected = True
        self.failures = 0
        self.last_error = None
        return True

    # ------------------------------------------------------------------ discovery
    def _http(self) -> Sep2Http:
        if self.http is None:
            self.http = Sep2Http(self.config.server_url, self.config.tls)
        return self.http

    async def _get(self, href: str, model: type[M]) -> M:
        got = await self._http().get(href, model)
        assert got is not None
        return got

    async def discover(self) -> None:
        dcap = await self._get(DCAP, DeviceCapabilityResponse)
        if dcap.TimeLink is not None:
            tm = await self._get(dcap.TimeLink.href, TimeResponse)
            self.offset = timedelta(seconds=round(tm.currentTime - self.now().timestamp()))
        if dcap.EndDeviceListLink is None:
            raise ServerAnswerError(DCAP, "DeviceCapability/EndDeviceListLink", "missing: no EndDevice list")
        edev_list = dcap.EndDeviceListLink.href
        for area in self.areas.values():
            device = await self._end_device(edev_list, area)
            await self._area_links(area, device)
            if dcap.MirrorUsagePointListLink is not None and area.mup_href is None:
                body = doc.usage_point(area.area_id, area.device)
                area.mup_href = await self._http().send("POST", dcap.MirrorUsagePointListLink.href, body)
                if area.mup_href is None:
                    raise ServerAnswerError(
                        dcap.MirrorUsagePointListLink.href, "Location", "a created MirrorUsagePoint has no Location"
                    )
        self.discovered = True
        log.info(
            "2030.5 discovery: %s",
            "; ".join(f"{a.area_id} -> {a.edev_href} ({len(a.programs)} DER programs)" for a in self.areas.values()),
        )

    async def _end_device(self, edev_list: str, area: _Area) -> EndDeviceResponse:
        listed = await self._get(edev_list + PAGE, EndDeviceListResponse)
        mine = [d for d in listed.EndDevice or [] if d.sFDI == area.device.sfdi]
        if not mine:
            href = await self._http().send("POST", edev_list, doc.end_device(area.device, self.now() + self.offset))
            if href is None:
                raise ServerAnswerError(edev_list, "Location", "a registered EndDevice has no Location")
            log.info("2030.5: area %s registered as EndDevice %s (SFDI %d)", area.area_id, href, area.device.sfdi)
            return await self._get(href, EndDeviceResponse)
        return mine[0]

    async def _area_links(self, area: _Area, device: EndDeviceResponse) -> None:
        area.edev_href = device.href
        area.programs = []
        if device.FunctionSetAssignmentsListLink is not None:
            fsas = await self._get(
                device.FunctionSetAssignmentsListLink.href + PAGE, FunctionSetAssignmentsListResponse
            )
            for fsa in fsas.FunctionSetAssignments or []:
                if fsa.DERProgramListLink is None:
                    continue
                programs = await self._get(fsa.DERProgramListLink.href + PAGE, DERProgramListResponse)
                for p in programs.DERProgram or []:
                    area.programs.append(
                        _Program(
                            p.mRID,
                            p.primacy,
                            p.DERControlListLink.href if p.DERControlListLink else None,
                            p.DefaultDERControlLink.href if p.DefaultDERControlLink else None,
                        )
                    )
        if device.DERListLink is not None:
            ders = await self._get(device.DERListLink.href + PAGE, DERListResponse)
            if ders.DER_:
                der = ders.DER_[0]
                area.der_href = der.href
                for kind, link in (
                    ("dercap", der.DERCapabilityLink),
                    ("derg", der.DERSettingsLink),
                    ("ders", der.DERStatusLink),
                ):
                    if link is not None:
                        area.links[kind] = link.href

    # ------------------------------------------------------------------ controls
    async def poll(self) -> None:
        now = self.now()
        for area in self.areas.values():
            controls: list[DerControl] = []
            defaults: list[tuple[int, str, ControlBase]] = []
            for p in area.programs:
                if p.controls_href is not None:
                    listed = await self._get(p.controls_href + PAGE, DERControlListResponse)
                    for c in listed.DERControl or []:
                        controls.append(
                            doc.der_control(c, list_href=p.controls_href, primacy=p.primacy, offset=self.offset)
                        )
                if p.default_href is not None:
                    got = await self._http().get(p.default_href, DefaultDERControl, missing_ok=True)
                    if got is not None:
                        base = doc.control_base(got.DERControlBase_, p.default_href, "DefaultDERControl/DERControlBase")
                        defaults.append((p.primacy, p.mrid, base))
            self._apply(area, controls, defaults, now)

    def _apply(
        self, area: _Area, controls: list[DerControl], defaults: list[tuple[int, str, ControlBase]], now: datetime
    ) -> None:
        for c in controls:
            if c.mrid not in area.seen:
                self._audit_received(area, c)
            area.seen[c.mrid] = c
        rated_kw = area.rating[1] if area.rating else 0.0
        until = now + self.config.horizon
        windows = resolve_windows(controls, defaults, now=now, until=until, rated_discharge_kw=rated_kw)
        rejected = False
        if area.windows is None and not windows:
            area.windows = windows  # nothing was handed over before: nothing to lift
        elif windows != (area.windows if area.windows is not None else ()):
            via = f"ieee2030_5 {self.config.server_url}{area.edev_href or ''}"
            try:
                self.desk.replace_windows(area.area_id, windows, via=via)
                area.windows = windows
            except LimitRejectedError as exc:
                log.error("2030.5 controls for %s rejected: %s", area.area_id, exc)
                rejected = True
        for c in controls:
            self._respond(area, c, now, rejected=rejected)

    def _audit_received(self, area: _Area, c: DerControl) -> None:
        log.info("2030.5 control %s for %s: %s from %s for %s", c.mrid, area.area_id, c.base, c.start_at, c.duration)
        if self.audit is None:
            return
        self.audit.audit(
            AuditEntry(
                at=self.now(),
                user_id=None,
                organisation_id=None,
                action="grid_control.received",
                entity="grid_area",
                entity_id=area.area_id,
                before=None,
                after={
                    "source": "ieee2030_5",
                    "control": c.mrid,
                    "href": c.href,
                    "primacy": c.program_primacy,
                    "status": c.status.name.lower(),
                    "start_at": c.start_at.isoformat(),
                    "end_at": c.end_at.isoformat(),
                    "import_limit_w": c.base.import_limit_w,
                    "export_limit_w": c.base.export_limit_w,
                    "generation_limit_w": c.base.generation_limit_w,
                    "load_limit_w": c.base.load_limit_w,
                    "max_limit_pct": c.base.max_limit_pct,
                    "connect": c.base.connect,
                    "energize": c.base.energize,
                },
            )
        )

    def _respond(self, area: _Area, c: DerControl, now: datetime, *, rejected: bool) -> None:
        """Queue the responses CSIP asks for: received; then started, completed, cancelled or superseded."""
        if not c.reply_to or not c.response_required:
            return
        due: list[ResponseType] = [ResponseType.EVENT_RECEIVED]
        if rejected:
            due.append(ResponseType.REJECTED_INVALID_EVENT)
        elif c.status is EventStatus.SUPERSEDED:
            due.append(ResponseType.EVENT_SUPERSEDED)
        elif c.cancelled:
            due.append(ResponseType.EVENT_CANCELLED)
        else:
            if c.start_at <= now:
                due.append(ResponseType.EVENT_STARTED)
            if c.end_at <= now:
                due.append(ResponseType.EVENT_COMPLETED)
        for status in due:
            key = (c.mrid, int(status))
            if key in area.answered:
                continue
            area.answered.add(key)
            body = doc.response(c, area.device, status, now + self.offset)
            self.queue.put(Report(now, area.area_id, "response", c.reply_to, body))

    # ------------------------------------------------------------------ reports
    def make_reports(self) -> None:
        """Queue DERStatus and the fleet's power for every area (and capability/settings when they changed)."""
        now = self.now()
        server_now = now + self.offset
        period_s = int(self.config.report_interval.total_seconds())
        start = self._last_reading_at or now - self.config.report_interval
        for area_id, facts in self.facts().items():
            area = self.areas.get(area_id)
            if area is None:
                continue
            rating = (facts.max_charge_kw, facts.max_discharge_kw)
            if rating != area.rating:
                area.rating = rating
                self.queue.put(Report(now, area_id, "dercap", f"dercap:{area_id}", doc.capability(facts)))
                self.queue.put(Report(now, area_id, "derg", f"derg:{area_id}", doc.settings(facts, server_now)))
            self.queue.put(Report(now, area_id, "ders", f"ders:{area_id}", doc.status(facts, server_now)))
            p_kw = facts.measured_p_kw if facts.measured_p_kw is not None else facts.planned_p_kw
            seconds = max(1, int((now - start).total_seconds())) if self._last_reading_at else period_s
            body = doc.power_reading(area.device, p_kw, start + self.offset, seconds)
            self.queue.put(Report(now, area_id, "mmr", f"mmr:{area_id}", body))
        self._last_reading_at = now

    def _target(self, report: Report) -> tuple[str, str]:
        """The method and href of a queued report (logical targets resolved against the discovered resources)."""
        if report.kind == "response":
            return "POST", report.target
        kind, _, area_id = report.target.partition(":")
        area = self.areas.get(area_id)
        if area is None:
            raise ServerAnswerError(report.target, "area", f"{area_id} is no longer served")
        if kind == "mmr":
            if area.mup_href is None:
                raise ServerAnswerError(DCAP, "DeviceCapability/MirrorUsagePointListLink", "missing: no readings")
            return "POST", area.mup_href
        href = area.links.get(kind)
        if href is None:
            raise ServerAnswerError(area.der_href or area.edev_href or "", f"DER/{kind} link", "missing")
        return "PUT", href

    async def deliver(self) -> int:
        """Send the queued reports in order; returns how many the server took."""
        sent = 0
        while True:
            batch = self.queue.oldest(50)
            if not batch:
                return sent
            for report in batch:
                assert report.id is not None
                try:
                    method, href = self._target(report)
                    await self._http().send(method, href, report.body)
                except ServerAnswerError as exc:
                    if report.attempts + 1 >= MAX_ATTEMPTS:
                        log.error("2030.5 report %s for %s dropped: %s", report.kind, report.area_id, exc)
                        self.queue.delivered(report.id)
                    else:
                        self.queue.failed(report.id, str(exc))
                    raise
                self.queue.delivered(report.id)
                sent += 1
