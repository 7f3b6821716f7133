"""Installation hooks: register (id, credentials, V2G site id), verify connectivity, deactivate remotely."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from tests.integration.devices.conftest import HASHER, SITE_ID, Platform, settle, wait_for
from v2g.adapters.db.fleet_repo import NotFoundError
from v2g.devices import DeviceError
from v2g.fleet.model import ChargerProtocol
from v2g.services.devices.installation import deactivate_charger, register_charger, verify_connectivity
from v2g.services.devices.ports import AckStatus


async def test_register_verify_deactivate(platform: Platform) -> None:
    reg = platform.register("2.1")
    assert reg.v2g_site_id.startswith("SE-V2G-")
    assert platform.store.charger(reg.charger.id).v2g_site_id == reg.v2g_site_id
    auth = platform.store.auth(reg.charger.id)
    assert auth is not None
    assert reg.password not in auth.password_hash  # stored hashed only
    assert HASHER.verify(auth.password_hash, reg.password)

    before = verify_connectivity(platform.store, reg.charger.id)
    assert not before.verified
    assert any("BootNotification" in p for p in before.problems)

    sim = platform.sim(reg, "2.1")
    await sim.start()
    await settle(platform, reg.charger.id)
    after = verify_connectivity(platform.store, reg.charger.id)
    assert after.verified, after.problems
    assert after.online

    ack = await deactivate_charger(platform.store, platform.gateway, reg.charger.id)
    assert ack.status is AckStatus.ACCEPTED, ack
    assert "ClearChargingProfile" in sim.stats.commands
    assert "ChangeAvailability:Inoperative" in sim.stats.commands
    await wait_for(lambda: not sim.connected.is_set())
    assert platform.store.charger(reg.charger.id).active is False
    with pytest.raises(InvalidStatus) as refused:
        await sim.start()
    assert refused.value.response.status_code == 403
    await sim.stop()


async def test_deactivate_offline_charger_still_refuses_it_later(platform: Platform) -> None:
    reg = platform.register("1.6")
    ack = await deactivate_charger(platform.store, platform.gateway, reg.charger.id)
    assert ack.status is AckStatus.OFFLINE
    assert platform.store.charger(reg.charger.id).active is False


async def test_unknown_or_bad_registrations_are_named(platform: Platform) -> None:
    with pytest.raises(NotFoundError, match="CP-NONE"):
        verify_connectivity(platform.store, "CP-NONE")
    with pytest.raises(DeviceError, match="security_profile"):
        register_charger(
            platform.store,
            HASHER,
            site_id=SITE_ID,
            vendor="v",
            model="m",
            protocol=ChargerProtocol.OCPP21,
            max_charge_kw=11.0,
            max_discharge_kw=11.0,
            security_profile=4,
        )
    with pytest.raises(DeviceError, match=r"charger\.id"):
        register_charger(
            platform.store,
            HASHER,
            site_id=SITE_ID,
            vendor="v",
            model="m",
            protocol=ChargerProtocol.OCPP21,
            max_charge_kw=11.0,
            max_discharge_kw=11.0,
            charger_id="bad id/with slash",
        )
    reg = platform.register("2.1", charger_id="CP-TWICE")
    with pytest.raises(ValueError, match="already registered"):
        platform.register("2.1", charger_id=reg.charger.id)


async def test_device_events_are_reported_for_the_journey(platform: Platform) -> None:
    events: list[tuple[str, str]] = []
    platform.server.on_device_event.append(lambda cid, kind, detail: events.append((cid, kind)))
    reg = platform.register("2.0.1")
    sim = platform.sim(reg, "2.0.1")
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        await wait_for(lambda: len(events) == 2)
        assert events == [(reg.charger.id, "boot"), (reg.charger.id, "test_profile_accepted")]
    finally:
        await sim.stop()


async def test_marked_inactive_live_charger_is_deactivated_remotely(platform: Platform) -> None:
    reg = platform.register("2.1")
    sim = platform.sim(reg, "2.1")
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        platform.store.set_active(reg.charger.id, False)  # e.g. the termination journey's deactivate_charger
        assert await platform.server.enforce_deactivation() == [reg.charger.id]
        await wait_for(lambda: not sim.connected.is_set())
        assert "ChangeAvailability:Inoperative" in sim.stats.commands
        assert sim.wallbox.profiles == {}
    finally:
        await sim.stop()
