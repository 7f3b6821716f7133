"""CSMS benchmark: N simulated chargers on one platform instance; setpoint fan-out and MeterValues throughput.

Usage: ``python bench/csms.py [--chargers N] [--workers W] [--protocol 2.1] [--rounds 5] [--blast-s 10]``

With one worker the CSMS runs in this process (one event loop, full JSON-schema validation of every
message, telemetry group-committed to the database) and each fan-out round times every charger's
command separately. With ``--workers W`` > 1, W worker processes share the port (SO_REUSEPORT) and
this process is the platform: it routes each fan-out round as one batch per worker over NATS
(``V2G_BENCH_NATS_URL``, default ``nats://127.0.0.1:4222``). The simulated fleet is a child process
(one event loop, real ``ocpp`` charge points without validation on the simulator side); all share
the machine's cores. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.migrate import upgrade
from v2g.adapters.db.provisioning import provision_simulated
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.adapters.ocpp.gateway import OcppChargerGateway
from v2g.adapters.ocpp.server import CsmsConfig, CsmsServer
from v2g.fleet.model import Customer, GridArea, PriceArea, Site
from v2g.services.devices.ports import AckStatus, Setpoint
from v2g.sim.fleet import SimCredential, raise_open_file_limit, start_fleet
from v2g.units import utc_now


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# ---------------------------------------------------------------------------- simulated fleet (child)
def fleet_process(creds: list[SimCredential], url: str, protocol: str, pipe: Connection) -> None:
    asyncio.run(_fleet_main(creds, url, protocol, pipe))


async def _fleet_main(creds: list[SimCredential], url: str, protocol: str, pipe: Connection) -> None:
    started = time.perf_counter()
    run = await start_fleet(creds, url, protocol, meter_loop=False, validate=False, concurrency=500)
    pipe.send(
        {
            "connected": len(run.chargers),
            "failed": len(run.failed),
            "connect_s": time.perf_counter() - started,
            "first_failure": run.failed[0][1] if run.failed else None,
        }
    )
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command[0] == "stop":
            break
        if command[0] == "blast":
            cpu0 = time.process_time()
            result = await _blast(run.chargers, float(command[1]))
            pipe.send({**result, "sim_cpu_s": time.process_time() - cpu0})
        if command[0] == "cpu":
            pipe.send(time.process_time())
    await run.stop()


async def _blast(chargers: list[Any], seconds: float) -> dict[str, Any]:
    """Every charger sends MeterValues back to back (one outstanding CALL each) for ``seconds``."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = 0

    async def blast(sim: Any) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                await sim.meter_values()
                latencies.append(time.perf_counter() - t0)
            except Exception:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(blast(sim) for sim in chargers))
    elapsed = time.perf_counter() - t0
    return {
        "round_trips": len(latencies),
        "elapsed_s": elapsed,
        "errors": errors,
        "p50_ms": 1000 * pct(latencies, 0.5),
        "p99_ms": 1000 * pct(latencies, 0.99),
    }


# ---------------------------------------------------------------------------- platform (this process)
def seed(engine: Any) -> None:
    from datetime import UTC, datetime

    with engine.begin() as conn:
        repo = SqlFleetRepository(conn)
        repo.add_grid_area(GridArea("GA-B", "Bench area", None, PriceArea.SE3, 1e6, 1e6, 1e6))
        repo.add_customer(Customer("cust-b", "Bench", "bench@example.se", datetime(2026, 1, 1, tzinfo=UTC)))
        for i in range(10):
            repo.add_site(Site(f"site-b{i}", "cust-b", f"Benchgatan {i}", PriceArea.SE3, "GA-B", main_fuse_a=25))


