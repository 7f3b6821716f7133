"""Central and local dispatch through the charger gateway port on the digital twin."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.shared_data import FREQUENCY_2015_01_01
from v2g.adapters.feeds.frequency import FrequencyFileError, FrequencyRecording
from v2g.dispatch.pool import ReservePool
from v2g.markets.rules import Product, default_rules
from v2g.services.devices.ports import AckBatch, AckStatus, FrequencyCurvePoint, Setpoint, SetpointBatch
from v2g.services.dispatch.central import CentralDispatcher, configure_local
from v2g.sim.replay import make_fleet, replay
from v2g.sim.twin import TwinFleet, TwinGateway, UnitSpec

RULES = default_rules()
T0 = datetime(2015, 1, 1, tzinfo=UTC)


def twin(n: int = 4, **spec: float) -> tuple[TwinFleet, TwinGateway, ReservePool]:
    specs = [
        UnitSpec(f"cp{i}", f"ev{i}", 60.0, 30.0, 12.0, 11.0, -11.0, **spec)  # type: ignore[arg-type]
        for i in range(n)
    ]
    fleet = TwinFleet(specs, now=T0)
    pool = ReservePool.build(
        [s.ev_id for s in specs],
        [s.charger_id for s in specs],
        {Product.FCR_N: [5.0] * n},
        [1.0] * n,
        [-11.0] * n,
        [11.0] * n,
    )
    return fleet, TwinGateway(fleet), pool


async def test_central_dispatch_reaches_the_required_response() -> None:
    fleet, gateway, pool = twin()
    dispatcher = CentralDispatcher(pool, {Product.FCR_N: 20.0}, gateway, RULES)
    result = await dispatcher.on_frequency(49.95)
    assert all(a.status is AckStatus.ACCEPTED for a in result.acks)
    assert result.required_kw[Product.FCR_N] == pytest.approx(10.0)
    for _ in range(10):
        fleet.advance(0.1, 49.95)
    assert 4.0 - fleet.group_power_kw() == pytest.approx(10.0)


async def test_offline_charger_is_reallocated_in_the_same_call() -> None:
    fleet, gateway, pool = twin()
    fleet.online[2] = False
    dispatcher = CentralDispatcher(pool, {Product.FCR_N: 20.0}, gateway, RULES)
    result = await dispatcher.on_frequency(49.9)
    assert result.lost == ["ev2"]
    assert not pool.available[2]
    for _ in range(10):
        fleet.advance(0.1, 49.9)
    delivered = float((pool.baseline_p_kw - fleet.p_kw)[pool.available].sum())
    assert delivered == pytest.approx(20.0)


async def test_ev_leaving_mid_event_is_covered_by_the_others_at_once() -> None:
    _fleet, gateway, pool = twin()
    dispatcher = CentralDispatcher(pool, {Product.FCR_N: 16.0}, gateway, RULES)
    await dispatcher.on_frequency(49.9)
    result = await dispatcher.ev_left("ev0")
    assert result.setpoints_kw[0] == 0.0
    assert (pool.baseline_p_kw - result.setpoints_kw)[1:].sum() == pytest.approx(16.0)
    back = await dispatcher.ev_returned("ev0")
    assert (pool.baseline_p_kw - back.setpoints_kw) == pytest.approx([4.0] * 4)


async def test_gateway_names_unknown_and_deactivated_chargers() -> None:
    _, gateway, _ = twin(1)
    acks = await gateway.send_setpoints([Setpoint("nope", 1.0)])
    assert acks[0].status is AckStatus.REJECTED
    assert "'nope'" in acks[0].detail
    await gateway.deactivate("cp0")
    assert (await gateway.send_setpoints([Setpoint("cp0", 1.0)]))[0].status is AckStatus.REJECTED
    bad = await gateway.configure_frequency_curve("cp0", [FrequencyCurvePoint(50.0, 0.0)])
    assert bad.status is AckStatus.REJECTED


async def test_a_batch_is_answered_as_its_setpoints_one_by_one() -> None:
    ids = ["cp0", "cp1", "nope", "cp2", "cp3"]
    batch = SetpointBatch(ids, np.array([0, 1, 2, 3, 4]), np.array([1.0, -2.0, 3.0, 4.0, -5.0]), T0)
    answers = {}
    for as_batch in (True, False):
        fleet, gateway, _ = twin(4)
        fleet.online[1] = False
        await gateway.deactivate("cp3")
        acks = await gateway.send_setpoints(batch if as_batch else list(batch))
        assert isinstance(acks, AckBatch) is as_batch
        answers[as_batch] = (
            [(a.charger_id, a.status, a.detail) for a in acks],
            fleet.target_p_kw.copy(),
            gateway.commands,
        )
        fleet.advance(1.0)
        assert fleet.target_p_kw == pytest.approx([1.0, 0.0, 4.0, 0.0])  # the offline and deactivated units hold
    assert answers[True][0] == answers[False][0]
    assert [s for _, s, _ in answers[True][0]] == [
        AckStatus.ACCEPTED,
        AckStatus.OFFLINE,
        AckStatus.REJECTED,
        AckStatus.ACCEPTED,
        AckStatus.REJECTED,
    ]
    assert answers[True][2] == answers[False][2] == 2
    with pytest.raises(ValueError, match="setpoints.p_kw"):
        SetpointBatch(ids, np.array([0, 1]), np.array([1.0]))


async def test_local_mode_units_follow_their_own_curve() -> None:
    fleet, gateway, pool = twin(2, delay_s=1.0)
    acks = await configure_local(pool, gateway, RULES)
    assert [a.status for a in acks] == [AckStatus.ACCEPTED] * 2
    for _ in range(20):
        fleet.advance(0.1, 49.95)  # nobody sends setpoints: the chargers measure and respond
    assert fleet.p_kw == pytest.approx([1.0 - 2.5, 1.0 - 2.5])
    for _ in range(20):
        fleet.advance(0.1, 50.05)
    assert fleet.p_kw == pytest.approx([1.0 + 2.5, 1.0 + 2.5])


def test_twin_battery_management_keeps_the_energy_window() -> None:
    fleet, _, _ = twin(1)
    fleet.command(np.array([0]), np.array([-11.0]))
    for _ in range(3 * 3600):
        fleet.advance(1.0)
    assert fleet.soc_kwh[0] == pytest.approx(12.0)
    assert fleet.p_kw[0] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
async def test_replay_1000_evs_delivers_and_keeps_owner_guarantees() -> None:
    path = FREQUENCY_2015_01_01
    recording = FrequencyRecording(path, datetime(2015, 1, 1, 6, tzinfo=UTC), 3 * 3600)
    start = datetime(2015, 1, 1, 6, tzinfo=UTC)
    summary = await replay(recording, start, 3 * 3600, make_fleet(1000, 3 * 3600), RULES)
    assert summary.seconds == 3 * 3600
    assert summary.required_mwh > 0.3
    assert len(summary.records) >= 4
    assert summary.delivered_ratio == pytest.approx(1.0, abs=0.02)
    assert summary.departures > 100
    assert summary.missed_targets == []
    assert len(summary.telemetry) == 3 * 360
    assert summary.telemetry_gaps == 0
    assert summary.telemetry[0].status == "available"
    assert summary.failures >= 1  # chargers failed mid-event and their share was re-allocated
    assert summary.below_min_soc == []
    assert summary.min_soc_margin_kwh >= 0


def test_frequency_file_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "f.csv"
    bad.write_text("utc,f_hz\n2015-01-01T00:00:00Z,50.0\n2015-01-01T00:00:01Z,abc\n", encoding="utf-8")
    with pytest.raises(FrequencyFileError, match=r"f\.csv line 3 f_hz: 'abc' is not a number"):
        FrequencyRecording(bad).window()
    gap = tmp_path / "g.csv"
    gap.write_text("utc,f_hz\n2015-01-01T00:00:00Z,49.9\n2015-01-01T00:00:03Z,50.1\n2015-01-01T00:00:04Z,\n")
    window = FrequencyRecording(gap).window()
    assert list(window.f_hz) == [49.9, 49.9, 49.9, 50.1, 50.1]
    assert window.filled == 3
    header = tmp_path / "h.csv"
    header.write_text("time,freq\n", encoding="utf-8")
    with pytest.raises(FrequencyFileError, match="expected header"):
        FrequencyRecording(header).window()


async def test_mfrr_activation_ramps_in_over_12_5_minutes_on_top_of_fcr() -> None:
    _fleet, gateway, pool = twin()
    dispatcher = CentralDispatcher(pool, {Product.FCR_N: 20.0}, gateway, RULES)
    dispatcher.activate_mfrr(16.0)
    half = await dispatcher.on_frequency(50.0, dt_s=375.0)
    assert half.required_kw[Product.MFRR] == pytest.approx(8.0)
    assert (pool.baseline_p_kw - half.setpoints_kw).sum() == pytest.approx(8.0)
    full = await dispatcher.on_frequency(49.95, dt_s=400.0)
    assert full.required_kw[Product.MFRR] == pytest.approx(16.0)
    assert (pool.baseline_p_kw - full.setpoints_kw).sum() == pytest.approx(16.0 + 10.0)
