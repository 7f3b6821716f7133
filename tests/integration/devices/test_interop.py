"""Interop over real sockets: the simulator's ``ocpp`` charge points against the CSMS, per version."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.devices.conftest import Platform, ev_battery, settle, wait_for
from v2g.fleet.schedule import PowerSchedule
from v2g.services.devices.ports import AckStatus, FrequencyCurvePoint, Setpoint
from v2g.units import floor_quarter, utc_now


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1", "2.1"])
async def test_boot_telemetry_and_plan(platform: Platform, protocol: str) -> None:
    reg = platform.register(protocol)
    sim = platform.sim(reg, protocol)
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        state = platform.store.state(reg.charger.id)
        assert state["online"] is True
        assert state["protocol"] == f"ocpp{protocol}"
        assert state["booted_at"] is not None
        assert platform.store.connectivity(reg.charger.id).verified
        assert state["discharge_supported"] is (protocol != "1.6")

        await sim.plug_in(ev_battery(30.0), 50.0, utc_now() + timedelta(hours=8))
        start = floor_quarter(utc_now())
        # the first two quarters ask the same, so the checks below (now, and 30 s later) hold even when
        # a quarter ends in between
        schedule = PowerSchedule("ev-1", start, (-7.0, -7.0, 5.0, 11.0), charger_id=reg.charger.id)
        [ack] = await platform.gateway.send_schedules([schedule])
        assert ack.status is AckStatus.ACCEPTED, ack
        now = utc_now()
        expected = -7.0 if protocol != "1.6" else 0.0
        assert sim.wallbox.requested_p_kw(now) == pytest.approx(expected)
        if protocol == "1.6":
            assert "clamped" in ack.detail

        sim.wallbox.advance(now + timedelta(seconds=30))
        await sim.meter_values()
        samples = platform.store.telemetry(reg.charger.id)
        measurands = {s.measurand for s in samples}
        assert {"Energy.Active.Import.Register", "Power.Active.Export"} <= measurands
        latest = platform.store.state(reg.charger.id)
        assert latest["p_kw"] == pytest.approx(expected, abs=0.01)
        assert latest["soc_percent"] is not None
    finally:
        await sim.stop()


async def test_v21_v2x_flow(platform: Platform) -> None:
    reg = platform.register("2.1")
    sim = platform.sim(reg, "2.1")
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        await sim.plug_in(ev_battery(30.0), 45.0, utc_now() + timedelta(hours=6))
        await wait_for(lambda: bool(platform.store.needs(reg.charger.id)))
        [needs] = platform.store.needs(reg.charger.id)
        assert needs.control_mode == "DynamicControl"
        assert needs.max_discharge_kw == pytest.approx(11.0)
        assert needs.energy_request_kwh == pytest.approx(15.0, abs=0.01)
        assert needs.departure_at is not None

        valid = utc_now() + timedelta(minutes=2)
        [ack] = await platform.gateway.send_setpoints([Setpoint(reg.charger.id, -9.0, valid)])
        assert ack.status is AckStatus.ACCEPTED
        assert sim.wallbox.requested_p_kw(utc_now()) == pytest.approx(-9.0)
        # a second setpoint inside the same validity moves the Dynamic profile via UpdateDynamicSchedule
        [ack] = await platform.gateway.send_setpoints([Setpoint(reg.charger.id, -4.0, valid)])
        assert ack.status is AckStatus.ACCEPTED
        assert sim.stats.setpoint_updates == 1
        assert sim.wallbox.requested_p_kw(utc_now()) == pytest.approx(-4.0)

        curve = [FrequencyCurvePoint(49.8, -11.0), FrequencyCurvePoint(50.0, 0.0), FrequencyCurvePoint(50.2, 11.0)]
        ack = await platform.gateway.configure_frequency_curve(reg.charger.id, curve, utc_now() + timedelta(minutes=5))
        assert ack.status is AckStatus.ACCEPTED
        sim.wallbox.frequency_hz = 49.9
        assert sim.wallbox.requested_p_kw(utc_now()) == pytest.approx(-5.5)
    finally:
        await sim.stop()


async def test_frequency_curve_is_unsupported_below_21(platform: Platform) -> None:
    reg = platform.register("2.0.1")
    sim = platform.sim(reg, "2.0.1")
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        curve = [FrequencyCurvePoint(49.8, -11.0), FrequencyCurvePoint(50.2, 11.0)]
        ack = await platform.gateway.configure_frequency_curve(reg.charger.id, curve)
        assert ack.status is AckStatus.UNSUPPORTED
    finally:
        await sim.stop()


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1", "2.1"])
async def test_operator_commands(platform: Platform, protocol: str) -> None:
    reg = platform.register(protocol)
    sim = platform.sim(reg, protocol)
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        session = platform.server.sessions[reg.charger.id]
        assert (await session.trigger("Heartbeat")).status == "accepted"
        assert (await session.reset()).status == "accepted"
        assert (await session.set_variable("OCPPCommCtrlr", "HeartbeatInterval", "120")).status == "accepted"
        name = "HeartbeatInterval"
        assert await session.get_variable("OCPPCommCtrlr", name) == "120"
        composite = await session.composite_schedule(600)
        assert composite is not None
        assert composite["status"] == "Accepted"
        assert (await session.clear_profiles()).status == "accepted"
        assert sim.wallbox.profiles == {}
        assert "TriggerMessage:Heartbeat" in sim.stats.commands
    finally:
        await sim.stop()
