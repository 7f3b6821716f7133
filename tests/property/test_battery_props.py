"""Invariants of the battery model under arbitrary power requests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from v2g.sim.battery import Battery, BatterySpec

SPEC = BatterySpec(
    capacity_kwh=75.0,
    max_charge_kw=11.0,
    max_discharge_kw=9.0,
    charge_efficiency=0.93,
    discharge_efficiency=0.91,
    ramp_kw_per_s=2.0,
    soc_min_kwh=10.0,
    soc_max_kwh=70.0,
)


@given(
    soc=st.floats(10.0, 70.0),
    steps=st.lists(st.tuples(st.floats(-50.0, 50.0), st.floats(1e-4, 1.0)), min_size=1, max_size=40),
)
def test_limits_and_energy_balance(soc: float, steps: list[tuple[float, float]]) -> None:
    battery = Battery(SPEC, soc_kwh=soc)
    for requested, dt_h in steps:
        before = battery.soc_kwh
        battery, result = battery.step(requested, dt_h)
        assert -SPEC.max_discharge_kw - 1e-9 <= result.p_kw <= SPEC.max_charge_kw + 1e-9
        assert SPEC.soc_min_kwh - 1e-6 <= battery.soc_kwh <= SPEC.upper_kwh + 1e-6
        stored = result.import_kwh * SPEC.charge_efficiency - result.export_kwh / SPEC.discharge_efficiency
        assert abs(battery.soc_kwh - before - stored) < 1e-6
        if requested >= 0:
            assert result.p_kw <= requested + 1e-9 or result.limited_by == "ramp"
