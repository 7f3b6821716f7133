"""Pre-qualification: a compliant group passes, deliberately slow groups fail the right requirement."""

from __future__ import annotations

import asyncio
import functools
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from v2g.markets.rules import Product, default_rules
from v2g.prequal.groups import (
    AggregationError,
    GroupUnit,
    check_type_qualification,
    extension_needs_retest,
    max_without_retest_mw,
)
from v2g.prequal.report import PrequalResult, write_protocol
from v2g.services.prequal.ler_test import run_ler_test
from v2g.services.prequal.runner import CentralLoop, run_prequal
from v2g.sim.groups import build_twin_group

RULES = default_rules()
T0 = datetime(2026, 11, 25, 4, tzinfo=UTC)


@functools.cache  # each distinct group is driven through its test programme once per session
def run(product: Product, *, sine: bool = False, cadence_s: float = 0.0, **unit: float) -> PrequalResult:
    g = build_twin_group("g1", units=6, start_at=T0, **unit)  # type: ignore[arg-type]
    return asyncio.run(
        run_prequal(
            product=product,
            group_id="g1",
            units=g.units,
            pool=g.pool,
            gateway=g.gateway,
            rig=g.fleet,
            rules=RULES,
            started_at=T0,
            include_sine=sine,
            loop=CentralLoop(cadence_s),
        )
    )


def failed_ids(result: PrequalResult) -> set[str]:
    return {r.id for r in result.failed()}


@pytest.mark.slow
@pytest.mark.parametrize("product", [Product.FCR_D_UP, Product.FCR_D_DOWN])
def test_compliant_fcr_d_group_passes_the_ramp_sequence(product: Product) -> None:
    result = run(product)
    assert result.passed, [r.text() for r in result.failed()]
    assert not result.ler  # 6 x 64 kWh at half charge hold 60 kW for more than 2 h: endurance holds
    assert [log.signal.name for log in result.logs] == [f"{product.value}_ramps_endurance"]
    assert {r.id for r in result.requirements} == {"req1", "req2", "req3", "req4", "k_red"}
    assert result.qualified_capacity_kw == pytest.approx(60.0, rel=1e-3)


@pytest.mark.slow
def test_slow_ramping_group_fails_power_at_7_5_s() -> None:
    result = run(Product.FCR_D_UP, ramp_kw_per_s=0.5)
    assert "req2" in failed_ids(result)
    req2 = next(r for r in result.requirements if r.id == "req2")
    # 0.5 kW/s for 10 kW after 0.3 s delay and one 0.1 s logging step: 3.6 kW at 7.5 s
    assert req2.measured == pytest.approx(0.36, abs=0.02)


@pytest.mark.slow
def test_a_slow_central_loop_fails_fcr_d_stability() -> None:
    """2 s delay and a 1 s setpoint cadence through the central aggregator: the ramps pass (with a
    reduction at most), the Nyquist curve crosses the negative real axis left of -1."""
    fast = run(Product.FCR_D_UP, sine=True)
    assert fast.passed, [r.text() for r in fast.failed()]
    slow = run(Product.FCR_D_UP, sine=True, cadence_s=1.0, delay_s=2.0)
    assert failed_ids(slow) == {"req8"}
    assert slow.stability_margin is not None
    assert slow.stability_margin < 0  # passes on the wrong side of -1


def test_fcr_n_steps_pass_and_a_sluggish_group_misses_the_63_percent_time() -> None:
    assert run(Product.FCR_N).passed
    slow = run(Product.FCR_N, ramp_kw_per_s=0.05)  # 10 kW take 200 s
    assert {"step_1_t63", "step_1_t100"} <= failed_ids(slow)


@pytest.mark.slow
def test_fcr_n_sine_tests_measure_gain_phase_stability_and_performance() -> None:
    result = run(Product.FCR_N, sine=True)
    assert result.passed, [r.text() for r in result.failed()]
    assert len(result.sine_results) == len(RULES.prequal.sine.periods_s["fcr_n"])
    short = result.sine_results[0]
    assert short.gain == pytest.approx(1.0, abs=0.05)
    assert -30.0 < short.phase_deg < -5.0  # 0.3 s response delay plus the 0.1 s control step at a 10 s period
    assert result.stability_margin is not None
    assert result.stability_margin > 0.43 * 0.95
    assert {"req8", "req9", "k_red_dyn", "req10"} <= {r.id for r in result.requirements}


