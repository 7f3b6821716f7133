"""Profiles derived from any schedule respect ratings, never discharge when charge-only, cover the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from v2g.devices import ProfileKind, plan_from_schedule
from v2g.fleet.schedule import PowerSchedule

T0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)


@given(
    p_kw=st.lists(st.floats(-50, 50), min_size=1, max_size=96),
    now_min=st.integers(0, 60),
    validity_min=st.integers(1, 600),
    kind=st.sampled_from(list(ProfileKind)),
    max_charge=st.floats(0, 22),
    max_discharge=st.floats(0, 22),
)
def test_plan_invariants(
    p_kw: list[float], now_min: int, validity_min: int, kind: ProfileKind, max_charge: float, max_discharge: float
) -> None:
    schedule = PowerSchedule("ev", T0, tuple(p_kw), charger_id="CP")
    now = T0 + timedelta(minutes=now_min)
    if schedule.end_at <= now:
        return
    plan = plan_from_schedule(
        schedule,
        kind,
        now=now,
        validity=timedelta(minutes=validity_min),
        max_charge_kw=max_charge,
        max_discharge_kw=max_discharge,
    )
    assert plan.periods[0].start_s == 0
    assert plan.valid_to <= now + timedelta(minutes=validity_min)
    assert plan.valid_to <= schedule.end_at
    starts = [p.start_s for p in plan.periods]
    assert starts == sorted(set(starts))
    for period in plan.periods:
        assert -max_discharge - 1e-3 <= period.p_kw <= max_charge + 1e-3
        if kind is ProfileKind.CHARGE_ONLY:
            assert period.p_kw >= 0
        offset = timedelta(seconds=period.start_s)
        assert abs(period.p_kw - round(min(max(schedule.at(now + offset), -max_discharge), max_charge), 3)) < 1e-3 or (
            kind is ProfileKind.CHARGE_ONLY and period.p_kw == 0.0
        )
