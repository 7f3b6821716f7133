"""The LER energy-management test (FCR-TR v1.1 §3.5.3, Tables 12 and 13) through the dispatch path.

Each step holds its frequency; a step with an objective ("hold until NEM activates", "hold 5 min
after AEM activates" ...) lasts until the group reaches it (FCR-D step 1: its duration once the
reservoir is below the NEM threshold, which the table expects at the start), as the tables ask the durations to be
adjusted to the reservoir, at most ``ler_max_step_min``. At the end of every step the group's NEM and
AEM states must be those the table gives (Requirement 12 for LER). The energy management runs once
per second, as in operation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from v2g.dispatch.ler import EnergyState, LerManager, endurance_by_product
from v2g.dispatch.pool import ReservePool
from v2g.markets.rules import LerTestStep, MarketRules, Product
from v2g.prequal.criteria import Outcome, Requirement
from v2g.prequal.report import TestLog, table_18_service
from v2g.prequal.sequences import TestSignal, mirror_hz
from v2g.services.devices.ports import ChargerGateway
from v2g.services.dispatch.central import CentralDispatcher

if TYPE_CHECKING:
    from v2g.services.prequal.runner import CentralLoop, UnitRig


def _flags(ler: LerManager, product: Product) -> tuple[bool, bool]:
    nem = bool((ler.nem_low[product] | ler.nem_high[product]).any())
    return nem, bool(ler.aem[product].any())


def _nem_due(pool: ReservePool, energy: EnergyState, product: Product, rules: MarketRules) -> bool:
    """Some EV's reservoir is below the NEM threshold (NEM itself waits for the normal band)."""
    r = rules[product].ler
    assert r is not None
    c = pool.reserve_kw[product]
    held = c > 1e-9
    if not held.any():
        return False
    minutes = []
    if product is not Product.FCR_D_DOWN:
        minutes.append(energy.deliverable_up_kwh()[held] / c[held] * 60.0)
    if product is not Product.FCR_D_UP:
        minutes.append(energy.absorbable_down_kwh()[held] / c[held] * 60.0)
    return bool((np.minimum.reduce(minutes) < r.nem_on_below_min).any())


def _reached(step: LerTestStep, nem: bool, aem: bool, due: bool, memo: dict[str, float], t: float) -> bool:
    """Whether a step's objective is met at ``t`` (``memo`` keeps what happened earlier in the step)."""
    until = step.until
    if until == "nem_on":
        return nem
    if until == "nem_due":  # the table's duration once the reservoir is below the NEM threshold
        if due and "due_at" not in memo:
            memo["due_at"] = t
        return "due_at" in memo and t - memo["due_at"] >= step.duration_s - 1e-9
    if until == "nem_on_then_nem_aem_off":
        if nem:
            memo["on"] = t
        return "on" in memo and not nem and not aem
    if until == "aem_on_5min":
        if aem and "aem_at" not in memo:
            memo["aem_at"] = t
        return "aem_at" in memo and t - memo["aem_at"] >= 300.0
    if until == "nem_aem_off":
        return not nem and not aem
    if until == "nem_aem_off_then_nem_on":
        if not nem and not aem:
            memo["off"] = t
        return "off" in memo and nem and not aem
    msg = f"prequal.ler step until: {until!r} is not a known objective"
    raise ValueError(msg)


