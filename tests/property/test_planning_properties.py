"""Random feasible fleets: every plan passes check_schedule and the decomposition equals the monolithic LP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.planning_helpers import START, bare_rules
from v2g.fleet.model import PriceArea
from v2g.planning import (
    EvSession,
    GridAreaLimits,
    PlannerOptions,
    PlanningProblem,
    Product,
    SiteLimits,
    Strategy,
    check_schedule,
    load_rules,
    plan,
)
from v2g.planning.planner import solve_monolithic

N = 16  # four hours


@st.composite
def fleets(draw: st.DrawFn) -> PlanningProblem:
    n_evs = draw(st.integers(1, 8))
    n_areas = draw(st.integers(1, 3))
    evs, sites = [], []
    for i in range(n_evs):
        battery = draw(st.floats(20.0, 100.0))
        minimum = battery * draw(st.floats(0.0, 0.3))
        soc = draw(st.floats(0.0, battery))
        target = draw(st.floats(minimum, battery))
        a = draw(st.integers(-2, N - 1))
        b = draw(st.integers(max(a + 1, 1), N + 6))
        p_kw = draw(st.sampled_from([3.7, 7.4, 11.0]))
        eta = draw(st.sampled_from([0.85, 0.9, 0.95, 1.0]))
        availability = tuple(draw(st.lists(st.floats(0.5, 1.0), min_size=N // 4, max_size=N // 4)))
        evs.append(
            EvSession(
                ev_id=f"ev{i}",
                site_id=f"s{i}",
                battery_kwh=battery,
                soc_kwh=soc,
                min_soc_kwh=minimum,
                target_soc_kwh=target,
                arrival_at=START + timedelta(minutes=15 * a + draw(st.integers(0, 14))),
                departure_at=START + timedelta(minutes=15 * b),
                max_charge_kw=p_kw,
                max_discharge_kw=p_kw if draw(st.booleans()) else 0.0,
                charge_efficiency=eta,
                discharge_efficiency=eta,
                availability=availability if draw(st.booleans()) else None,
            )
        )
        load = tuple(draw(st.lists(st.floats(0.0, 8.0), min_size=N, max_size=N)))
        sites.append(SiteLimits(f"s{i}", f"ga{i % n_areas}", draw(st.sampled_from([11.0, 13.8, 17.3])), load))
    areas = tuple(
        GridAreaLimits(
            f"ga{j}",
            PriceArea.SE3,
            tuple(draw(st.lists(st.floats(0.0, 40.0), min_size=N, max_size=N))),
            (draw(st.floats(0.0, 40.0)),),
        )
        for j in range(n_areas)
    )
    price = st.floats(-50.0, 300.0)
    hourly = draw(st.booleans())
    prices = tuple(draw(st.lists(price, min_size=N // 4 if hourly else N, max_size=N // 4 if hourly else N)))
    reserve = {p: tuple(draw(st.lists(st.floats(0.0, 400.0), min_size=N // 4, max_size=N // 4))) for p in Product}
    rules = bare_rules() if draw(st.booleans()) else load_rules()
    return PlanningProblem(
        START,
        N,
        tuple(evs),
        tuple(sites),
        areas,
        {PriceArea.SE3: prices},
        reserve,
        rules.with_options(min_bid_mw=0.01, bid_granularity_mw=0.001),
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets(), st.sampled_from(list(Strategy)))
def test_every_plan_passes_the_independent_check(prob: PlanningProblem, strategy: Strategy) -> None:
    result = plan(prob, strategy, PlannerOptions(workers=1, keep_state=False))
    assert check_schedule(prob, result) == []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets())
def test_decomposition_equals_the_monolithic_optimum(prob: PlanningProblem) -> None:
    result = plan(prob, Strategy.V2G_RESERVES, PlannerOptions(workers=1, keep_state=False))
    mono, status = solve_monolithic(prob)
    assert status == "Optimal"
    if result.extra["direction_fixes"] == 0:
        assert result.lp_objective_eur == pytest.approx(mono, rel=1e-6, abs=1e-6)
    else:  # deeply negative prices: the charger cannot burn energy as the relaxation does
        assert result.lp_objective_eur >= mono - 1e-6 * max(1.0, abs(mono))
    assert sum(a.objective_eur for a in result.area_stats) == pytest.approx(result.lp_objective_eur)
