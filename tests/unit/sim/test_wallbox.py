"""The simulated wallbox obeys profile stacks, validity windows, setpoints and frequency curves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from v2g.sim.battery import Battery, BatterySpec
from v2g.sim.ocpp_client import profile_from_2x, profile_from_16
from v2g.sim.wallbox import EvBehaviour, SimPeriod, SimProfile, Wallbox, fallback_meets_target

T0 = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


def wallbox(soc_kwh: float = 30.0, target: float = 50.0) -> Wallbox:
    box = Wallbox("CP", 11.0, 11.0)
    spec = BatterySpec(capacity_kwh=60.0, max_charge_kw=11.0, max_discharge_kw=11.0, soc_min_kwh=6.0)
    box.plug_in(Battery(spec, soc_kwh), target, T0 + timedelta(hours=8), T0)
    return box


def test_highest_valid_stack_wins_and_expiry_falls_back() -> None:
    box = wallbox()
    box.install(SimProfile(1, 0, (SimPeriod(0, limit_kw=4.0),), T0))
    box.install(SimProfile(2, 1, (SimPeriod(0, setpoint_kw=-8.0),), T0, T0, T0 + timedelta(minutes=30)))
    assert box.requested_p_kw(T0 + timedelta(minutes=10)) == -8.0
    assert box.requested_p_kw(T0 + timedelta(minutes=31)) == 4.0
    box.advance(T0 + timedelta(minutes=30))
    assert box.p_kw == pytest.approx(-8.0)
    assert fallback_meets_target(box, T0 + timedelta(hours=8))


def test_no_profile_charges_until_target() -> None:
    box = wallbox(soc_kwh=49.99, target=50.0)
    assert box.requested_p_kw(T0) == 11.0
    box.advance(T0 + timedelta(minutes=1))
    assert box.requested_p_kw(T0 + timedelta(minutes=1)) == 0.0


def test_signed_limit_and_discharge_limit() -> None:
    box = wallbox()
    box.install(SimProfile(3, 1, (SimPeriod(0, limit_kw=-6.0),), T0))
    assert box.requested_p_kw(T0) == -6.0
    box.install(SimProfile(4, 2, (SimPeriod(0, setpoint_kw=-10.0, discharge_limit_kw=-3.0),), T0))
    assert box.requested_p_kw(T0) == -3.0


def test_profile_parsers() -> None:
    p21 = profile_from_2x(
        {
            "id": 7,
            "stack_level": 2,
            "charging_profile_kind": "Absolute",
            "valid_to": "2026-11-25T19:00:00Z",
            "charging_schedule": [
                {
                    "start_schedule": "2026-11-25T18:00:00Z",
                    "charging_rate_unit": "W",
                    "charging_schedule_period": [
                        {"start_period": 0, "setpoint": -5000, "operation_mode": "CentralSetpoint"},
                        {"start_period": 900, "limit": 7000},
                    ],
                }
            ],
        },
        T0,
    )
    assert p21.valid_to == T0 + timedelta(hours=1)
    assert p21.period_at(T0 + timedelta(minutes=20)) == SimPeriod(900, limit_kw=7.0)
    p16 = profile_from_16(
        {
            "charging_profile_id": 1,
            "stack_level": 0,
            "charging_profile_kind": "Relative",
            "charging_schedule": {
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": -5}],
            },
        },
        T0,
    )
    assert p16.periods[0].limit_kw == 0.0  # 1.6 has no discharge


def test_behaviour_draws_plausible_sessions() -> None:
    behaviour = EvBehaviour(seed=3)
    sessions = [behaviour.session(T0) for _ in range(200)]
    assert all(s.departure_at > s.arrival_at for s in sessions)
    assert all(0 < s.energy_kwh <= 0.8 * s.model.battery_kwh for s in sessions)
    assert all(s.target_soc_kwh <= s.model.battery_kwh for s in sessions)
    assert len({s.model.name for s in sessions}) > 3
    assert EvBehaviour(seed=3).session(T0) == sessions[0]  # reproducible
