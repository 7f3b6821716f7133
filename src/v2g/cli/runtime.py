"""Run the web server and the CSMS in one event loop; for `v2g demo` also a simulated fleet that follows a plan.

The demo plan is a simple, documented rule until the planner drives it: each wallbox discharges
6 kW from 16:00 to 20:00 Swedish time (the evening peak) and charges 7 kW otherwise; schedules
cover the next four hours and are re-sent every 15 minutes. The wallboxes obey within their EVs'
limits and report meter values every 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

import typer
import uvicorn
from fastapi import FastAPI

from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.provisioning import provision_simulated
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.adapters.ocpp.gateway import OcppChargerGateway
from v2g.adapters.ocpp.routing import RoutedChargerGateway
from v2g.adapters.ocpp.server import CsmsServer
from v2g.cli.csms_workers import WorkerPool, free_port, start_workers, worker_spec
from v2g.cli.devices import server_ssl_context
from v2g.config import Settings
from v2g.devices import summarise_acks
from v2g.fleet.schedule import PowerSchedule
from v2g.services.devices.ports import ChargerGateway
from v2g.sim.fleet import FleetRun, start_fleet
from v2g.units import QUARTER, floor_quarter, to_local, utc_now

log = logging.getLogger("v2g.demo")

DEMO_DISCHARGE_KW = -6.0
DEMO_CHARGE_KW = 7.0
PEAK_LOCAL_HOURS = range(16, 20)


def demo_schedule(ev_id: str, charger_id: str, start_at: datetime, quarters: int = 16) -> PowerSchedule:
    """The demo rule: discharge in the local evening peak, charge otherwise."""
    p_kw = tuple(
        DEMO_DISCHARGE_KW if to_local(start_at + QUARTER * i).hour in PEAK_LOCAL_HOURS else DEMO_CHARGE_KW
        for i in range(quarters)
    )
    return PowerSchedule(ev_id, start_at, p_kw, charger_id=charger_id)


async def _follow_plan(gateway: ChargerGateway, charger_ids: list[str]) -> None:
    while True:
        start = floor_quarter(utc_now())
        acks = await gateway.send_schedules([demo_schedule(f"ev-{cid}", cid, start) for cid in charger_ids])
        log.info("demo plan sent: %s", {k.value: v for k, v in summarise_acks(acks).items()})
        await asyncio.sleep(15 * 60)


def _report(journeys: Any, charger_id: str, kind: str, detail: str) -> None:
    """Feed the installation journey's ``verify_connectivity`` (chargers without a journey are ignored)."""
    try:
        journeys.record_device_event(charger_id, kind, detail)
    except LookupError:
        log.debug("charger[%s]: no journey to report %s to", charger_id, kind)


def run_platform(settings: Settings, app: FastAPI, host: str | None, port: int | None, *, demo: bool = False) -> None:
    """Serve the API and the CSMS (and, for the demo, the simulated fleet) until interrupted."""
    asyncio.run(_main(settings, app, host or settings.host, port or settings.port, demo))


async def _main(settings: Settings, app: FastAPI, host: str, port: int, demo: bool) -> None:
    store = SqlDeviceStore(make_engine(settings.database_url))
    journeys = getattr(getattr(app.state, "platform", None), "journeys", None)
    csms: CsmsServer | None = None
    pool: WorkerPool | None = None
    router: RoutedChargerGateway | None = None
    if settings.ocpp_workers > 1:  # worker processes on the OCPP port, commands routed over NATS
        ocpp_port = settings.ocpp_port or free_port(host)
        pool = WorkerPool([worker_spec(settings, i, host, ocpp_port) for i in range(settings.ocpp_workers)])
        router = await RoutedChargerGateway.connect(settings.nats_url, namespace=settings.nats_namespace)
        if journeys is not None:
            router.on_device_event.append(lambda cid, kind, detail: _report(journeys, cid, kind, detail))
        await start_workers(pool, router.nc, settings.nats_namespace)
        app.state.charger_gateway = router
        supervisor = asyncio.create_task(_supervise(pool))
    else:
        csms = CsmsServer(store, ssl_context=server_ssl_context(settings))
        ocpp_port = await csms.start(host, settings.ocpp_port)
        app.state.csms = csms
        if journeys is not None:
            csms.on_device_event.append(lambda cid, kind, detail: _report(journeys, cid, kind, detail))
        app.state.charger_gateway = OcppChargerGateway(csms)
    scheme = "wss" if settings.ocpp_tls_cert else "ws"
    typer.echo(f"V2G platform serving on http://{host}:{port}  (API docs: /docs)")
    typer.echo(f"CSMS (OCPP 1.6 / 2.0.1 / 2.1) on {scheme}://{host}:{ocpp_port}/ocpp/{{charger_id}}")
    fleet: FleetRun | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        if demo and settings.demo_chargers > 0:
            creds = await asyncio.to_thread(
                provision_simulated,
                store,
                settings.demo_chargers,
                "2.1",
                prefix="DEMO",
                hasher=Argon2Hasher(simulated=True),
            )
            fleet = await start_fleet(creds, f"{scheme}://{host}:{ocpp_port}/ocpp", "2.1", meter_interval_s=10.0)
            typer.echo(
                f"demo: {len(fleet.chargers)} simulated wallboxes connected over OCPP 2.1 ({len(fleet.failed)} failed)"
            )
            tasks.append(asyncio.create_task(_follow_plan(app.state.charger_gateway, [c.charger_id for c in creds])))
        config = uvicorn.Config(app, host=host, port=port, log_level=settings.log_level.lower())
        await uvicorn.Server(config).serve()
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if fleet is not None:
            await fleet.stop()
        if csms is not None:
            await csms.stop()
        if pool is not None and router is not None:
            supervisor.cancel()
            await asyncio.to_thread(pool.stop)
            await router.close()


async def _supervise(pool: WorkerPool) -> None:
    """Restart CSMS workers that died (their chargers reconnect to the others meanwhile)."""
    while True:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(pool.check)
