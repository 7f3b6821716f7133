"""LER energy management, endurance and maintained capacity as FCR-TR v1.1 §3.5 and §3.9.1 write them."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from v2g.dispatch.ler import EnergyState, LerManager, endurance_by_product, endurance_min
from v2g.dispatch.pool import ReservePool
from v2g.dispatch.verification import maintained_capacity_kw
from v2g.markets.rules import MarketRules, Product, default_rules
from v2g.prequal.groups import AggregationError, check_one_directional, is_ler
from v2g.services.dispatch.central import CentralDispatcher
from v2g.sim.twin import TwinFleet, TwinGateway, UnitSpec

RULES = default_rules()


def one_ev(product: Product, c_kw: float, baseline_kw: float = 0.0) -> ReservePool:
    return ReservePool.build(["ev"], ["cp"], {product: [c_kw]}, [baseline_kw], [-11.0], [11.0])


def window(up_kwh: float, down_kwh: float = 40.0) -> EnergyState:
    """An EV with ``up_kwh`` to give and ``down_kwh`` to take (efficiencies 1)."""
    return EnergyState(np.array([10.0 + up_kwh]), np.array([10.0]), np.array([10.0 + up_kwh + down_kwh]), 1.0, 1.0)


def test_fcr_n_nem_only_inside_the_normal_band() -> None:
    pool = one_ev(Product.FCR_N, 6.0)
    low = window(6.0 * 29 / 60)  # 29 min up: below the 30 min NEM threshold
    outside = LerManager(RULES, 1)
    for _ in range(300):
        shift, _ = outside.update(pool, low, 50.15)
    assert shift[0] == 0.0
    assert not outside.nem_active[0]
    inside = LerManager(RULES, 1)
    for _ in range(300):
        shift, _ = inside.update(pool, low, 50.05)
    assert shift[0] == pytest.approx(0.34 * 6.0)  # restores by charging at 0.34·C


def test_nem_current_is_the_5_minute_rolling_mean_of_nem_allowed() -> None:
    pool, ler = one_ev(Product.FCR_N, 6.0), LerManager(RULES, 1)
    low = window(6.0 * 20 / 60)
    shifts = [ler.update(pool, low, 50.0)[0][0] for _ in range(300)]
    assert shifts[0] == pytest.approx(0.34 * 6.0 / 300)
    assert shifts[149] == pytest.approx(0.34 * 6.0 * 150 / 300)
    assert shifts[299] == pytest.approx(0.34 * 6.0)
    # leaving the band sets NEM_allowed to 0; NEM_current ramps back to 0 over the next 5 minutes
    after = [ler.update(pool, low, 49.85)[0][0] for _ in range(300)]
    assert after[149] == pytest.approx(0.34 * 6.0 * 150 / 300)
    assert after[299] == pytest.approx(0.0)


def test_fcr_n_nem_hysteresis_30_on_57_5_off() -> None:
    pool, ler = one_ev(Product.FCR_N, 6.0), LerManager(RULES, 1)
    ler.update(pool, window(6.0 * 31 / 60), 50.0)
    assert not ler.nem_low[Product.FCR_N][0]
    ler.update(pool, window(6.0 * 29 / 60), 50.0)
    assert ler.nem_low[Product.FCR_N][0]
    ler.update(pool, window(6.0 * 50 / 60), 50.0)
    assert ler.nem_low[Product.FCR_N][0]
    ler.update(pool, window(6.0 * 58 / 60), 50.0)
    assert not ler.nem_low[Product.FCR_N][0]


def plan_response_kw(dispatcher: CentralDispatcher, energy: EnergyState, f_hz: float, seconds: int) -> list[float]:
    out = []
    for _ in range(seconds):
        dispatcher.update_energy(energy, f_hz)
        _, p = dispatcher.plan(f_hz)
        out.append(float(dispatcher.pool.baseline_p_kw[0] + dispatcher.shift_kw[0] - p[0]))
    return out


def central(pool: ReservePool, committed: dict[Product, float]) -> CentralDispatcher:
    fleet = TwinFleet([UnitSpec("cp", "ev", 64.0, 32.0, 6.4, 11.0, -11.0)], now=datetime(2026, 1, 5, tzinfo=UTC))
    return CentralDispatcher(pool, committed, TwinGateway(fleet), RULES, ler=LerManager(RULES, len(pool)))


def test_aem_shifts_the_frequency_reference_so_the_response_winds_down_over_5_minutes() -> None:
    pool = one_ev(Product.FCR_N, 6.0)
    d = central(pool, {Product.FCR_N: 6.0})
    nearly_empty = window(6.0 * 4 / 60)  # 4 min up at full activation: AEM (below 5 min)
    response = plan_response_kw(d, nearly_empty, 49.9, 300)
    assert d.ler is not None
    assert d.ler.aem[Product.FCR_N][0]
    # f_ref = mean of f_AEM: 49.9 Hz for the seconds in AEM, 50.0 Hz before; response = C/0.1·(f_ref - f)
    assert response[0] == pytest.approx(6.0 * (1 - 1 / 300), abs=1e-6)  # no sudden stop
    assert response[149] == pytest.approx(3.0, abs=1e-6)
    assert response[299] == pytest.approx(0.0, abs=1e-6)


def test_fcr_d_recovers_within_120_minutes_and_a_slower_restore_is_overdue() -> None:
    def recover(rules: MarketRules, seconds: int) -> tuple[float, LerManager]:
        pool, ler = one_ev(Product.FCR_D_UP, 10.0), LerManager(rules, 1)
        state = EnergyState(np.array([10.0]), np.array([10.0]), np.array([60.0]), 0.95, 0.95)
        for k in range(seconds):
            shift, _ = ler.update(pool, state, 50.0)
            soc = state.soc_kwh + np.maximum(shift, 0.0) * state.eta_charge / 3600.0
            state = replace(state, soc_kwh=soc)
            if endurance_by_product(pool, state)[Product.FCR_D_UP][0] >= 20.0:
                return k / 60.0, ler
        return float("inf"), ler

    minutes, ler = recover(RULES, 3 * 3600)
    # 20 min of 10 kW delivered (3.33 kWh / 0.95) restored at 0.20·C·0.95 after the 5-min NEM ramp
    assert minutes <= 120.0
    assert minutes == pytest.approx(20.0 / 0.2 / 0.95 / 0.95 + 2.5, abs=1.0)
    assert not ler.recovery_overdue(Product.FCR_D_UP)[0]
    slow_ler = replace(RULES[Product.FCR_D_UP].ler, nem_power_factor=0.1)  # type: ignore[type-var]
    slow_rules = replace(
        RULES, products={**RULES.products, Product.FCR_D_UP: replace(RULES[Product.FCR_D_UP], ler=slow_ler)}
    )
    minutes, ler = recover(slow_rules, 121 * 60)
    assert minutes == float("inf")
    assert ler.recovery_overdue(Product.FCR_D_UP)[0]


def test_endurance_includes_the_setpoint_and_fcr_n_is_the_smaller_direction() -> None:
    pool = one_ev(Product.FCR_N, 6.0, baseline_kw=3.0)  # charging at 3 kW
    e = window(3.0, 50.0)
    by_product = endurance_by_product(pool, e)
    # up: 3 kWh / (6 - 3) kW = 60 min; down: 50 kWh / (6 + 3) kW = 333 min; FCR-N = min
    assert by_product[Product.FCR_N][0] == pytest.approx(60.0)
    up, down = endurance_min(pool, e)
    assert up[0] == pytest.approx(60.0)
    assert down[0] == pytest.approx(50 / 9 * 60)
    aem = {p: np.array([p is Product.FCR_N]) for p in by_product}
    assert endurance_by_product(pool, e, aem=aem)[Product.FCR_N][0] == 0.0  # AEM reports 0


def test_ler_status_only_below_two_hours_of_full_activation() -> None:
    assert not is_ler(250.0, 300.0, 100.0, Product.FCR_N, RULES)  # 2.5 h both ways
    assert is_ler(150.0, 300.0, 100.0, Product.FCR_N, RULES)  # 1.5 h up
    assert not is_ler(150.0, 300.0, 100.0, Product.FCR_D_DOWN, RULES)  # only down counts
    with pytest.raises(AggregationError, match="one-directional chargers need 2 h"):
        check_one_directional(150.0, 300.0, 100.0, Product.FCR_D_UP, RULES)
    check_one_directional(250.0, 300.0, 100.0, Product.FCR_D_UP, RULES)


def test_maintained_capacity_eq_29_31() -> None:
    # P_max - P_base = 50 kW of up room, P_base - P_min = 30 kW of down room (injection terms)
    c = {Product.FCR_N: 20.0, Product.FCR_D_UP: 40.0, Product.FCR_D_DOWN: 5.0}
    m = maintained_capacity_kw(up_room_kw=50.0, down_room_kw=30.0, capacity_kw=c)
    assert m[Product.FCR_N] == 20.0  # min(50, 30, 20)
    assert m[Product.FCR_D_UP] == 30.0  # min(50 - 20, 40)
    assert m[Product.FCR_D_DOWN] == 5.0  # min(30 - 20, 5)
    tight = maintained_capacity_kw(up_room_kw=15.0, down_room_kw=30.0, capacity_kw=c)
    assert tight == {Product.FCR_N: 15.0, Product.FCR_D_UP: 0.0, Product.FCR_D_DOWN: 5.0}


def test_dispatcher_runs_energy_management_through_a_run() -> None:
    pool = one_ev(Product.FCR_N, 6.0)
    d = central(pool, {Product.FCR_N: 6.0})
    d.update_energy(window(6.0 * 20 / 60), 50.0)
    result = asyncio.run(d.on_frequency(50.0))
    assert result.setpoints_kw[0] == pytest.approx(0.34 * 6.0 / 300)


def test_fcr_n_nem_counts_only_the_energy_left_after_the_fcr_d_reservation() -> None:
    # 6 kW FCR-N and 6 kW FCR-D up: 20 min of FCR-D up (2 kWh) is FCR-D's; FCR-N sees the rest
    pool = ReservePool.build(["ev"], ["cp"], {Product.FCR_N: [6.0], Product.FCR_D_UP: [6.0]}, [0.0], [-11.0], [11.0])
    ler = LerManager(RULES, 1)
    ler.update(pool, window(6.0 * 29 / 60 + 2.0), 50.0)  # 49 min in total, 29 min for FCR-N
    assert ler.nem_low[Product.FCR_N][0]
    assert not ler.nem_low[Product.FCR_D_UP][0]  # FCR-D still has its 20 min (and more)
