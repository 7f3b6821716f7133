"""Metering intervals from register readings: each rule with a hand-computed example."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from v2g.settlement.metering import (
    FillRule,
    MeterData,
    MeterInterval,
    PluggedPeriod,
    Quality,
    Reading,
    merge_intervals,
    meter_intervals,
    quality_counts,
)
from v2g.settlement.money import SettlementInputError
from v2g.settlement.tariffs import load_tariffs

RULES = load_tariffs().metering  # measured span 300 s, power held 300 s


def t(h: int, m: int, s: int = 0) -> datetime:
    return datetime(2026, 1, 5, h, m, s, tzinfo=UTC)


def regs(*points: tuple[datetime, str]) -> list[Reading]:
    return [Reading(at, Decimal(v)) for at, v in points]


def imports(data: MeterData, start: datetime, end: datetime) -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        (str(iv.import_kwh), iv.import_quality.value, tuple(r.value for r in iv.import_rules))
        for iv in meter_intervals(data, start, end, RULES)
    ]


def test_close_readings_are_measured_and_split_by_time_at_the_boundary() -> None:
    # 10:13 -> 1.3 kWh and 10:18 -> 1.8 kWh are 5 min apart (measured); the boundary 10:15 lies 2 of
    # those 5 minutes in: R(10:15) = 1.3 + 0.5 * 2/5 = 1.5. Quarter 1 = 1.5 - 0.0 = 1.5 kWh.
    # 10:20 -> 2.0 and 10:30 -> 2.0 are 10 min apart but the register did not move: exactly 0.
    # Quarter 2 = R(10:30) - R(10:15) = 2.0 - 1.5 = 0.5 kWh.
    data = MeterData(
        "cp-1",
        "ev-1",
        import_register=regs(
            (t(10, 0), "0"), (t(10, 5), "0.5"), (t(10, 10), "1.0"), (t(10, 13), "1.3"), (t(10, 18), "1.8"),
            (t(10, 20), "2.0"), (t(10, 30), "2.0"),
        ),
    )  # fmt: skip
    assert imports(data, t(10, 0), t(10, 30)) == [
        ("1.5000", "measured", ("register",)),
        ("0.5000", "measured", ("no_advance", "register")),
    ]


def test_a_gap_with_an_advance_is_spread_linearly_without_power_or_transactions() -> None:
    # 10:00 -> 10 kWh, 11:00 -> 12 kWh, nothing between: 2 kWh / 4 quarters = 0.5 kWh each, estimated.
    data = MeterData("cp-1", "ev-1", import_register=regs((t(10, 0), "10"), (t(11, 0), "12")))
    assert imports(data, t(10, 0), t(11, 0)) == [("0.5000", "estimated", ("gap_linear",))] * 4


def test_a_gap_is_spread_over_the_plugged_in_time_when_a_transaction_says_when() -> None:
    # The EV was plugged in 10:30-11:30: the 2 kWh flowed in 10:30-11:00, 1 kWh per quarter.
    # Before the first reading nothing is known and nothing was plugged in: idle, 0.
    # After the last reading (11:00) the EV is still plugged in and nothing is reported: missing.
    data = MeterData(
        "cp-1",
        "ev-1",
        import_register=regs((t(10, 0), "10"), (t(11, 0), "12")),
        plugged=[PluggedPeriod(t(10, 30), t(11, 30))],
    )
    assert imports(data, t(9, 45), t(11, 15)) == [
        ("0.0000", "estimated", ("idle_zero",)),
        ("0.0000", "estimated", ("gap_plugged_time",)),
        ("0.0000", "estimated", ("gap_plugged_time",)),
        ("1.0000", "estimated", ("gap_plugged_time",)),
        ("1.0000", "estimated", ("gap_plugged_time",)),
        ("0.0000", "missing", ("missing_zero",)),
    ]


def test_a_gap_covered_by_power_samples_is_shaped_by_the_power() -> None:
    # Power every 5 min (each held 5 min, so the hour is covered): 4 kW from 10:15 to 10:30, else 0.
    # Registers: 1.0 kWh over the hour. Power integral: 4 kW x 0.25 h = 1 kWh, all in quarter 2.
    power = [Reading(t(10, 0) + timedelta(minutes=5 * k), Decimal("4" if 3 <= k < 6 else "0")) for k in range(12)]
    data = MeterData("cp-1", "ev-1", import_register=regs((t(10, 0), "0"), (t(11, 0), "1.0")), import_power=power)
    assert [v for v, _, _ in imports(data, t(10, 0), t(11, 0))] == ["0.0000", "1.0000", "0.0000", "0.0000"]
    assert {rules for _, _, rules in imports(data, t(10, 0), t(11, 0))} == {("gap_power_shaped",)}


def test_the_register_advance_is_what_gets_shared_even_when_power_disagrees() -> None:
    # Same power shape (1 kWh integrated) but the register says 0.8 kWh: 0.8 kWh lands in quarter 2.
    power = [Reading(t(10, 0) + timedelta(minutes=5 * k), Decimal("4" if 3 <= k < 6 else "0")) for k in range(12)]
    data = MeterData("cp-1", "ev-1", import_register=regs((t(10, 0), "0"), (t(11, 0), "0.8")), import_power=power)
    assert [v for v, _, _ in imports(data, t(10, 0), t(11, 0))] == ["0.0000", "0.8000", "0.0000", "0.0000"]


def test_rounding_to_a_tenth_of_a_watt_hour_keeps_the_total_exact() -> None:
    # 1 Wh (0.0010 kWh) over 45 min: R(10:15) = 0.00033.. -> 0.0003, R(10:30) = 0.00066.. -> 0.0007.
    # Quarters: 0.0003, 0.0004, 0.0003; together exactly 0.0010.
    data = MeterData("cp-1", "ev-1", import_register=regs((t(10, 0), "0"), (t(10, 45), "0.001")))
    assert [v for v, _, _ in imports(data, t(10, 0), t(10, 45))] == ["0.0003", "0.0004", "0.0003"]


def test_no_register_at_all_falls_back_to_power_integration() -> None:
    # 2 kW at 10:00 held 5 min: 2 x 5/60 = 0.1666.. -> 0.1667 kWh; the 10 min not covered are idle.
    data = MeterData("cp-1", "ev-1", import_power=[Reading(t(10, 0), Decimal("2"))])
    assert imports(data, t(10, 0), t(10, 15)) == [("0.1667", "estimated", ("idle_zero", "power_integration"))]


def test_uncovered_time_while_plugged_in_is_missing() -> None:
    data = MeterData("cp-1", "ev-1", import_power=[Reading(t(10, 0), Decimal("2"))], plugged=[PluggedPeriod(t(9, 0))])
    assert imports(data, t(10, 0), t(10, 15)) == [("0.1667", "missing", ("missing_zero", "power_integration"))]


def test_a_register_that_goes_backwards_is_a_reset_not_negative_energy() -> None:
    # 10:00 -> 500 kWh, 10:05 -> 0.2 kWh (meter replaced), 10:10 -> 0.4 kWh.
    # 10:00-10:05 falls back to the no-register rules (idle: nothing plugged); 10:05-10:10 measured 0.2;
    # 10:10-10:15 is after the last reading: idle.
    data = MeterData("cp-1", "ev-1", import_register=regs((t(10, 0), "500"), (t(10, 5), "0.2"), (t(10, 10), "0.4")))
    assert imports(data, t(10, 0), t(10, 15)) == [("0.2000", "estimated", ("idle_zero", "register", "register_reset"))]


def test_export_is_metered_from_its_own_register() -> None:
    data = MeterData(
        "cp-1",
        "ev-1",
        import_register=regs((t(10, 0), "5"), (t(10, 15), "5")),
        export_register=regs((t(10, 0), "1"), (t(10, 5), "1.6"), (t(10, 10), "2.2"), (t(10, 15), "2.8")),
    )
    [iv] = meter_intervals(data, t(10, 0), t(10, 15), RULES)
    assert (iv.import_kwh, iv.export_kwh) == (Decimal("0"), Decimal("1.8"))
    assert iv.quality is Quality.MEASURED
    assert iv.import_rules == (FillRule.NO_ADVANCE,)


def test_shuffled_and_repeated_readings_give_the_same_intervals() -> None:
    points = [(t(10, 0), "0"), (t(10, 4), "0.3"), (t(10, 9), "0.9"), (t(10, 40), "2.0"), (t(10, 44), "2.1")]
    ordered = MeterData("cp-1", "ev-1", import_register=regs(*points))
    shuffled = MeterData("cp-1", "ev-1", import_register=regs(*reversed(points + points[:2])))
    assert meter_intervals(ordered, t(10, 0), t(11, 0), RULES) == meter_intervals(shuffled, t(10, 0), t(11, 0), RULES)


def test_merge_swaps_whole_days_and_never_loses_quality() -> None:
    def iv(minute: int, kwh: str, q: Quality, rule: FillRule) -> MeterInterval:
        return MeterInterval(
            t(10, minute), Decimal(kwh), Decimal("0"), q, Quality.MEASURED, (rule,), (FillRule.REGISTER,)
        )

    measured = iv(0, "1.2", Quality.MEASURED, FillRule.REGISTER)
    estimated = iv(15, "0.4", Quality.ESTIMATED, FillRule.GAP_LINEAR)
    # retention removed the samples behind the measured quarter: the fresh day would lose quality, so the
    # stored day stays whole (the fresh estimate of the next quarter is not mixed in)
    purged = [iv(0, "0", Quality.MISSING, FillRule.MISSING_ZERO), iv(15, "0.9", Quality.ESTIMATED, FillRule.GAP_LINEAR)]
    assert merge_intervals([measured, estimated], purged) == [measured, estimated]
    # a late reading turns the estimate into a measurement and loses nothing: the fresh day replaces it
    late = [iv(0, "1.2", Quality.MEASURED, FillRule.REGISTER), iv(15, "0.5", Quality.MEASURED, FillRule.REGISTER)]
    assert merge_intervals([measured, estimated], late) == late
    # a later capture of a day already partly stored adds its new quarters
    assert merge_intervals([measured], late) == late
    assert merge_intervals(late, [measured]) == late


def test_records_round_trip_and_quality_counts() -> None:
    data = MeterData("cp-1", "ev-1", import_register=regs((t(10, 0), "10"), (t(11, 0), "12")))
    intervals = meter_intervals(data, t(9, 45), t(11, 15), RULES)
    assert [MeterInterval.from_record(iv.to_record()) for iv in intervals] == intervals
    assert quality_counts(intervals) == {"measured": 0, "estimated": 6, "missing": 0}


def test_bad_input_names_the_field() -> None:
    data = MeterData("cp-1", "ev-1", import_register=[Reading(datetime(2026, 1, 5, 10), Decimal("1"))])
    with pytest.raises(ValueError, match=r"meter\[ev-1\]\.import_register\.at: naive datetime"):
        meter_intervals(data, t(10, 0), t(10, 15), RULES)
    with pytest.raises(SettlementInputError, match=r"start_at: .* is not on a quarter-hour boundary"):
        meter_intervals(MeterData("cp-1", "ev-1"), t(10, 1), t(10, 15), RULES)
    with pytest.raises(SettlementInputError, match="power must be >= 0"):
        meter_intervals(
            MeterData("cp-1", "ev-1", import_power=[Reading(t(10, 0), Decimal("-1"))]), t(10, 0), t(10, 15), RULES
        )
