"""The pure battery model of the digital twin."""

from __future__ import annotations

import math

import pytest

from v2g.sim.battery import Battery, BatterySpec, BatteryValueError, safe_fallback_p_kw

SPEC = BatterySpec(
    capacity_kwh=60.0,
    max_charge_kw=11.0,
    max_discharge_kw=10.0,
    charge_efficiency=0.9,
    discharge_efficiency=0.8,
    name="leaf",
)


def test_charge_applies_efficiency() -> None:
    battery, result = Battery(SPEC, soc_kwh=30.0).step(10.0, 0.5)
    assert result.p_kw == pytest.approx(10.0)
    assert result.import_kwh == pytest.approx(5.0)
    assert battery.soc_kwh == pytest.approx(34.5)


def test_discharge_draws_more_than_exported() -> None:
    battery, result = Battery(SPEC, soc_kwh=30.0).step(-8.0, 0.5)
    assert result.export_kwh == pytest.approx(4.0)
    assert battery.soc_kwh == pytest.approx(25.0)


def test_power_limits_are_named() -> None:
    _, result = Battery(SPEC, soc_kwh=30.0).step(50.0, 0.25)
    assert result.p_kw == pytest.approx(11.0)
    assert result.limited_by == "max_charge_kw"
    _, result = Battery(SPEC, soc_kwh=30.0).step(-50.0, 0.25)
    assert result.p_kw == pytest.approx(-10.0)
    assert result.limited_by == "max_discharge_kw"


def test_soc_bounds_hold() -> None:
    spec = BatterySpec(capacity_kwh=60.0, max_charge_kw=11.0, max_discharge_kw=11.0, soc_min_kwh=12.0, soc_max_kwh=54.0)
    full, result = Battery(spec, soc_kwh=53.0).step(11.0, 1.0)
    assert full.soc_kwh == pytest.approx(54.0)
    assert result.limited_by == "soc_max_kwh"
    empty, result = Battery(spec, soc_kwh=13.0).step(-11.0, 1.0)
    assert empty.soc_kwh == pytest.approx(12.0)
    assert result.limited_by == "soc_min_kwh"


def test_ramp_limits_change_of_power() -> None:
    spec = BatterySpec(capacity_kwh=60.0, max_charge_kw=11.0, max_discharge_kw=11.0, ramp_kw_per_s=1.0)
    battery, result = Battery(spec, soc_kwh=30.0).step(11.0, 2.0 / 3600.0)
    assert result.p_kw == pytest.approx(2.0)
    assert result.limited_by == "ramp"
    _, result = battery.step(-11.0, 1.0 / 3600.0)
    assert result.p_kw == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"capacity_kwh": 0.0}, "capacity_kwh"),
        ({"max_charge_kw": -1.0}, "max_charge_kw"),
        ({"charge_efficiency": 1.5}, "charge_efficiency"),
        ({"soc_max_kwh": 70.0}, "soc_max_kwh"),
        ({"ramp_kw_per_s": 0.0}, "ramp_kw_per_s"),
    ],
)
def test_bad_spec_names_field(kwargs: dict[str, float], field: str) -> None:
    base: dict[str, float] = {"capacity_kwh": 60.0, "max_charge_kw": 11.0, "max_discharge_kw": 11.0}
    with pytest.raises(BatteryValueError, match=field):
        BatterySpec(**(base | kwargs))  # type: ignore[arg-type]


def test_bad_step_names_field() -> None:
    with pytest.raises(BatteryValueError, match="dt_h"):
        Battery(SPEC, soc_kwh=1.0).step(1.0, 0.0)
    with pytest.raises(BatteryValueError, match="requested_p_kw"):
        Battery(SPEC, soc_kwh=1.0).step(math.nan, 1.0)
    with pytest.raises(BatteryValueError, match="soc_kwh"):
        Battery(SPEC, soc_kwh=61.0)


def test_safe_fallback_never_discharges_and_meets_target() -> None:
    battery = Battery(SPEC, soc_kwh=20.0)
    hours = 8.0
    dt_h = 0.25
    for _ in range(int(hours / dt_h)):
        p_kw = safe_fallback_p_kw(battery, 48.0, hours, dt_h)
        assert p_kw >= 0
        battery, _ = battery.step(p_kw, dt_h)
        hours -= dt_h
    assert battery.soc_kwh == pytest.approx(48.0, abs=0.01)
