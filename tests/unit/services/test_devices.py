"""Protocol-neutral translation of planner schedules into charger profiles."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from v2g.devices import DeviceError, ProfileKind, fallback_p_kw, plan_from_schedule, profile_kind
from v2g.fleet.model import ChargerProtocol
from v2g.fleet.schedule import PowerSchedule

T0 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def test_kind_per_protocol_and_declared_support() -> None:
    assert profile_kind(ChargerProtocol.OCPP21, True) is ProfileKind.V2X_SETPOINT
    assert profile_kind(ChargerProtocol.OCPP201, True) is ProfileKind.SIGNED_LIMIT
    assert profile_kind(ChargerProtocol.OCPP201, False) is ProfileKind.CHARGE_ONLY
    assert profile_kind(ChargerProtocol.OCPP16, True) is ProfileKind.CHARGE_ONLY


def test_plan_merges_clips_and_expires() -> None:
    schedule = PowerSchedule("ev", T0, (-20.0, -20.0, 5.0, 5.0, 30.0), charger_id="CP1")
    plan = plan_from_schedule(
        schedule,
        ProfileKind.SIGNED_LIMIT,
        now=T0 + timedelta(minutes=5),
        validity=timedelta(minutes=40),
        max_charge_kw=11.0,
        max_discharge_kw=10.0,
    )
    assert plan.start_at == T0 + timedelta(minutes=5)
    assert plan.valid_to == T0 + timedelta(minutes=45)
    assert [(p.start_s, p.p_kw) for p in plan.periods] == [(0, -10.0), (1500, 5.0)]
    assert not plan.clamped_discharge


def test_charge_only_clamps_discharge_and_says_so() -> None:
    schedule = PowerSchedule("ev", T0, (-7.0, 3.0), charger_id="CP1")
    plan = plan_from_schedule(
        schedule,
        ProfileKind.CHARGE_ONLY,
        now=T0,
        validity=timedelta(hours=1),
        max_charge_kw=11.0,
        max_discharge_kw=11.0,
    )
    assert [p.p_kw for p in plan.periods] == [0.0, 3.0]
    assert plan.clamped_discharge


@pytest.mark.parametrize(
    ("schedule", "match"),
    [
        (PowerSchedule("ev", T0, (1.0,)), "charger_id"),
        (PowerSchedule("ev", T0 - timedelta(hours=2), (1.0,), charger_id="CP1"), "ended"),
        (PowerSchedule("ev", T0, (1.0, math.nan), charger_id="CP1"), r"p_kw\[1\]"),
    ],
)
def test_impossible_schedules_are_named(schedule: PowerSchedule, match: str) -> None:
    with pytest.raises(DeviceError, match=match):
        plan_from_schedule(
            schedule,
            ProfileKind.V2X_SETPOINT,
            now=T0,
            validity=timedelta(hours=1),
            max_charge_kw=11.0,
            max_discharge_kw=11.0,
        )


def test_fallback_power() -> None:
    assert fallback_p_kw(80.0, 80.0, 60.0, 5.0, 11.0) == 0.0
    assert fallback_p_kw(40.0, 80.0, 60.0, 0.0, 11.0) == 11.0
    p = fallback_p_kw(40.0, 80.0, 60.0, 10.0, 11.0, charge_efficiency=0.9)
    assert p == pytest.approx(1.25 * 24.0 / 0.9 / 10.0)