@pytest.mark.slow
def test_a_limited_reservoir_runs_the_energy_management_test() -> None:
    result = run(Product.FCR_D_UP, battery_kwh=20.0)  # 7.6 kWh per 10 kW: 46 min, LER
    assert result.ler
    assert result.passed, [r.text() for r in result.failed()]
    names = [log.signal.name for log in result.logs]
    assert names == ["fcr_d_up_ramps", "fcr_d_up_energy_management"]  # 5-minute hold, then Table 13
    steps = [r for r in result.requirements if r.id.startswith("req12_step")]
    assert len(steps) == len(RULES.prequal.ler_fcr_d)


@pytest.mark.slow
def test_a_group_without_energy_management_fails_table_13() -> None:
    g = build_twin_group("g1", units=6, start_at=T0, battery_kwh=20.0)
    g.pool.reserve_kw[Product.FCR_D_UP][:] = 10.0
    outcome, _ = asyncio.run(
        run_ler_test(Product.FCR_D_UP, g.pool, 60.0, g.gateway, g.fleet, RULES, CentralLoop(), energy_management=False)
    )
    failed = {r.id for r in outcome.requirements if not r.passed}
    assert "req12_step2" in failed  # NEM never comes on in the normal band


@pytest.mark.slow
def test_protocol_has_table_18_csv_logs_and_a_standalone_html_report(tmp_path: Path) -> None:
    result = run(Product.FCR_D_UP, sine=True, cadence_s=1.0, delay_s=2.0)
    report = write_protocol(result, tmp_path)
    html = report.read_text(encoding="utf-8")
    assert "FAILED" in html
    assert html.count("<svg") == len(result.logs) == 8  # the ramp sequence and 7 sine periods
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in html
    names = sorted(p.name for p in tmp_path.glob("*.csv"))
    # [Resource]_[Service]_[TestType]_[Area]_[Timezone]_[Interval]_[SamplingRate]_[Date].csv
    assert "g1_FcrdUp_RampEndurance_SE3_UTC_20261125T0400-20261125T0437_100ms_20261125.csv" in names
    sine40 = next(p for p in tmp_path.glob("*_Sine40_*.csv"))
    raw = sine40.read_bytes()
    assert b"\r\n" in raw
    header, first = raw.decode("ascii").split("\r\n")[:2]
    assert header.startswith("DateTime40,InsAcPow40,GridFreq40,ApplFreqSig40,CalcBaseline40,")
    assert "Cap_FcrdUp40" in header
    assert re.fullmatch(r"20261125T\d{6}\.\d{3}", first.split(",")[0])


def test_aggregation_rules() -> None:
    units = [GroupUnit(f"cp{i}", f"ev{i}", "wb-q2", 10.0) for i in range(3)]
    assert check_type_qualification(units, RULES) == "wb-q2"
    with pytest.raises(AggregationError, match="identical units"):
        check_type_qualification([*units, GroupUnit("x", "y", "other", 10.0)], RULES)
    with pytest.raises(AggregationError, match=r"units\[big\]\.capacity_kw"):
        check_type_qualification([GroupUnit("big", "y", "wb-q2", 150.0)], RULES)
    assert max_without_retest_mw(0.5, RULES) == pytest.approx(1.5)  # +1 MW beats +25 %
    assert max_without_retest_mw(2.0, RULES) == pytest.approx(3.0)  # +1 MW
    assert max_without_retest_mw(8.0, RULES) == pytest.approx(10.0)  # +25 % = 2 MW
    assert max_without_retest_mw(20.0, RULES) == pytest.approx(23.0)  # +25 % = 5 MW, capped at +3 MW
    assert not extension_needs_retest(0.5, 1.5, RULES)
    assert extension_needs_retest(0.5, 1.6, RULES)


@pytest.mark.slow
def test_runner_result_completes_the_journey_test_task() -> None:
    from v2g.services.prequal.runner import complete_connection_test, connection_test_outcome

    calls: list[tuple[object, str, str | None, dict[str, str] | None]] = []

    class Journeys:
        def complete_task(
            self, who: object, task_id: str, *, outcome: str | None = None, evidence: dict[str, str] | None = None
        ) -> str:
            calls.append((who, task_id, outcome, evidence))
            return "view"

    passed = run(Product.FCR_D_UP)
    failed = run(Product.FCR_D_UP, ramp_kw_per_s=0.5)
    assert connection_test_outcome(passed, "p.html") == (
        "passed",
        {"test_protocol": "p.html", "summary": "every requirement passed"},
    )
    outcome, evidence = connection_test_outcome(failed, "f.html")
    assert outcome == "failed"
    assert "req2" in evidence["summary"]
    assert complete_connection_test(Journeys(), "bsp-user", "j1:t9", failed, "f.html") == "view"
    assert calls[0][1:3] == ("j1:t9", "failed")
