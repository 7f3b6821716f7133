"""The pre-qualification runner: drives a group through the official tests via the dispatch path.

The test frequency is injected into the same central dispatcher that answers the real grid
frequency (an internally generated test signal, so the frequency-domain requirements include the
frequency measurement model); the rig advances the units and reports the group's measured power at
the logging rate. A central aggregator that measures and sends setpoints only every
``setpoint_interval_s`` is modelled by holding its last answer between updates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from v2g.dispatch.ler import EnergyState
from v2g.dispatch.pool import FloatArray, ReservePool
from v2g.markets.rules import MarketRules, Product
from v2g.prequal.criteria import (
    Outcome,
    Requirement,
    SineResult,
    fcr_d_ramps,
    fcr_n_steps,
    performance,
    sine_fit,
    stability,
    stability_requirement,
)
from v2g.prequal.groups import GroupUnit, check_type_qualification, is_ler, max_without_retest_mw
from v2g.prequal.report import PrequalResult, TestLog
from v2g.prequal.sequences import TestSignal, fcr_d_ramp_test, fcr_n_step_test, sine_periods, sine_test
from v2g.services.devices.ports import ChargerGateway
from v2g.services.dispatch.central import CentralDispatcher
from v2g.services.prequal.ler_test import run_ler_test


class UnitRig(Protocol):
    """Where the units live: advance them and read the group's measured power and energy."""

    def advance(self, dt_s: float, f_hz: float) -> None: ...

    def group_power_kw(self) -> float: ...

    def energy(self) -> EnergyState: ...


@dataclass(frozen=True, slots=True)
class CentralLoop:
    """How the central aggregator answers: it samples the frequency and sends setpoints every
    ``setpoint_interval_s`` (0: at every logged sample)."""

    setpoint_interval_s: float = 0.0


async def run_signal(
    signal: TestSignal,
    pool: ReservePool,
    capacity_kw: float,
    gateway: ChargerGateway,
    rig: UnitRig,
    rules: MarketRules,
    loop: CentralLoop = CentralLoop(),
) -> TestLog:
    """Run one test signal: per sample, dispatch the test frequency (at the loop's cadence), advance
    the rig, log the power."""
    dispatcher = CentralDispatcher(pool, {signal.product: capacity_kw}, gateway, rules)
    baseline = float(pool.baseline_p_kw[pool.available].sum())
    p = np.zeros(len(signal.t_s))
    next_update = 0.0
    for k, f in enumerate(signal.f_hz):
        if k:
            rig.advance(signal.dt_s, float(signal.f_hz[k - 1]))
        t = float(signal.t_s[k])
        if t >= next_update - 1e-9:
            await dispatcher.on_frequency(float(f))
            next_update = t + loop.setpoint_interval_s
        p[k] = rig.group_power_kw()
    required = np.array([capacity_kw * rules[signal.product].response_fraction(float(f)) for f in signal.f_hz])
    return TestLog(signal, p, baseline - p, required, np.full(len(p), baseline))


def reservoir_kwh(energy: EnergyState) -> tuple[float, float]:
    """Energy the group can deliver up (discharging) and absorb down (charging), kWh."""
    up = float((np.maximum(energy.soc_kwh - energy.soc_min_kwh, 0.0) * energy.eta_discharge).sum())
    down = float((np.maximum(energy.soc_max_kwh - energy.soc_kwh, 0.0) / energy.eta_charge).sum())
    return up, down


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
    loop: CentralLoop = CentralLoop(),
) -> PrequalResult:
    """Run the test programme of ``product`` on the group and evaluate every requirement.

    A limited energy reservoir (less than 2 h of full activation) runs the energy-management test
    (Tables 12/13); any other group holds steps 1-2 (FCR-N) or ramp 3 (FCR-D) for 15 minutes.
    The qualified capacity is min(K_red,ss, K_red,dyn)·|ΔPss,theoretical|.
    """
    unit_type = check_type_qualification(units, rules)
    capacity_kw = sum(u.capacity_kw for u in units)
    by_ev: Mapping[str, float] = {u.ev_id: u.capacity_kw for u in units}
    pool.reserve_kw[product] = np.array([by_ev.get(ev, 0.0) for ev in pool.ev_ids])
    up_kwh, down_kwh = reservoir_kwh(rig.energy())
    ler = is_ler(up_kwh, down_kwh, capacity_kw, product, rules)
    logs: list[TestLog] = []
    outcomes: list[Outcome] = []
    if product is Product.FCR_N:
        log = await run_signal(fcr_n_step_test(rules, endurance=not ler), pool, capacity_kw, gateway, rig, rules, loop)
        logs.append(log)
        outcomes.append(fcr_n_steps(log.signal, log.dp_kw, capacity_kw, rules))
    else:
        signal = fcr_d_ramp_test(product, rules, endurance=not ler)
        log = await run_signal(signal, pool, capacity_kw, gateway, rig, rules, loop)
        logs.append(log)
        outcomes.append(fcr_d_ramps(log.signal, log.dp_kw, capacity_kw, rules))
    sine_results: list[SineResult] = []
    margin = None
    if include_sine:
        linearity: list[Requirement] = []
        for period in sine_periods(product, rules):
            log = await run_signal(sine_test(product, period, rules), pool, capacity_kw, gateway, rig, rules, loop)
            logs.append(log)
            result = sine_fit(log.signal, log.dp_kw, capacity_kw, rules)
            sine_results.append(result)
            limit = rules.prequal.sine.linearity_max_rms_ratio
            linearity.append(
                Requirement(
                    log.signal.name,
                    "req10",
                    f"RMS residual / std of fitted sine < {limit}",
                    result.linearity,
                    limit,
                    "",
                    result.linearity < limit,
                )
            )
        stab = stability(sine_results, product, rules, internal_signal=True)
        margin = stab.signed_margin
        outcomes.append(Outcome([*linearity, stability_requirement(stab, rules)]))
        outcomes.append(performance(sine_results, product, rules, internal_signal=True))
    if ler:
        ler_outcome, ler_logs = await run_ler_test(product, pool, capacity_kw, gateway, rig, rules, loop)
        outcomes.append(ler_outcome)
        logs.extend(ler_logs)
    k = min(min(o.k_red_ss for o in outcomes), min(o.k_red_dyn for o in outcomes))
    requirements = [r for o in outcomes for r in o.requirements]
    k_min = rules.prequal.steps.k_red_min if product is Product.FCR_N else rules.prequal.ramps.k_red_min
    requirements.append(
        Requirement("capacity", "k_red", f"min(K_red,ss, K_red,dyn) ≥ {k_min}", k, k_min, "", k >= k_min - 1e-9)
    )
    qualified_kw = max(0.0, k * capacity_kw)
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
        k_red=k,
        ler=ler,
        p_min_mw=-float(pool.p_max_kw.sum()) / 1000.0,
        p_max_mw=-float(pool.p_min_kw.sum()) / 1000.0,
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
