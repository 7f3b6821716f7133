"""Fail-safe: default profile, validity window, re-sync on reconnect, rejections, timeouts, liveness."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.integration.devices.conftest import TEST_CONFIG, Platform, ev_battery, settle, wait_for
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.ocpp.server import CsmsServer
from v2g.adapters.ocpp.session import DEFAULT_PROFILE_ID, PLAN_PROFILE_ID
from v2g.fleet.schedule import PowerSchedule
from v2g.services.devices.ports import AckStatus, Setpoint
from v2g.sim.ocpp_client import Faults
from v2g.sim.wallbox import fallback_meets_target
from v2g.units import floor_quarter, utc_now

MINUTE = timedelta(minutes=1)


def discharge_schedule(charger_id: str, hours: int = 4) -> PowerSchedule:
    return PowerSchedule("ev-1", floor_quarter(utc_now()), (-10.0,) * (4 * hours), charger_id=charger_id)


@pytest.mark.parametrize("protocol", ["2.0.1", "2.1"])
async def test_platform_lost_stops_discharge_and_meets_departure(platform: Platform, protocol: str) -> None:
    reg = platform.register(protocol)
    sim = platform.sim(reg, protocol)
    await sim.start()
    departure = utc_now() + timedelta(hours=8)
    try:
        await settle(platform, reg.charger.id)
        await sim.plug_in(ev_battery(30.0), 50.0, departure)

        def default_reinstalled() -> bool:
            defaults = [p for p in platform.store.profiles(reg.charger.id) if p["purpose"] == "fail_safe_default"]
            return len(defaults) >= 2  # once on boot, once more when the EV's needs arrived

        await wait_for(default_reinstalled)
        [ack] = await platform.gateway.send_schedules([discharge_schedule(reg.charger.id)])
        assert ack.status is AckStatus.ACCEPTED
        now = utc_now()
        assert sim.wallbox.requested_p_kw(now) == pytest.approx(-10.0)
        plan = sim.wallbox.profiles[PLAN_PROFILE_ID]
        assert plan.valid_to is not None
        assert plan.valid_to <= now + TEST_CONFIG.profile_validity
        default = sim.wallbox.profiles[DEFAULT_PROFILE_ID]
        assert default.valid_to is None
        assert default.periods[0].limit_kw is not None
        assert 0 < default.periods[0].limit_kw < 11.0  # just enough for the departure target, not full power
    finally:
        await sim.stop()  # the platform is gone from the charger's point of view
    wallbox = sim.wallbox
    wallbox.advance(utc_now())
    # discharging continues only until the plan's validity window closes, then the default takes over
    assert wallbox.requested_p_kw(plan.valid_to - timedelta(seconds=1)) == pytest.approx(-10.0)
    assert wallbox.requested_p_kw(plan.valid_to + timedelta(seconds=1)) > 0
    wallbox.advance(plan.valid_to)
    assert fallback_meets_target(wallbox, departure)


async def test_reconnect_resyncs_profiles(platform: Platform) -> None:
    reg = platform.register("2.1")
    sim = platform.sim(reg, "2.1")
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        await sim.plug_in(ev_battery(30.0), 50.0, utc_now() + timedelta(hours=8))
        [ack] = await platform.gateway.send_schedules([discharge_schedule(reg.charger.id)])
        assert ack.status is AckStatus.ACCEPTED
        await sim.disconnect()
        sim.wallbox.clear()  # the charger lost its profiles (e.g. a power cut)
        await sim.reconnect()
        await sim.heartbeat()  # the first message of the new connection triggers the re-sync
        await wait_for(lambda: PLAN_PROFILE_ID in sim.wallbox.profiles and DEFAULT_PROFILE_ID in sim.wallbox.profiles)
        assert sim.wallbox.requested_p_kw(utc_now()) == pytest.approx(-10.0)

        def resync_recorded() -> bool:  # the platform records the profile once the charger's answer is stored
            return "plan_resync" in [p["purpose"] for p in platform.store.profiles(reg.charger.id)]

        await wait_for(resync_recorded)
    finally:
        await sim.stop()


async def test_rejected_profile_is_marked_and_reported(platform: Platform) -> None:
    reg = platform.register("2.0.1")
    sim = platform.sim(reg, "2.0.1", faults=Faults(reject_profiles=True))
    told: list[tuple[str, str, str]] = []
    platform.server.on_profile_rejected.append(lambda cid, purpose, detail: told.append((cid, purpose, detail)))
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        [ack] = await platform.gateway.send_schedules([discharge_schedule(reg.charger.id)])
        assert ack.status is AckStatus.REJECTED
        assert "rejected" in ack.detail
        state = platform.store.state(reg.charger.id)
        assert state["last_profile_status"] == "rejected"
        assert (reg.charger.id, "plan", "") in told
        assert not platform.store.connectivity(reg.charger.id).verified  # the test profile was rejected too
    finally:
        await sim.stop()


async def test_slow_reply_times_out_and_connection_survives(platform: Platform) -> None:
    reg = platform.register("2.1")
    sim = platform.sim(reg, "2.1")
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        platform.server.sessions[reg.charger.id]._response_timeout = 0.2
        sim.faults.reply_delay_s = 0.5
        [ack] = await platform.gateway.send_setpoints(
            [Setpoint(reg.charger.id, -5.0, utc_now() + timedelta(minutes=1))]
        )
        assert ack.status is AckStatus.TIMEOUT
        sim.faults.reply_delay_s = 0.0
        await wait_for(lambda: sim.stats.delayed_replies == 1)  # the late answer goes out and is ignored
        platform.server.sessions[reg.charger.id]._response_timeout = 3.0
        [ack] = await platform.gateway.send_setpoints(
            [Setpoint(reg.charger.id, -5.0, utc_now() + timedelta(minutes=1))]
        )
        assert ack.status is AckStatus.ACCEPTED
    finally:
        await sim.stop()


async def test_offline_charger_gets_offline_ack_and_plan_on_reconnect(platform: Platform) -> None:
    reg = platform.register("2.0.1")
    [ack] = await platform.gateway.send_schedules([discharge_schedule(reg.charger.id)])
    assert ack.status is AckStatus.OFFLINE
    sim = platform.sim(reg, "2.0.1")
    await sim.start()
    try:
        await wait_for(lambda: PLAN_PROFILE_ID in sim.wallbox.profiles)
        assert sim.wallbox.profiles[PLAN_PROFILE_ID].periods[0].limit_kw == pytest.approx(-10.0)
    finally:
        await sim.stop()


async def test_unknown_charger_in_schedule_is_named(platform: Platform) -> None:
    [ack] = await platform.gateway.send_schedules([discharge_schedule("CP-NOPE")])
    assert ack.status is AckStatus.REJECTED
    assert "charger_id" in ack.detail


async def test_silent_charger_is_detected_offline(platform: Platform) -> None:
    config = replace(TEST_CONFIG, heartbeat_interval_s=1, offline_after_missed_heartbeats=1.5)
    server = CsmsServer(SqlDeviceStore(platform.engine), config)
    port = await server.start()
    reg = platform.register("2.0.1")
    sim = platform.sim(reg, "2.0.1", url=f"ws://127.0.0.1:{port}/ocpp")
    try:
        await sim.start()
        await wait_for(lambda: not sim.connected.is_set(), limit_s=8.0)
        await wait_for(lambda: platform.store.state(reg.charger.id)["online"] is False, limit_s=4.0)
        assert server.stats["offline_detected"] >= 1
    finally:
        await sim.stop()
        await server.stop()


@pytest.mark.parametrize("protocol", ["2.0.1", "2.1"])
async def test_reconnect_sizes_default_from_stored_needs(platform: Platform, protocol: str) -> None:
    reg = platform.register(protocol)
    sim = platform.sim(reg, protocol)
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        await sim.plug_in(ev_battery(30.0), 50.0, utc_now() + timedelta(hours=8))
        await wait_for(lambda: bool(platform.store.stored_needs(reg.charger.id)))
        await sim.disconnect()
        sim.wallbox.clear()  # the charger lost its profiles
        await sim.reconnect()
        await sim.heartbeat()  # the first message of the new connection triggers the re-sync
        await wait_for(lambda: DEFAULT_PROFILE_ID in sim.wallbox.profiles)
        limit_kw = sim.wallbox.profiles[DEFAULT_PROFILE_ID].periods[0].limit_kw
        assert limit_kw is not None
        assert 0 < limit_kw < 11.0  # sized from the EV's stored needs, not full power
    finally:
        await sim.stop()
