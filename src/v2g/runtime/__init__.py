"""The runtime: starts and stops what :func:`v2g.bootstrap.bootstrap` built, in one event loop.

The web API (uvicorn), the CSMS (one in-process server, or worker processes behind NATS), the
live frequency input, the OpenADR VEN, the IEC 61850 server, the scheduled jobs of the operating day and the frequency
dispatch. It builds nothing itself; the demo adds the simulated households (:mod:`v2g.runtime.demo`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import uvicorn
from fastapi import FastAPI

from v2g.adapters.feeds.frequency import LiveFrequency
from v2g.adapters.ocpp.routing import RoutedChargerGateway
from v2g.bootstrap import Platform
from v2g.runtime.workers import WorkerPool, free_port, start_workers, worker_spec
from v2g.units import to_local

log = logging.getLogger("v2g.runtime")

Echo = Callable[[str], None]


@dataclass
class Started:
    """Where the running platform answers."""

    http_url: str
    ocpp_url: str


def status_printer(echo: Echo) -> Callable[[str, datetime, str], None]:
    """One short console line per job run: local time, job, what it did."""

    def show(job: str, due_at: datetime, status: str) -> None:
        echo(f"{to_local(due_at):%a %H:%M} {job}: {status}")

    return show


class Runtime:
    """Runs a bootstrapped platform: start, run until stopped, stop in reverse order."""

    def __init__(self, platform: Platform, app: FastAPI | None, *, echo: Echo | None = None) -> None:
        self.platform = platform
        self.app = app
        self.echo = echo or (lambda line: log.info("%s", line))
        self.tasks: list[asyncio.Task[Any]] = []
        self.pool: WorkerPool | None = None
        self.router: RoutedChargerGateway | None = None
        self.ocpp_port: int | None = None
        self.mtls_port: int | None = None  # security profile 3 (client certificates), when a CA is configured

    async def start_csms(self, host: str, port: int | None = None) -> int:
        """The CSMS: in process, or ``ocpp_workers`` worker processes with commands routed over NATS."""
        settings = self.platform.settings
        journeys = self.platform.journeys

        def report(charger_id: str, kind: str, detail: str) -> None:
            if journeys is None:
                return
            try:
                journeys.record_device_event(charger_id, kind, detail)
            except LookupError:
                log.debug("charger[%s]: no journey to report %s to", charger_id, kind)

        if settings.ocpp_workers > 1:
            ocpp_port = port or settings.ocpp_port or free_port(host)
            if settings.ocpp_ca_dir is not None:
                self.mtls_port = settings.ocpp_mtls_port or free_port(host)
            specs = [
                worker_spec(settings, i, host, ocpp_port, mtls_port=self.mtls_port or 0)
                for i in range(settings.ocpp_workers)
            ]
            self.pool = WorkerPool(specs)
            self.router = await RoutedChargerGateway.connect(settings.nats_url, namespace=settings.nats_namespace)
            self.router.on_device_event.append(report)
            await start_workers(self.pool, self.router.nc, settings.nats_namespace)
            self.platform.gateway.target = self.router
            self.spawn(self._supervise_workers())
        else:
            csms = self.platform.csms
            if csms is None:
                msg = "the platform was built with a simulated gateway: there is no CSMS to start"
                raise RuntimeError(msg)
            csms.on_device_event.append(report)
            ocpp_port = await csms.start(
                host, settings.ocpp_port if port is None else port, mtls_port=settings.ocpp_mtls_port
            )
            self.mtls_port = csms.mtls_port
        self.ocpp_port = ocpp_port
        return ocpp_port

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self.tasks.append(task)
        return task

    async def start_operating_day(self) -> None:
        """Feeds, the OpenADR VEN, the scheduled jobs and the frequency dispatch."""
        p = self.platform
        if isinstance(p.frequency, LiveFrequency):
            port = await p.frequency.start()
            self.echo(f"frequency: live input on udp port {port}")
        await self.start_ven()
        await self.start_iec61850()
        await self.start_ieee2030_5()
        p.scheduler.on_status = status_printer(self.echo)
        p.scheduler.start()
        self.spawn(self._run_jobs())
        if p.dispatch is not None:
            self.spawn(p.dispatch.run_forever())

    async def _run_jobs(self) -> None:
        """The start-up plan, then the scheduled jobs (one after the other, so they never plan twice at once)."""
        p = self.platform
        now = p.clock.now()
        try:
            status = await p.cycle.start_up(now)
        except Exception as exc:  # the planning jobs try again at their times
            log.exception("start-up plan failed")
            status = f"failed: {type(exc).__name__}: {exc}"
        if p.scheduler.on_status is not None:
            p.scheduler.on_status("planning", now, status)
        await p.scheduler.run()

    async def start_ven(self) -> None:
        ven = self.platform.ven
        if ven is None:
            return
        await ven.start()
        self.echo(f"OpenADR VEN {ven.config.ven_name!r} at {ven.config.vtn_url}")

    async def start_iec61850(self) -> int | None:
        """The IEC 61850 server for the control centre (when ``iec61850_enabled``); returns its port."""
        server = self.platform.iec61850
        if server is None:
            return None
        port = await server.start()
        self.echo(f"IEC 61850: IED {server.config.ied_name!r} on {server.config.host}:{port}")
        return port

    async def start_ieee2030_5(self) -> None:
        """The IEEE 2030.5 client of the utility server (when ``ieee2030_5_server_url`` is set)."""
        client = self.platform.ieee2030_5
        if client is None:
            return
        await client.start()
        self.echo(f"IEEE 2030.5: client of {client.config.server_url} for {', '.join(client.config.areas)}")

    async def serve_http(self, host: str, port: int) -> None:
        assert self.app is not None
        config = uvicorn.Config(self.app, host=host, port=port, log_level=self.platform.settings.log_level.lower())
        await uvicorn.Server(config).serve()

    async def stop(self) -> None:
        for task in reversed(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
        p = self.platform
        if p.dispatch is not None:
            with contextlib.suppress(Exception):
                await p.dispatch.stop()
        if isinstance(p.frequency, LiveFrequency):
            p.frequency.stop()
        if p.ven is not None:
            with contextlib.suppress(Exception):
                await p.ven.stop()
        if p.iec61850 is not None:
            with contextlib.suppress(Exception):
                await p.iec61850.stop()
        if p.ieee2030_5 is not None:
            with contextlib.suppress(Exception):
                await p.ieee2030_5.stop()
        if p.csms is not None and self.ocpp_port is not None and self.pool is None:
            await p.csms.stop()
        if self.pool is not None:
            await asyncio.to_thread(self.pool.stop)
        if self.router is not None:
            await self.router.close()

    async def _supervise_workers(self) -> None:
        """Restart CSMS workers that died (their chargers reconnect to the others meanwhile)."""
        assert self.pool is not None
        while True:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(self.pool.check)
