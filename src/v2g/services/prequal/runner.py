"""The pre-qualification runner: drives a group through the official tests via the dispatch path.

The test frequency is injected into the same central dispatcher that answers the real grid
frequency; the rig advances the units and reports the group's measured power at the logging rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from v2g.dispatch.pool import FloatArray, ReservePool
from v2g.markets.rules import MarketRules, Product
from v2g.prequal.criteria import STABILITY_RADIUS, Requirement, fcr_d_ramp, fcr_n_steps, sine_fit, stability_margin
from v2g.prequal.groups import GroupUnit, check_type_qualification, max_without_retest_mw
from v2g.prequal.report import PrequalResult, TestLog
from v2g.prequal.sequences import TestSignal, fcr_d_ramp_test, fcr_n_step_test, sine_test
from v2g.services.devices.ports import ChargerGateway
from v2g.services.dispatch.central import CentralDispatcher


class UnitRig(Protocol):
    """Where the units live: advance them and read the group's measured power."""

    def advance(self, dt_s: float, f_hz: float) -> None: ...

    def group_power_kw(self) -> float: ...


async def run_signal(
    signal: TestSignal, pool: ReservePool, capacity_kw: float, gateway: ChargerGateway, rig: UnitRig, rules: MarketRules
) -> TestLog:
    """Run one test signal: per sample, dispatch the test frequency, advance the rig, log the power."""
    dispatcher = CentralDispatcher(pool, {signal.product: capacity_kw}, gateway, rules)
    baseline = float(pool.baseline_p_kw[pool.available].sum())
    p = np.zeros(len(signal.t_s))
    for k, f in enumerate(signal.f_hz):
        if k:
            rig.advance(signal.dt_s, float(signal.f_hz[k - 1]))
        await dispatcher.on_frequency(float(f))
        p[k] = rig.group_power_kw()
    required = np.array([capacity_kw * rules[signal.product].response_fraction(float(f)) for f in signal.f_hz])
    return TestLog(signal, p, baseline - p, required)


async def run_prequal(
    *,
    product: Product,
    group_id: str,
    units: list[GroupUnit],
    pool: ReservePool,
    gateway: ChargerGateway,
    rig: UnitRig,
    rules: MarketRules,
    started_at: datetime,
    include_sine: bool = True,
    step_hold_s: float = 300.0,
) -> PrequalResult:
    """Run the test programme of ``product`` on the group and evaluate every requirement."""
    unit_type = check_type_qualification(units, rules)
    capacity_kw = sum(u.capacity_kw for u in units)
    by_ev: Mapping[str, float] = {u.ev_id: u.capacity_kw for u in units}
    pool.reserve_kw[product] = np.array([by_ev.get(ev, 0.0) for ev in pool.ev_ids])
    logs: list[TestLog] = []
    requirements: list[Requirement] = []
    sine_results = []
    qualified: list[float] = []
    if product is Product.FCR_N:
        log = await run_signal(fcr_n_step_test(rules, step_hold_s), pool, capacity_kw, gateway, rig, rules)
        logs.append(log)
        pss, reqs = fcr_n_steps(log.signal, log.dp_kw, capacity_kw, rules)
        qualified.append(min(pss, capacity_kw))
        requirements += reqs
    else:
        for rate in rules.prequal.fcr_d_ramp_rates_hz_per_s:
            log = await run_signal(fcr_d_ramp_test(product, rate, rules), pool, capacity_kw, gateway, rig, rules)
            logs.append(log)
            pss, reqs = fcr_d_ramp(log.signal, log.dp_kw, rules)
            qualified.append(min(pss, capacity_kw))
            requirements += reqs
    margin = None
    if include_sine:
        periods = rules.prequal.fcr_n_sine_periods_s
        for period in periods:
            log = await run_signal(sine_test(product, period, rules), pool, capacity_kw, gateway, rig, rules)
            logs.append(log)
            result = sine_fit(log.signal, log.dp_kw, capacity_kw)
            sine_results.append(result)
            requirements.append(
                Requirement(
                    log.signal.name,
                    "linearity",
                    f"RMS residual / std of fitted sine < {rules.prequal.linearity_max_rms_ratio}",
                    result.linearity,
                    rules.prequal.linearity_max_rms_ratio,
                    "",
                    result.linearity < rules.prequal.linearity_max_rms_ratio,
                )
            )
        margin = stability_margin(sine_results, product)
        requirements.append(
            Requirement(
                "sine",
                "stability",
                f"open-loop distance from -1 ≥ {STABILITY_RADIUS}",
                margin,
                STABILITY_RADIUS,
                "",
                margin >= STABILITY_RADIUS,
            )
        )
    qualified_kw = max(0.0, min(qualified)) if qualified else 0.0
    return PrequalResult(
        product=product,
        group_id=group_id,
        units=len(units),
        unit_type=unit_type,
        control_mode="central",
        tested_capacity_kw=capacity_kw,
        qualified_capacity_kw=qualified_kw,
        started_at=started_at,
        requirements=tuple(requirements),
        logs=tuple(logs),
        sine_results=tuple(sine_results),
        stability_margin=margin,
        max_without_retest_mw=max_without_retest_mw(qualified_kw / 1000.0, rules),
    )


def group_power(p_kw: FloatArray) -> float:
    """Sum of measured unit powers."""
    return float(p_kw.sum())


class TaskCompleter(Protocol):
    """The part of the journey service that completes a task (``JourneyService.complete_task``)."""

    def complete_task(
        self, who: Any, task_id: str, *, outcome: str | None = None, evidence: dict[str, str] | None = None
    ) -> Any: ...


def connection_test_outcome(result: PrequalResult, protocol_ref: str) -> tuple[str, dict[str, str]]:
    """Outcome and evidence of the journey task "Test the connection" from a pre-qualification run."""
    summary = "; ".join(r.text() for r in result.failed()) or "every requirement passed"
    return ("passed" if result.passed else "failed"), {"test_protocol": protocol_ref, "summary": summary[:500]}


def complete_connection_test(
    journeys: TaskCompleter, who: Any, task_id: str, result: PrequalResult, protocol_ref: str
) -> Any:
    """Complete the pre-qualification stage's test task from the runner's result (the BSP acts)."""
    outcome, evidence = connection_test_outcome(result, protocol_ref)
    return journeys.complete_task(who, task_id, outcome=outcome, evidence=evidence)