async def run_ler_test(
    product: Product,
    pool: ReservePool,
    capacity_kw: float,
    gateway: ChargerGateway,
    rig: UnitRig,
    rules: MarketRules,
    loop: CentralLoop,
    *,
    energy_management: bool = True,
) -> tuple[Outcome, list[TestLog]]:
    """Run Table 12 (FCR-N) or Table 13 (FCR-D, down mirrored) and check NEM/AEM at every step's end."""
    pq = rules.prequal
    steps: tuple[LerTestStep, ...] = pq.ler_fcr_n if product is Product.FCR_N else pq.ler_fcr_d
    ler = LerManager(rules, len(pool)) if energy_management else None
    dispatcher = CentralDispatcher(pool, {product: capacity_kw}, gateway, rules, ler=ler)
    dt = 1.0 / pq.ler_log_hz
    per_second = max(1, round(1.0 / dt))
    baseline = float(pool.baseline_p_kw[pool.available].sum())
    rows: dict[str, list[float]] = {k: [] for k in ("t", "f", "p", "base", "res", "nem_mw", "nem", "aem", "soc")}
    reqs: list[Requirement] = []
    t = 0.0
    k = 0
    next_update = 0.0
    for number, step in enumerate(steps):
        f = mirror_hz(product, step.f_hz)
        start = t
        memo: dict[str, float] = {}
        limit = pq.ler_max_step_s if step.until != "-" else step.duration_s
        reached = step.until == "-"
        while t - start < limit - 1e-9:
            if k:
                rig.advance(dt, f)
            if k % per_second == 0:
                energy = rig.energy()
                dispatcher.update_energy(energy, f)
                nem, aem = _flags(ler, product) if ler is not None else (False, False)
                due = _nem_due(pool, energy, product, rules)
            if t >= next_update - 1e-9:
                await dispatcher.on_frequency(f)
                next_update = t + loop.setpoint_interval_s
            _log(rows, t, f, rig.group_power_kw(), baseline, dispatcher, energy, product, nem, aem)
            t += dt
            k += 1
            if step.until != "-" and _reached(step, nem, aem, due, memo, t):
                reached = True
                break
        nem, aem = _flags(ler, product) if ler is not None else (False, False)
        label = f"step {number} at {f:.2f} Hz"
        reqs.append(
            Requirement(
                f"{product.value}_energy_management",
                f"req12_step{number}",
                f"{label}: NEM {'on' if step.nem else 'off'}, AEM {'on' if step.aem else 'off'}"
                + (f", objective {step.until} reached" if step.until != "-" else ""),
                float(nem) + 2.0 * float(aem),
                float(step.nem) + 2.0 * float(step.aem),
                "",
                nem == step.nem and aem == step.aem and reached,
            )
        )
    signal = TestSignal(
        f"{product.value}_energy_management",
        product,
        dt,
        np.array(rows["t"]),
        np.array(rows["f"]),
        test_type="EnergyManagement",
    )
    p = np.array(rows["p"])
    service = table_18_service(product)
    log = TestLog(
        signal,
        p,
        np.array(rows["base"]) - p,
        np.array([capacity_kw * rules[product].response_fraction(float(x)) for x in rows["f"]]),
        np.array(rows["base"]),
        {
            f"ResSize_{service}": np.array(rows["res"]),
            f"NEM_MW_{service}": np.array(rows["nem_mw"]),
            f"NEM_{service}": np.array(rows["nem"]),
            f"AEM_{service}": np.array(rows["aem"]),
            "SOC": np.array(rows["soc"]),
        },
    )
    return Outcome(reqs), [log]


def _log(
    rows: dict[str, list[float]],
    t: float,
    f: float,
    p_kw: float,
    baseline_kw: float,
    dispatcher: CentralDispatcher,
    energy: EnergyState,
    product: Product,
    nem: bool,
    aem: bool,
) -> None:
    pool = dispatcher.pool
    aem_by = dispatcher.ler.aem if dispatcher.ler is not None else None
    endurance = endurance_by_product(pool, energy, dispatcher.shift_kw, aem_by)[product]
    c = pool.reserve_kw[product]
    held = c > 0
    rows["t"].append(t)
    rows["f"].append(f)
    rows["p"].append(p_kw)
    rows["base"].append(baseline_kw + float(dispatcher.shift_kw.sum()))
    rows["res"].append(float(np.min(endurance[held])) if held.any() else 0.0)
    rows["nem_mw"].append(-float(dispatcher.shift_kw.sum()) / 1000.0)  # injection sign, MW
    rows["nem"].append(float(nem))
    rows["aem"].append(float(aem))
    rows["soc"].append(float(energy.soc_kwh.sum() / energy.soc_max_kwh.sum() * 100.0))
