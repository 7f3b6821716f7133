"""Central and local dispatch through the OCPP gateway to simulated OCPP 2.1 wallboxes over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from tests.integration.devices.conftest import TEST_CONFIG, Platform, ev_battery, seed_site, settle, wait_for
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.ocpp.gateway import OcppChargerGateway
from v2g.adapters.ocpp.server import CsmsServer
from v2g.dispatch.pool import ReservePool
from v2g.markets.rules import Product, default_rules
from v2g.services.devices.ports import AckStatus
from v2g.services.dispatch.central import CentralDispatcher, configure_local
from v2g.sim.ocpp_client import SimCharger
from v2g.units import utc_now

RULES = default_rules()


@pytest.fixture
async def platform(engine: Engine) -> AsyncIterator[Platform]:
    seed_site(engine)
    store = SqlDeviceStore(engine)
    server = CsmsServer(store, TEST_CONFIG)
    port = await server.start("127.0.0.1", 0)
    try:
        yield Platform(engine, store, server, OcppChargerGateway(server), port)
    finally:
        await server.stop()


async def fleet(platform: Platform, n: int) -> tuple[list[SimCharger], ReservePool]:
    sims = []
    for _ in range(n):
        reg = platform.register("2.1")
        sim = platform.sim(reg, "2.1")
        await sim.start()
        await settle(platform, reg.charger.id)
        await sim.plug_in(ev_battery(30.0), 45.0, utc_now() + timedelta(hours=6))
        sims.append(sim)
    for sim in sims:
        await wait_for(lambda s=sim: bool(platform.store.needs(s.charger_id)))
    ids = [s.charger_id for s in sims]
    pool = ReservePool.build(
        [f"ev-{c}" for c in ids], ids, {Product.FCR_N: [6.0] * n}, [2.0] * n, [-11.0] * n, [11.0] * n
    )
    return sims, pool


async def test_central_setpoints_reach_the_wallboxes_and_a_lost_one_is_reallocated(platform: Platform) -> None:
    sims, pool = await fleet(platform, 3)
    try:
        dispatcher = CentralDispatcher(
            pool, {Product.FCR_N: 12.0}, platform.gateway, RULES, valid_until=utc_now() + timedelta(minutes=10)
        )
        result = await dispatcher.on_frequency(49.95)  # FCR-N at 50 %: 6 kW up over 3 EVs
        assert [a.status for a in result.acks] == [AckStatus.ACCEPTED] * 3
        for sim in sims:
            assert sim.wallbox.requested_p_kw(utc_now()) == pytest.approx(0.0, abs=0.01)  # 2 kW - 2 kW
        await sims[2].stop()  # the third charger drops off
        await wait_for(lambda: sims[2].charger_id not in platform.server.sessions)
        result = await dispatcher.on_frequency(49.9)  # 12 kW up, now over 2 EVs
        assert result.lost == [f"ev-{sims[2].charger_id}"]
        for sim in sims[:2]:
            assert sim.wallbox.requested_p_kw(utc_now()) == pytest.approx(2.0 - 6.0, abs=0.01)
    finally:
        for sim in sims:
            await sim.stop()


async def test_local_mode_installs_frequency_curves_the_wallboxes_follow(platform: Platform) -> None:
    sims, pool = await fleet(platform, 2)
    try:
        acks = await configure_local(pool, platform.gateway, RULES)
        assert [a.status for a in acks] == [AckStatus.ACCEPTED] * 2
        for sim in sims:
            sim.wallbox.frequency_hz = 49.95
            assert sim.wallbox.requested_p_kw(utc_now()) == pytest.approx(2.0 - 3.0, abs=0.05)
            sim.wallbox.frequency_hz = 50.1
            assert sim.wallbox.requested_p_kw(utc_now()) == pytest.approx(2.0 + 6.0, abs=0.05)
    finally:
        for sim in sims:
            await sim.stop()