async def platform_main(args: argparse.Namespace) -> dict[str, Any]:
    if args.workers > 1:
        return await multi_worker_main(args)
    raise_open_file_limit(args.chargers + 512)
    tmp = tempfile.mkdtemp(prefix="v2g-bench-")
    url = os.environ.get("V2G_BENCH_DATABASE_URL") or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    seed(engine)
    store = SqlDeviceStore(engine)
    t0 = time.perf_counter()
    creds = provision_simulated(
        store, args.chargers, args.protocol, hasher=Argon2Hasher(simulated=True), prefix="BENCH"
    )
    provision_s = time.perf_counter() - t0
    config = CsmsConfig(heartbeat_interval_s=3600, response_timeout_s=30.0, profile_validity=timedelta(minutes=30))
    server = CsmsServer(store, config)
    port = await server.start("127.0.0.1", 0)
    gateway = OcppChargerGateway(server)

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=fleet_process, args=(creds, f"ws://127.0.0.1:{port}/ocpp", args.protocol, child))
    proc.start()
    loop = asyncio.get_running_loop()
    hello = await loop.run_in_executor(None, parent.recv)
    # wait until every charger's boot re-sync (device model, default profile, test profile) is done
    t_sync = time.perf_counter()
    booted = sum(1 for s in server.sessions.values() if s.booted)
    while booted < hello["connected"] or server._tasks:
        await asyncio.sleep(0.2)
        booted = sum(1 for s in server.sessions.values() if s.booted)
    sync_s = time.perf_counter() - t_sync

    ids = list(server.sessions)
    csms_cpu0 = time.process_time()
    parent.send(("cpu",))
    sim_cpu0 = await loop.run_in_executor(None, parent.recv)
    fanout_wall0 = time.perf_counter()
    round_s: list[float] = []
    per_charger: list[float] = []
    not_accepted = 0
    for r in range(args.rounds):
        valid = utc_now() + timedelta(minutes=5)
        p_kw = -5.0 if r % 2 == 0 else 4.0

        async def one(cid: str, p: float = p_kw, until: Any = valid) -> tuple[float, AckStatus]:
            t = time.perf_counter()
            [ack] = await gateway.send_setpoints([Setpoint(cid, p, until)])
            return time.perf_counter() - t, ack.status

        t = time.perf_counter()
        results = await asyncio.gather(*(one(cid) for cid in ids))
        round_s.append(time.perf_counter() - t)
        per_charger.extend(x for x, _ in results)
        not_accepted += sum(1 for _, status in results if status is not AckStatus.ACCEPTED)

    fanout_wall = time.perf_counter() - fanout_wall0
    fanout_csms_cpu = time.process_time() - csms_cpu0
    parent.send(("cpu",))
    fanout_sim_cpu = await loop.run_in_executor(None, parent.recv) - sim_cpu0
    csms_cpu1 = time.process_time()
    parent.send(("blast", args.blast_s))
    blast = await loop.run_in_executor(None, parent.recv)
    blast_csms_cpu = time.process_time() - csms_cpu1
    parent.send(("stop",))
    await loop.run_in_executor(None, proc.join, 60)
    await server.stop()
    return {
        "bench": "csms",
        "chargers": args.chargers,
        "protocol": args.protocol,
        "database": engine.dialect.name,
        "connected": hello["connected"],
        "connect_failed": hello["failed"],
        "first_failure": hello["first_failure"],
        "connect_all_s": round(hello["connect_s"], 2),
        "boot_resync_s": round(sync_s, 2),
        "provision_s": round(provision_s, 2),
        "fanout_rounds": args.rounds,
        "fanout_all_acked_p50_s": round(statistics.median(round_s), 3),
        "fanout_all_acked_max_s": round(max(round_s), 3),
        "fanout_per_charger_p50_ms": round(1000 * pct(per_charger, 0.5), 1),
        "fanout_per_charger_p99_ms": round(1000 * pct(per_charger, 0.99), 1),
        "fanout_not_accepted": not_accepted,
        "metervalues_round_trips_per_s": round(blast["round_trips"] / blast["elapsed_s"], 1),
        "metervalues_p50_ms": round(blast["p50_ms"], 1),
        "metervalues_p99_ms": round(blast["p99_ms"], 1),
        "metervalues_errors": blast["errors"],
        "fanout_cpu_share_csms": round(fanout_csms_cpu / fanout_wall, 2),
        "fanout_cpu_share_sim": round(fanout_sim_cpu / fanout_wall, 2),
        "metervalues_cpu_share_csms": round(blast_csms_cpu / blast["elapsed_s"], 2),
        "metervalues_cpu_share_sim": round(blast["sim_cpu_s"] / blast["elapsed_s"], 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "telemetry_rows_stored": server.writer.totals["samples_stored"],
        "telemetry_batches": server.writer.batches,
        "csms_workers": 1,
        "cpu_count": os.cpu_count(),
    }


async def multi_worker_main(args: argparse.Namespace) -> dict[str, Any]:
    """W CSMS worker processes on one port; the fan-out goes through the NATS router."""
    import uuid

    from v2g.adapters.ocpp.routing import RoutedChargerGateway, registry_bucket
    from v2g.runtime.workers import WorkerPool, WorkerSpec, free_port, start_workers

    raise_open_file_limit(args.chargers + 512)
    tmp = tempfile.mkdtemp(prefix="v2g-bench-")
    url = os.environ.get("V2G_BENCH_DATABASE_URL") or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
    nats_url = os.environ.get("V2G_BENCH_NATS_URL", "nats://127.0.0.1:4222")
    engine = make_engine(url)
    upgrade(engine)
    seed(engine)
    store = SqlDeviceStore(engine)
    t0 = time.perf_counter()
    creds = provision_simulated(
        store, args.chargers, args.protocol, hasher=Argon2Hasher(simulated=True), prefix="BENCH"
    )
    provision_s = time.perf_counter() - t0
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    port = free_port("127.0.0.1")
    specs = [
        WorkerSpec(i, url, "127.0.0.1", port, nats_url, namespace, heartbeat_interval_s=3600, response_timeout_s=30.0)
        for i in range(args.workers)
    ]
    router = await RoutedChargerGateway.connect(nats_url, timeout_s=120.0, namespace=namespace)
    pool = WorkerPool(specs, restart=False)
    worker_ids = await start_workers(pool, router.nc, namespace)

    async def statuses() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(router.worker_status(w) for w in worker_ids)))

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=fleet_process, args=(creds, f"ws://127.0.0.1:{port}/ocpp", args.protocol, child))
    proc.start()
    loop = asyncio.get_running_loop()
    hello = await loop.run_in_executor(None, parent.recv)
    t_sync = time.perf_counter()
    while True:
        st = await statuses()
        if sum(s["booted"] for s in st) >= hello["connected"] and not any(s["pending_tasks"] for s in st):
            break
        await asyncio.sleep(0.2)
    await router.wait_count(hello["connected"], timeout_s=120)  # the registry mirror catches up
    sync_s = time.perf_counter() - t_sync
    ids = list(router.where)
    per_worker = {w: sum(1 for x in router.where.values() if x == w) for w in worker_ids}

    cpu0 = sum(s["cpu_s"] for s in await statuses())
    parent.send(("cpu",))
    sim_cpu0 = await loop.run_in_executor(None, parent.recv)
    fanout_wall0 = time.perf_counter()
    round_s: list[float] = []
    not_accepted = 0
    for r in range(args.rounds):
        valid = utc_now() + timedelta(minutes=5)
        p_kw = -5.0 if r % 2 == 0 else 4.0
        t = time.perf_counter()
        acks = await router.send_setpoints([Setpoint(cid, p_kw, valid) for cid in ids])
        round_s.append(time.perf_counter() - t)
        not_accepted += sum(1 for a in acks if a.status is not AckStatus.ACCEPTED)
    fanout_wall = time.perf_counter() - fanout_wall0
    fanout_csms_cpu = sum(s["cpu_s"] for s in await statuses()) - cpu0
    parent.send(("cpu",))
    fanout_sim_cpu = await loop.run_in_executor(None, parent.recv) - sim_cpu0
    cpu1 = sum(s["cpu_s"] for s in await statuses())
    parent.send(("blast", args.blast_s))
    blast = await loop.run_in_executor(None, parent.recv)
    final = await statuses()
    blast_csms_cpu = sum(s["cpu_s"] for s in final) - cpu1
    load = os.getloadavg()[0]
    parent.send(("stop",))
    await loop.run_in_executor(None, proc.join, 60)
    await loop.run_in_executor(None, pool.stop)
    with contextlib.suppress(Exception):
        await router.nc.jetstream().delete_key_value(registry_bucket(namespace))
    await router.close()
    return {
        "bench": "csms",
        "chargers": args.chargers,
        "protocol": args.protocol,
        "database": engine.dialect.name,
        "connected": hello["connected"],
        "connect_failed": hello["failed"],
        "first_failure": hello["first_failure"],
        "connected_per_worker": sorted(per_worker.values()),
        "connect_all_s": round(hello["connect_s"], 2),
        "boot_resync_s": round(sync_s, 2),
        "provision_s": round(provision_s, 2),
        "fanout_rounds": args.rounds,
        "fanout_routing": "one NATS request per worker and round",
        "fanout_all_acked_p50_s": round(statistics.median(round_s), 3),
        "fanout_all_acked_max_s": round(max(round_s), 3),
        "fanout_per_charger_p50_ms": None,
        "fanout_per_charger_p99_ms": None,
        "fanout_not_accepted": not_accepted,
        "metervalues_round_trips_per_s": round(blast["round_trips"] / blast["elapsed_s"], 1),
        "metervalues_p50_ms": round(blast["p50_ms"], 1),
        "metervalues_p99_ms": round(blast["p99_ms"], 1),
        "metervalues_errors": blast["errors"],
        "fanout_cpu_share_csms": round(fanout_csms_cpu / fanout_wall, 2),
        "fanout_cpu_share_sim": round(fanout_sim_cpu / fanout_wall, 2),
        "metervalues_cpu_share_csms": round(blast_csms_cpu / blast["elapsed_s"], 2),
        "metervalues_cpu_share_sim": round(blast["sim_cpu_s"] / blast["elapsed_s"], 2),
        "load_average_1m": round(load, 2),
        "telemetry_rows_stored": sum(s["telemetry_rows_stored"] for s in final),
        "telemetry_batches": sum(s["telemetry_batches"] for s in final),
        "csms_workers": args.workers,
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chargers", type=int, default=5000)
    parser.add_argument("--protocol", default="2.1", choices=["1.6", "2.0.1", "2.1"])
    parser.add_argument("--workers", type=int, default=1, help="CSMS worker processes (more than 1 routes over NATS)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--blast-s", type=float, default=10.0)
    args = parser.parse_args()
    result = asyncio.run(platform_main(args))
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
