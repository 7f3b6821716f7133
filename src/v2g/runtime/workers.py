"""Several CSMS worker processes on one port (``v2g csms --workers N``, ``V2G_OCPP_WORKERS``).

Every worker binds the OCPP port with ``SO_REUSEPORT`` (the kernel spreads charger connections
over them), keeps its durable state in the platform database and registers on NATS
(``adapters/ocpp/routing.py``) so that platform commands reach the worker holding the charger. The
pool restarts a worker that dies; its chargers reconnect meanwhile to the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import signal
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.process import BaseProcess
from pathlib import Path

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.engine import make_engine
from v2g.adapters.ocpp.routing import DEFAULT_NAMESPACE, CsmsWorkerNode
from v2g.adapters.ocpp.server import CsmsConfig, CsmsServer
from v2g.bootstrap import security_profile_3
from v2g.config import Settings

log = logging.getLogger("v2g.ocpp.workers")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one worker process needs (picklable: workers are spawned, not forked)."""

    index: int
    database_url: str
    host: str
    port: int
    nats_url: str
    namespace: str = DEFAULT_NAMESPACE
    heartbeat_interval_s: int = 300
    response_timeout_s: float = 10.0
    profile_validity_s: float = 1800.0
    tls_cert: str | None = None
    tls_key: str | None = None
    # security profile 3: the platform CA folder (created by the parent before the workers start)
    ca_dir: str | None = None
    ca_organisation: str = "V2G Aggregator"
    mtls_port: int = 0
    server_names: str = "localhost,127.0.0.1"
    station_cert_days: int = 365
    cert_renew_days: int = 30

    def settings(self) -> Settings:
        """The platform settings this worker serves with (explicit values over the environment)."""
        return Settings(
            database_url=self.database_url,
            ocpp_tls_cert=Path(self.tls_cert) if self.tls_cert else None,
            ocpp_tls_key=Path(self.tls_key) if self.tls_key else None,
            ocpp_ca_dir=Path(self.ca_dir) if self.ca_dir else None,
            ocpp_ca_organisation=self.ca_organisation,
            ocpp_server_names=self.server_names,
            ocpp_station_cert_days=self.station_cert_days,
            ocpp_cert_renew_days=self.cert_renew_days,
        )


def worker_spec(settings: Settings, index: int, host: str, port: int, *, mtls_port: int = 0) -> WorkerSpec:
    """Worker ``index`` as configured by the platform settings."""
    return WorkerSpec(
        index,
        settings.database_url,
        host,
        port,
        settings.nats_url,
        namespace=settings.nats_namespace,
        tls_cert=str(settings.ocpp_tls_cert) if settings.ocpp_tls_cert else None,
        tls_key=str(settings.ocpp_tls_key) if settings.ocpp_tls_key else None,
        ca_dir=str(settings.ocpp_ca_dir) if settings.ocpp_ca_dir else None,
        ca_organisation=settings.ocpp_ca_organisation,
        mtls_port=mtls_port,
        server_names=settings.ocpp_server_names,
        station_cert_days=settings.ocpp_station_cert_days,
        cert_renew_days=settings.ocpp_cert_renew_days,
    )


def worker_id(index: int, pid: int | None = None) -> str:
    """``w<index>-<pid>``: a restarted worker is a new holder, so chargers that reach it get their plan again."""
    return f"w{index}-{pid if pid is not None else os.getpid()}"


def ready_subject(namespace: str = DEFAULT_NAMESPACE) -> str:
    """Each worker announces its id here once it listens (supervisors, tests, the benchmark)."""
    return f"{namespace}.csms.ready"


def free_port(host: str) -> int:
    """A free TCP port for all workers to share (asked for port 0 with more than one worker)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def run_worker(spec: WorkerSpec) -> None:
    """Process entry point of one worker: serve until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s w{spec.index} %(name)s %(message)s")
    asyncio.run(_serve_worker(spec))


async def _serve_worker(spec: WorkerSpec) -> None:
    import ssl

    ssl_context = None
    if spec.tls_cert:
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        ssl_context.load_cert_chain(Path(spec.tls_cert), Path(spec.tls_key) if spec.tls_key else None)
    engine = make_engine(spec.database_url)
    config = CsmsConfig(
        heartbeat_interval_s=spec.heartbeat_interval_s,
        response_timeout_s=spec.response_timeout_s,
        profile_validity=timedelta(seconds=spec.profile_validity_s),
    )
    store = SqlDeviceStore(engine)
    profile3 = security_profile_3(spec.settings(), store) if spec.ca_dir else None
    certificates, mtls_context = profile3 if profile3 is not None else (None, None)
    server = CsmsServer(store, config, ssl_context=ssl_context, mtls_context=mtls_context, certificates=certificates)
    nc = await nats.connect(spec.nats_url, name=worker_id(spec.index), max_reconnect_attempts=-1)
    node = CsmsWorkerNode(server, nc, worker_id(spec.index), namespace=spec.namespace)
    await node.start()  # the command endpoint first: a charger may connect the moment we listen
    await server.start(spec.host, spec.port, reuse_port=True, mtls_port=spec.mtls_port)
    await nc.publish(ready_subject(spec.namespace), worker_id(spec.index).encode())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()  # closes the connections: their registry entries go while NATS is still up
    await node.stop()
    with contextlib.suppress(Exception):
        await nc.drain()
    engine.dispose()


async def start_workers(pool: WorkerPool, nc: NatsClient, namespace: str, timeout_s: float = 120.0) -> list[str]:
    """Start the pool and wait until every worker listens; returns the worker ids."""
    ready: asyncio.Queue[str] = asyncio.Queue()

    async def on_ready(msg: Msg) -> None:
        await ready.put(msg.data.decode())

    sub = await nc.subscribe(ready_subject(namespace), cb=on_ready)
    try:
        pool.start()
        return [await asyncio.wait_for(ready.get(), timeout_s) for _ in pool.specs]
    finally:
        await sub.unsubscribe()


class WorkerPool:
    """Starts, watches (restarts the dead) and stops the worker processes."""

    def __init__(self, specs: list[WorkerSpec], *, restart: bool = True) -> None:
        if not specs:
            msg = "workers: at least one worker is needed"
            raise ValueError(msg)
        self.specs = specs
        self.restart = restart
        self.restarts = 0
        self._ctx = mp.get_context("spawn")
        self.processes: list[BaseProcess] = []

    def start(self) -> None:
        self.processes = [self._spawn(spec) for spec in self.specs]

    def _spawn(self, spec: WorkerSpec) -> BaseProcess:
        proc = self._ctx.Process(target=run_worker, args=(spec,), name=f"csms-w{spec.index}", daemon=True)
        proc.start()
        return proc

    def check(self) -> list[int]:
        """Restart workers that exited; returns the indexes restarted."""
        restarted = []
        for i, proc in enumerate(self.processes):
            if not proc.is_alive() and self.restart:
                log.warning("CSMS worker %d exited (code %s): restarting", i, proc.exitcode)
                self.processes[i] = self._spawn(self.specs[i])
                self.restarts += 1
                restarted.append(i)
        return restarted

    def stop(self, timeout_s: float = 15.0) -> None:
        for proc in self.processes:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in self.processes:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(5)
