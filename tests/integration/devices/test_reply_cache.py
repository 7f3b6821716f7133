"""Duplicate CALLs: recognised by message id, action and payload within one connection only.

OCPP-J requires message ids to be unique within a connection, and chargers restart their counters
after a reboot: a reply kept from an earlier connection must never answer a new message.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.devices.conftest import Platform
from tests.integration.devices.frames import VERSIONS, boot, heartbeat, meter, status
from tests.integration.devices.test_exactly_once import raw_client, rpc
from v2g.units import utc_now

ENERGY = "Energy.Active.Import.Register"


@pytest.mark.parametrize("version", VERSIONS)
async def test_reused_ids_after_reconnect_are_new_messages(platform: Platform, version: str) -> None:
    reg = platform.register(version)
    cid, password = reg.charger.id, reg.password
    at = utc_now().replace(microsecond=0)
    async with raw_client(platform, version, cid, password) as ws:
        first = await rpc(ws, boot("1", version))
        assert first[:2] == [3, "1"]
        assert "interval" in first[2]  # type: ignore[operator]
        assert (await rpc(ws, heartbeat("2")))[:2] == [3, "2"]
    async with raw_client(platform, version, cid, password) as ws:  # the charger rebooted: ids start again
        assert await rpc(ws, status("1", version, at)) == [3, "1", {}]
        assert await rpc(ws, meter("2", version, at, 4321.0)) == [3, "2", {}]
    readings = platform.store.telemetry(cid, measurand=ENERGY)
    assert [r.value for r in readings] == [4321.0]  # the acknowledged reading is stored
    assert platform.server.stats["duplicate_calls"] == 0


@pytest.mark.parametrize("version", VERSIONS)
async def test_reused_id_with_another_message_is_processed(platform: Platform, version: str) -> None:
    reg = platform.register(version)
    at = utc_now().replace(microsecond=0)
    async with raw_client(platform, version, reg.charger.id, reg.password) as ws:
        assert await rpc(ws, meter("7", version, at, 100.0)) == [3, "7", {}]
        # the same id again with the same message: a repeat, answered from the cache
        assert await rpc(ws, meter("7", version, at, 100.0)) == [3, "7", {}]
        # the same id with another payload, then another action: both are new messages
        later = at + timedelta(minutes=1)
        assert await rpc(ws, meter("7", version, later, 200.0)) == [3, "7", {}]
        reply = await rpc(ws, heartbeat("7"))
        assert reply[:2] == [3, "7"]
        assert "currentTime" in reply[2]  # type: ignore[operator]
    readings = platform.store.telemetry(reg.charger.id, measurand=ENERGY)
    assert [r.value for r in readings] == [100.0, 200.0]
    assert platform.server.stats["duplicate_calls"] == 1


async def test_reply_cache_ends_with_the_connection(platform: Platform) -> None:
    reg = platform.register("2.0.1")
    at = utc_now().replace(microsecond=0)
    async with raw_client(platform, "2.0.1", reg.charger.id, reg.password) as ws:
        await rpc(ws, meter("m-1", "2.0.1", at, 1.0))
        session = platform.server.sessions[reg.charger.id]
        assert len(session.replies) == 1
    async with raw_client(platform, "2.0.1", reg.charger.id, reg.password) as ws:
        await rpc(ws, heartbeat("h-1"))
        assert len(platform.server.sessions[reg.charger.id].replies) == 1
