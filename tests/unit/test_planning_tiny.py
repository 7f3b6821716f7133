"""Tiny fleets whose optimum can be computed by hand; every result is re-checked by check_schedule."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from tests.planning_helpers import START, bare_rules, ev, problem
from v2g.planning import (
    FleetPlan,
    PlannerOptions,
    PlanningInputError,
    PlanningProblem,
    Product,
    Strategy,
    check_schedule,
    plan,
)
from v2g.planning.planner import confidence_z, solve_monolithic

ONE = PlannerOptions(workers=1, keep_state=False)


def run(prob: PlanningProblem, strategy: Strategy) -> FleetPlan:
    result = plan(prob, strategy, ONE)
    assert check_schedule(prob, result) == []
    return result


def test_smart_charges_in_the_cheapest_quarter() -> None:
    # 11 kW for one quarter at eta 0.92 adds 11 * 0.25 * 0.92 = 2.53 kWh: the target 12.53 needs exactly one
    # full quarter. Cheapest quarter: 10 EUR/MWh -> cost 11 * 0.25 * 10 / 1000 = 0.0275 EUR.
    prob = problem([ev("a", soc=10.0, target=12.53, eta=0.92)], (40.0, 10.0, 30.0, 20.0))
    result = run(prob, Strategy.SMART)
    assert result.lp_objective_eur == pytest.approx(0.0275, abs=1e-9)
    assert result.ev_plans[0].p_kw.tolist() == pytest.approx([0.0, 11.0, 0.0, 0.0], abs=1e-7)
    assert result.ev_plans[0].schedule(START).p_kw[1] == pytest.approx(11.0)


def test_uncontrolled_charges_on_arrival() -> None:
    # full power in the first quarter: 11 * 0.25 * 40 / 1000 = 0.11 EUR
    prob = problem([ev("a", soc=10.0, target=12.53, eta=0.92)], (40.0, 10.0, 30.0, 20.0))
    result = run(prob, Strategy.UNCONTROLLED)
    assert result.ev_plans[0].p_kw.tolist() == pytest.approx([11.0, 0.0, 0.0, 0.0], abs=1e-7)
    assert result.objective_eur == pytest.approx(0.11, abs=1e-9)


def test_v2g_spot_arbitrage() -> None:
    # discharge in the two 100 EUR/MWh quarters (2 x 2.75 kWh, +0.55 EUR), charge back in the two 10 EUR/MWh
    # quarters (2 x 2.75 kWh, -0.055 EUR); eta 1, no wear: objective -0.495 EUR.
    prob = problem([ev("a")], (100.0, 10.0, 10.0, 100.0))
    result = run(prob, Strategy.V2G_SPOT)
    assert result.lp_objective_eur == pytest.approx(-0.495, abs=1e-9)
    assert result.ev_plans[0].p_kw.tolist() == pytest.approx([-11.0, 11.0, 11.0, -11.0], abs=1e-7)
    smart = run(prob, Strategy.SMART)
    assert smart.lp_objective_eur == pytest.approx(0.0, abs=1e-9)


def test_fcr_n_capacity_and_the_minimum_bid() -> None:
    # FCR-N at 100 EUR/MW/h, flat spot 0: each EV can hold n = 11 / 1.34 kW (power range 1.34 C) and has energy
    # for 1 h each way. LP: 13 x 11/1.34 x 100/1000 = 10.6716 EUR. The bid is floored to 0.1 MW (106.7 kW
    # available): revenue 100 x 0.1 = 10 EUR.
    prob = problem(
        [ev(f"e{i}") for i in range(13)],
        (0.0,) * 4,
        reserve={Product.FCR_N: (100.0,)},
    )
    result = run(prob, Strategy.V2G_RESERVES)
    assert result.lp_objective_eur == pytest.approx(-13 * 11 / 1.34 * 0.1, rel=1e-9)
    assert len(result.bids) == 1
    bid = result.bids[0]
    assert (bid.product, bid.mw, bid.hour_start_at) == (Product.FCR_N, pytest.approx(0.1), START)
    assert result.reserve_revenue_eur == pytest.approx(10.0, abs=1e-9)
    assert result.objective_eur == pytest.approx(-10.0, abs=1e-9)
    assert sum(p.reserve_kw[Product.FCR_N][0] for p in result.ev_plans) == pytest.approx(100.0)


def test_below_minimum_bid_nothing_is_bid() -> None:
    # one EV: 8.2 kW < 0.1 MW -> no bid, no reserve held, no revenue
    prob = problem([ev("a")], (0.0,) * 4, reserve={Product.FCR_N: (100.0,)})
    result = run(prob, Strategy.V2G_RESERVES)
    assert result.bids == ()
    assert result.ev_plans[0].reserve_kw[Product.FCR_N][0] == 0.0
    assert result.confidence_cost.expected_revenue_eur == pytest.approx(11 / 1.34 * 0.1)


def test_energy_limits_fcr_d_up() -> None:
    # FCR-D up needs 1/3 h of energy above the minimum: SoC 12, min 10 -> u <= 2 / (1/3) = 6 kW; power allows
    # 11 kW. 20 EVs x 6 kW = 120 kW -> bid 0.1 MW at 60 EUR/MW/h: LP -20 x 6 x 0.06 = -7.2, as bid -6.
    prob = problem(
        [ev(f"e{i}", soc=12.0, target=12.0) for i in range(20)],
        (0.0,) * 4,
        reserve={Product.FCR_D_UP: (60.0,)},
    )
    result = run(prob, Strategy.V2G_RESERVES)
    assert result.lp_objective_eur == pytest.approx(-7.2, abs=1e-7)
    assert result.objective_eur == pytest.approx(-6.0, abs=1e-9)


def test_confidence_uses_the_portfolio() -> None:
    # 30 EVs, availability 0.9, 11/1.34 kW each: expected 0.9 x 30 x 8.2090 = 221.64 kW; sigma =
    # sqrt(30 x 0.09 x 8.2090^2) = 13.489 kW; at 95 % (z 1.6449) deliverable 199.45 kW -> bid 0.1 MW.
    evs = [ev(f"e{i}", availability=(0.9,)) for i in range(30)]
    prob = problem(evs, (0.0,) * 4, reserve={Product.FCR_N: (100.0,)})
    result = run(prob, Strategy.V2G_RESERVES)
    c = 11 / 1.34
    expected = 0.9 * 30 * c
    sigma = (30 * 0.09 * c * c) ** 0.5
    deliverable = expected - confidence_z(0.95, "normal") * sigma
    assert deliverable == pytest.approx(199.45, abs=0.01)
    assert [b.mw for b in result.bids] == [pytest.approx(0.1)]
    assert result.confidence_cost.expected_revenue_eur == pytest.approx(expected * 0.1)
    assert result.confidence_cost.cost_eur == pytest.approx((expected - deliverable) * 0.1)
    assert result.confidence_cost.rounding_cost_eur == pytest.approx(deliverable * 0.1 - 10.0)
    # a lower confidence bids more of the same capacity
    low = run(replace(prob, rules=bare_rules(confidence=0.5)), Strategy.V2G_RESERVES)
    assert [b.mw for b in low.bids] == [pytest.approx(0.2)]


def test_grid_area_limit_couples_evs() -> None:
    # two EVs each need one full quarter; the area allows 11 kW: one charges at 10, the other at 20 EUR/MWh.
    # cost 11 x 0.25 x (10 + 20) / 1000 = 0.0825 EUR
    evs = [ev("a", soc=10.0, target=12.75), ev("b", soc=10.0, target=12.75)]
    prob = problem(evs, (40.0, 10.0, 20.0, 30.0), import_kw=11.0)
    result = run(prob, Strategy.SMART)
    assert result.lp_objective_eur == pytest.approx(0.0825, abs=1e-9)
    assert result.area_stats[0].method in ("crash", "ipm", "clarabel")
    mono, status = solve_monolithic(prob, Strategy.SMART)
    assert status == "Optimal"
    assert mono == pytest.approx(result.lp_objective_eur, abs=1e-9)


def test_impossible_target_is_reported_and_best_effort() -> None:
    # 4 quarters at 11 kW add at most 11 kWh: target 50 from 30 is out of reach
    prob = problem([ev("a", soc=30.0, target=50.0)], (10.0,) * 4)
    result = run(prob, Strategy.V2G_RESERVES)
    assert [s.ev_id for s in result.shortfalls] == ["a"]
    assert result.shortfalls[0].planned_soc_kwh == pytest.approx(41.0)
    assert "reachable" in result.shortfalls[0].reason
    assert result.ev_plans[0].p_kw.tolist() == pytest.approx([11.0] * 4)


def test_grid_limits_make_a_target_impossible() -> None:
    evs = [ev("a", soc=10.0, target=20.0), ev("b", soc=10.0, target=20.0)]
    prob = problem(evs, (10.0,) * 4, import_kw=11.0)
    result = run(prob, Strategy.SMART)
    assert {s.reason for s in result.shortfalls} == {"grid area limits"}
    # the area passes 11 kW x 1 h = 11 kWh in total: the two EVs end with 10 + 10 + 11 = 31 kWh together
    assert sum(float(p.soc_kwh[4]) for p in result.ev_plans) == pytest.approx(31.0)
    assert result.shortfalls


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"battery_kwh": -1.0}, "ev[a].battery_kwh"),
        ({"soc_kwh": 70.0}, "ev[a].soc_kwh"),
        ({"site_id": "nowhere"}, "ev[a].site_id: unknown site 'nowhere'"),
        ({"charge_efficiency": 1.5}, "ev[a].charge_efficiency"),
        ({"departure_at": datetime(2026, 11, 25, 12)}, "ev[a].departure_at: naive datetime"),
        ({"availability": (1.5,)}, "ev[a].availability[0]"),
        ({"target_soc_kwh": 5.0}, "ev[a].target_soc_kwh"),
    ],
)
def test_malformed_ev_names_the_field(change: dict[str, object], message: str) -> None:
    prob = problem([ev("a")], (10.0,) * 4)
    bad = replace(prob, evs=(replace(prob.evs[0], **change),))  # type: ignore[arg-type]
    with pytest.raises(PlanningInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plan(bad, Strategy.SMART, ONE)


def test_malformed_series_name_the_interval() -> None:
    prob = problem([ev("a")], (10.0, float("nan"), 1.0, 2.0))
    with pytest.raises(PlanningInputError, match=r"day_ahead_eur_per_mwh\[SE3\]\[1\]"):
        plan(prob, Strategy.SMART, ONE)
    prob = problem([ev("a"), ev("a")], (10.0,) * 4)
    with pytest.raises(PlanningInputError, match=r"ev\[a\]: duplicate EV id"):
        plan(prob, Strategy.SMART, ONE)


def test_check_schedule_catches_a_tampered_plan() -> None:
    prob = problem([ev("a", soc=10.0, target=12.53, eta=0.92)], (40.0, 10.0, 30.0, 20.0), import_kw=11.0)
    result = run(prob, Strategy.SMART)
    p = result.ev_plans[0]
    tampered = replace(result, ev_plans=(replace(p, p_kw=p.p_kw * 0.0 + 12.0),))
    kinds = {v.kind for v in check_schedule(prob, tampered)}
    assert {"power", "grid_import", "soc_report"} <= kinds
    short = replace(result, ev_plans=(replace(p, p_kw=p.p_kw * 0.0),))
    assert "departure" in {v.kind for v in check_schedule(prob, short)}
