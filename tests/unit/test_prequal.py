"""Pre-qualification: a compliant group passes, deliberately slow groups fail the right requirement."""

from __future__ import annotations

import asyncio
import functools
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
from v2g.services.prequal.runner import run_prequal
from v2g.sim.groups import build_twin_group

RULES = default_rules()
T0 = datetime(2026, 11, 25, 4, tzinfo=UTC)


@functools.cache  # each distinct group is driven through its test programme once per session
def run(product: Product, *, sine: bool = False, **unit: float) -> PrequalResult:
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
            step_hold_s=120.0,
        )
    )


def failed_ids(result: PrequalResult) -> set[str]:
    return {r.id for r in result.failed()}


@pytest.mark.slow
@pytest.mark.parametrize("product", [Product.FCR_D_UP, Product.FCR_D_DOWN])
def test_compliant_fcr_d_group_passes_every_ramp(product: Product) -> None:
    result = run(product)
    assert result.passed, [r.text() for r in result.failed()]
    assert len(result.requirements) == 9  # 3 ramps x req2..req4
    assert result.qualified_capacity_kw == pytest.approx(60.0, rel=1e-3)


@pytest.mark.slow
def test_slow_ramping_group_fails_power_at_7_5_s() -> None:
    result = run(Product.FCR_D_UP, ramp_kw_per_s=0.5)
    assert "req2" in failed_ids(result)
    req2 = [r for r in result.requirements if r.id == "req2"]
    # 0.5 kW/s for 10 kW after 0.3 s delay and one 0.1 s logging step: 3.55 kW at 7.5 s
    assert all(r.measured == pytest.approx(0.355, abs=0.01) for r in req2)


def test_delayed_group_fails_energy_and_deactivation_but_not_power() -> None:
    result = run(Product.FCR_D_UP, delay_s=3.0)
    assert failed_ids(result) == {"req3", "req4"}
    assert all(r.passed for r in result.requirements if r.id == "req2")


def test_fcr_n_steps_pass_and_a_sluggish_group_misses_the_63_percent_time() -> None:
    assert run(Product.FCR_N).passed
    slow = run(Product.FCR_N, ramp_kw_per_s=0.05)  # 10 kW take 200 s
    assert {"step_up_t63", "step_up_t100"} <= failed_ids(slow)


def test_fcr_n_sine_tests_measure_gain_phase_and_stability() -> None:
    result = run(Product.FCR_N, sine=True)
    assert result.passed
    assert len(result.sine_results) == len(RULES.prequal.fcr_n_sine_periods_s)
    short = result.sine_results[0]
    assert short.gain == pytest.approx(1.0, abs=0.05)
    assert -30.0 < short.phase_deg < -5.0  # 0.3 s response delay plus the 0.1 s control step at a 10 s period
    assert result.stability_margin is not None
    assert result.stability_margin > 0.43


def test_protocol_has_csv_logs_and_a_standalone_html_report(tmp_path: Path) -> None:
    result = run(Product.FCR_D_UP, delay_s=3.0)
    report = write_protocol(result, tmp_path)
    html = report.read_text(encoding="utf-8")
    assert "FAILED" in html
    assert html.count("<svg") == 3
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in html
    csvs = sorted(tmp_path.glob("*.csv"))
    assert len(csvs) == 3
    header, first = csvs[0].read_text(encoding="utf-8").splitlines()[:2]
    assert header == "t_s,f_hz,p_kw,response_kw,required_kw"
    # 10 Hz logging for FCR-D
    assert float(csvs[0].read_text().splitlines()[2].split(",")[0]) - float(first.split(",")[0]) == pytest.approx(0.1)


def test_aggregation_rules() -> None:
    units = [GroupUnit(f"cp{i}", f"ev{i}", "wb-q2", 10.0) for i in range(3)]
    assert check_type_qualification(units, RULES) == "wb-q2"
    with pytest.raises(AggregationError, match="identical units"):
        check_type_qualification([*units, GroupUnit("x", "y", "other", 10.0)], RULES)
    with pytest.raises(AggregationError, match=r"units\[big\]\.capacity_kw"):
        check_type_qualification([GroupUnit("big", "y", "wb-q2", 150.0)], RULES)
    assert max_without_retest_mw(0.5, RULES) == pytest.approx(1.5)  # +1 MW beats +25 %
    assert max_without_retest_mw(2.0, RULES) == pytest.approx(3.0)  # capped at 3 MW
    assert max_without_retest_mw(8.0, RULES) == pytest.approx(8.0)  # +25 % would pass the cap
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
    failed = run(Product.FCR_D_UP, delay_s=3.0)
    assert connection_test_outcome(passed, "p.html") == (
        "passed",
        {"test_protocol": "p.html", "summary": "every requirement passed"},
    )
    outcome, evidence = connection_test_outcome(failed, "f.html")
    assert outcome == "failed"
    assert "req3" in evidence["summary"]
    assert complete_connection_test(Journeys(), "bsp-user", "j1:t9", failed, "f.html") == "view"
    assert calls[0][1:3] == ("j1:t9", "failed")
