"""Two CSMS workers on one port (SO_REUSEPORT), commands routed over NATS to the worker holding each charger."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from sqlalchemy import Engine

from tests.integration.devices.conftest import TEST_CONFIG, Platform, seed_site, wait_for
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.ocpp.routing import CsmsWorkerNode, RoutedChargerGateway, RoutingError, registry_bucket
from v2g.adapters.ocpp.server import CsmsServer
from v2g.devices import ChargerRegistration
from v2g.fleet.schedule import PowerSchedule
from v2g.services.devices.ports import AckStatus, FrequencyCurvePoint, Setpoint
from v2g.sim.ocpp_client import SimCharger, connect_with_retry
from v2g.units import utc_now

NATS_URL = "nats://127.0.0.1:4222"
N_CHARGERS = 12


@dataclass
class Cluster:
    platform: Platform  # worker A's server and the shared store (for registering chargers)
    servers: list[CsmsServer]
    nodes: list[CsmsWorkerNode]
    worker_ncs: list[Client]
    router: RoutedChargerGateway
    sims: list[SimCharger] = field(default_factory=list)


async def _nats() -> Client:
    try:
        return await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"NATS not reachable at {NATS_URL}: {exc}")


@pytest.fixture
async def cluster(engine: Engine) -> AsyncIterator[Cluster]:
    seed_site(engine)
    namespace = f"t{uuid.uuid4().hex[:10]}"
    store = SqlDeviceStore(engine)
    servers = [CsmsServer(store, TEST_CONFIG), CsmsServer(store, TEST_CONFIG)]
    port = await servers[0].start("127.0.0.1", 0, reuse_port=True)
    await servers[1].start("127.0.0.1", port, reuse_port=True)
    worker_ncs = [await _nats(), await _nats()]
    nodes = [
        CsmsWorkerNode(s, nc, f"w{i}", namespace=namespace)
        for i, (s, nc) in enumerate(zip(servers, worker_ncs, strict=False))
    ]
    for node in nodes:
        await node.start()
    router = RoutedChargerGateway(await _nats(), timeout_s=5.0, namespace=namespace)
    await router.start()
    platform = Platform(engine, store, servers[0], nodes[0].gateway, port)
    result = Cluster(platform, servers, nodes, worker_ncs, router)
    try:
        yield result
    finally:
        await asyncio.gather(*(s.stop() for s in result.sims), return_exceptions=True)
        for server in servers:
            await server.stop()
        for node in nodes:
            await node.stop()
        for nc in worker_ncs:
            if not nc.is_closed:
                await nc.close()
        with contextlib.suppress(Exception):
            await router.nc.jetstream().delete_key_value(registry_bucket(namespace))
        await router.close()


async def _connect(cluster: Cluster, n: int) -> list[ChargerRegistration]:
    regs = [cluster.platform.register("2.1") for _ in range(n)]
    sims = [cluster.platform.sim(reg, "2.1") for reg in regs]
    cluster.sims.extend(sims)
    await asyncio.gather(*(sim.start() for sim in sims))
    await cluster.router.wait_registered([r.charger.id for r in regs], timeout_s=10)
    return regs


async def test_chargers_spread_over_both_workers_and_fan_out_is_one_message_per_worker(cluster: Cluster) -> None:
    events: list[tuple[str, str]] = []
    cluster.router.on_device_event.append(lambda cid, kind, _detail: events.append((cid, kind)))
    regs = await _connect(cluster, N_CHARGERS)
    ids = [r.charger.id for r in regs]
    # the installation journey hears of every boot and accepted test profile, whichever worker saw it
    await wait_for(lambda: {(cid, k) for cid in ids for k in ("boot", "test_profile_accepted")} <= set(events))
    held = [set(s.sessions) for s in cluster.servers]
    assert all(held), f"the kernel gave every connection to one worker: {held}"
    assert held[0] | held[1] == set(ids)
    assert not held[0] & held[1]
    assert {cid: cluster.router.where[cid] for cid in ids} == {cid: ("w0" if cid in held[0] else "w1") for cid in ids}

    before = [n.requests for n in cluster.nodes]
    setpoints = [Setpoint(cid, -4.0 if i % 2 else 3.0, utc_now() + timedelta(minutes=5)) for i, cid in enumerate(ids)]
    acks = await cluster.router.send_setpoints(setpoints)
    assert [a.charger_id for a in acks] == ids  # answers in the order asked
    assert all(a.status is AckStatus.ACCEPTED for a in acks), acks
    assert [n.requests - b for n, b in zip(cluster.nodes, before, strict=False)] == [1, 1]  # batched per worker

    now = utc_now()
    schedules = [PowerSchedule(f"ev-{cid}", now, (5.0, -3.0, 2.0, 0.0), charger_id=cid) for cid in ids]
    acks = await cluster.router.send_schedules(schedules)
    assert all(a.status is AckStatus.ACCEPTED for a in acks), acks
    for cid in ids:  # each worker recorded the plan it installed
        await wait_for(lambda c=cid: any(p["purpose"] == "plan" for p in cluster.platform.store.profiles(c)))

    curve = [FrequencyCurvePoint(49.8, -10.0), FrequencyCurvePoint(50.0, 0.0), FrequencyCurvePoint(50.2, 10.0)]
    ack = await cluster.router.configure_frequency_curve(ids[-1], curve)
    assert ack.status is AckStatus.ACCEPTED, ack
    bad = await cluster.router.configure_frequency_curve(ids[0], list(reversed(curve)))
    assert bad.status is AckStatus.REJECTED
    assert "rising frequency" in bad.detail


async def test_command_to_a_charger_connected_nowhere_answers_offline(cluster: Cluster) -> None:
    regs = await _connect(cluster, 2)
    never = cluster.platform.register("2.1").charger.id
    acks = await cluster.router.send_setpoints(
        [Setpoint(never, 2.0), Setpoint(regs[0].charger.id, 2.0), Setpoint("no-such-charger", 1.0)]
    )
    assert [a.status for a in acks] == [AckStatus.OFFLINE, AckStatus.ACCEPTED, AckStatus.OFFLINE]
    assert "no live connection" in acks[0].detail

    gone = cluster.sims[1]
    await gone.stop()
    await wait_for(lambda: gone.charger_id not in cluster.router.where)
    [ack] = await cluster.router.send_setpoints([Setpoint(gone.charger_id, 2.0)])
    assert ack.status is AckStatus.OFFLINE
    ack = await cluster.router.deactivate(gone.charger_id)
    assert ack.status is AckStatus.OFFLINE
    assert "next handshake" in ack.detail


async def test_a_dead_worker_answers_offline_until_its_chargers_reconnect_to_the_other(cluster: Cluster) -> None:
    regs = await _connect(cluster, N_CHARGERS)
    ids = [r.charger.id for r in regs]
    now = utc_now()
    acks = await cluster.router.send_schedules(
        [PowerSchedule(f"ev-{cid}", now, (6.0, -2.0, 4.0), charger_id=cid) for cid in ids]
    )
    assert all(a.status is AckStatus.ACCEPTED for a in acks), acks
    victims = sorted(cluster.servers[1].sessions)
    assert victims

    # worker 1 dies: its NATS connection goes first (no clean-up of the registry), then its sockets
    await cluster.nodes[1].stop()
    await cluster.worker_ncs[1].close()
    await cluster.servers[1].stop()
    acks = await cluster.router.send_setpoints([Setpoint(cid, 3.0) for cid in ids])
    status = {a.charger_id: a.status for a in acks}
    assert {cid for cid, s in status.items() if s is AckStatus.OFFLINE} == set(victims)
    assert all(status[cid] is AckStatus.ACCEPTED for cid in ids if cid not in victims)
    assert all("gone" in a.detail for a in acks if a.charger_id in victims)

    # the chargers notice the closed socket and reconnect: only worker 0 is listening now
    orphans = [sim for sim in cluster.sims if sim.charger_id in victims]
    await wait_for(lambda: not any(sim.connected.is_set() for sim in orphans))
    await asyncio.gather(*(sim.reconnect() for sim in orphans))
    await wait_for(lambda: all(cluster.router.where.get(cid) == "w0" for cid in victims), limit_s=10)
    acks = await cluster.router.send_setpoints([Setpoint(cid, -3.0) for cid in ids])
    assert all(a.status is AckStatus.ACCEPTED for a in acks), acks

    # the current plan followed them to the surviving worker
    def replanned(cid: str) -> bool:
        return sum(p["purpose"] in ("plan", "plan_resync") for p in cluster.platform.store.profiles(cid)) >= 2

    await wait_for(lambda: all(replanned(cid) for cid in victims), limit_s=10)


async def test_a_malformed_batch_is_refused_with_the_field_named(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    with pytest.raises(RoutingError, match="op: unknown operation 'explode'"):
        await node.handle({"op": "explode", "items": []})
    with pytest.raises(RoutingError, match="items: must be a list"):
        await node.handle({"op": "setpoints", "items": "all"})
    reply = await cluster.router.nc.request(
        f"{node.namespace}.csms.worker.{node.worker_id}", b'{"op": "setpoints", "items": [["X"]]}', timeout=5
    )
    assert json.loads(reply.data)["error"].startswith("RoutingError: items[0]: not a valid setpoints item")
    [ack] = await cluster.router.send_setpoints([Setpoint("nobody", 1.0)])  # the worker is still serving
    assert ack.status is AckStatus.OFFLINE


@pytest.mark.slow
async def test_cli_worker_pool_spreads_chargers_and_survives_a_killed_worker(platform_db: str, engine: Engine) -> None:
    """``v2g csms --workers 2`` as real processes; one is killed, the pool restarts it, chargers come back."""
    from v2g.adapters.db.provisioning import provision_simulated
    from v2g.adapters.ocpp.credentials import Argon2Hasher
    from v2g.runtime.workers import free_port, ready_subject
    from v2g.sim.fleet import start_fleet

    namespace = f"t{uuid.uuid4().hex[:10]}"
    store = SqlDeviceStore(engine)
    creds = provision_simulated(store, N_CHARGERS, "2.1", hasher=Argon2Hasher(simulated=True), prefix="POOL")
    port = free_port("127.0.0.1")
    env = {
        **os.environ,
        "V2G_DATABASE_URL": platform_db,
        "V2G_NATS_NAMESPACE": namespace,
        "V2G_OCPP_WORKERS": "2",
        "V2G_LOG_LEVEL": "WARNING",
    }
    cli = [str(Path(sys.executable).parent / "v2g"), "csms", "--host", "127.0.0.1", "--port", str(port)]
    router = RoutedChargerGateway(await _nats(), timeout_s=10.0, namespace=namespace)
    await router.start()
    ready: asyncio.Queue[str] = asyncio.Queue()

    async def on_ready(msg: Msg) -> None:
        await ready.put(msg.data.decode())

    await router.nc.subscribe(ready_subject(namespace), cb=on_ready)
    proc = await asyncio.create_subprocess_exec(
        *cli, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    fleet = None
    try:
        started = {await asyncio.wait_for(ready.get(), 30), await asyncio.wait_for(ready.get(), 30)}
        fleet = await start_fleet(creds, f"ws://127.0.0.1:{port}/ocpp", "2.1", plug_in=False, meter_loop=False)
        ids = [c.charger_id for c in creds]
        assert len(fleet.chargers) == N_CHARGERS, fleet.failed
        await router.wait_registered(ids, timeout_s=20)
        workers = set(router.where.values())
        assert workers == started, f"all connections went to one worker: {workers}"
        acks = await router.send_setpoints([Setpoint(cid, 4.0) for cid in ids])
        assert all(a.status is AckStatus.ACCEPTED for a in acks), acks

        victim = sorted(workers)[0]
        os.kill(int(victim.rsplit("-", 1)[1]), signal.SIGKILL)
        orphans = [sim for sim in fleet.chargers if router.where[sim.charger_id] == victim]
        await wait_for(lambda: not any(sim.connected.is_set() for sim in orphans), limit_s=10)
        acks = await router.send_setpoints([Setpoint(sim.charger_id, 4.0) for sim in orphans])
        assert all(a.status is AckStatus.OFFLINE for a in acks), acks
        restarted = await asyncio.wait_for(ready.get(), 30)  # the pool replaced the dead worker
        assert restarted not in started
        await asyncio.gather(*(connect_with_retry(sim, attempts=40, delay_s=0.25) for sim in orphans))
        await wait_for(lambda: all(router.where[s.charger_id] != victim for s in orphans), limit_s=20)
        acks = await router.send_setpoints([Setpoint(cid, -2.0) for cid in ids])
        assert all(a.status is AckStatus.ACCEPTED for a in acks), acks
    finally:
        if fleet is not None:
            await fleet.stop()
        proc.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(proc.communicate(), 30))[0].decode()
        with contextlib.suppress(Exception):
            await router.nc.jetstream().delete_key_value(registry_bucket(namespace))
        await router.close()
    assert proc.returncode == 0, output
    assert "2 workers on ws://127.0.0.1" in output
