"""Re-planning reuses the previous solution and finds the same optimum as a fresh plan."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.planning_helpers import bare_rules, ev, problem
from v2g.planning import FleetPlanner, PlannerOptions, Product, Strategy, check_schedule, plan

PRICES = (60.0, 50.0, 20.0, 10.0, 15.0, 40.0, 70.0, 80.0) + (30.0,) * 8


def fleet_problem():  # type: ignore[no-untyped-def]
    evs = [ev(f"e{i}", soc=20.0 + i, target=35.0, arrive_q=i % 3, depart_q=16 - i % 2, eta=0.92) for i in range(12)]
    areas = {f"e{i}": ("north" if i < 6 else "south") for i in range(12)}
    return problem(
        evs,
        PRICES,
        n=16,
        import_kw=40.0,
        reserve={Product.FCR_N: (20.0,) * 4, Product.FCR_D_UP: (8.0,) * 4, Product.FCR_D_DOWN: (6.0,) * 4},
        rules=bare_rules(battery_wear_eur_per_kwh=0.03),
        areas=areas,
    )


def test_replan_after_one_ev_changes_solves_only_that_ev() -> None:
    prob = fleet_problem()
    planner = FleetPlanner(PlannerOptions(workers=1, keep_state=True))
    first = planner.plan(prob)
    assert first.extra["ev_lps_solved"] == 12
    # EV e7 (area south) reports a lower SoC and leaves 15 minutes earlier
    changed = replace(prob.evs[7], soc_kwh=15.0, departure_at=prob.evs[7].departure_at - timedelta(minutes=15))
    prob2 = replace(prob, evs=(*prob.evs[:7], changed, *prob.evs[8:]))
    second = planner.replan(prob2)
    assert second.extra["ev_lps_solved"] == 1
    reused = {a.area_id: a for a in second.area_stats}
    assert reused["north"].ev_lps_solved == 0
    fresh = plan(prob2, Strategy.V2G_RESERVES, PlannerOptions(workers=1, keep_state=False))
    assert second.lp_objective_eur == pytest.approx(fresh.lp_objective_eur, rel=1e-9, abs=1e-9)
    assert check_schedule(prob2, second) == []
    # nothing changed: nothing is solved
    third = planner.replan(prob2)
    assert third.extra["ev_lps_solved"] == 0
    assert third.lp_objective_eur == pytest.approx(second.lp_objective_eur, rel=1e-12)


def test_replan_with_a_new_arrival_in_a_binding_area() -> None:
    prob = fleet_problem()
    prob = replace(prob, grid_areas=tuple(replace(a, import_limit_kw=(25.0,)) for a in prob.grid_areas))
    planner = FleetPlanner(PlannerOptions(workers=1))
    planner.plan(prob)
    late = ev("late", soc=10.0, target=30.0, arrive_q=4, depart_q=16, eta=0.92)
    prob2 = problem(
        [*prob.evs, late],
        PRICES,
        n=16,
        import_kw=25.0,
        reserve=prob.reserve_eur_per_mw_h,
        rules=prob.rules,
        areas={**{f"e{i}": ("north" if i < 6 else "south") for i in range(12)}, "late": "north"},
    )
    again = planner.replan(prob2)
    assert again.extra["ev_lps_solved"] == 1
    fresh = plan(prob2, Strategy.V2G_RESERVES, PlannerOptions(workers=1, keep_state=False))
    assert again.lp_objective_eur == pytest.approx(fresh.lp_objective_eur, rel=1e-8)
    assert check_schedule(prob2, again) == []


def test_an_arrival_that_moves_every_ev_down_one_place_re_uses_their_preparation() -> None:
    """The planner keeps each EV's prepared inputs between plans; an EV sorted in front of the others
    shifts their positions, and the re-plan is still the optimum a fresh plan finds."""
    prob = fleet_problem()
    planner = FleetPlanner(PlannerOptions(workers=1, keep_state=True))
    planner.plan(prob)
    first = ev("a-first", soc=12.0, target=30.0, arrive_q=2, depart_q=16, eta=0.92)
    prob2 = problem(
        [first, *prob.evs],
        PRICES,
        n=16,
        import_kw=40.0,
        reserve={Product.FCR_N: (20.0,) * 4, Product.FCR_D_UP: (8.0,) * 4, Product.FCR_D_DOWN: (6.0,) * 4},
        rules=bare_rules(battery_wear_eur_per_kwh=0.03),
        areas={"a-first": "north", **{f"e{i}": ("north" if i < 6 else "south") for i in range(12)}},
    )
    second = planner.replan(prob2)
    assert second.extra["ev_lps_solved"] == 1  # the newcomer's; the others' optima are kept
    fresh = plan(prob2, Strategy.V2G_RESERVES, PlannerOptions(workers=1, keep_state=False))
    assert second.lp_objective_eur == pytest.approx(fresh.lp_objective_eur, rel=1e-9, abs=1e-9)
    assert [p.ev_id for p in second.ev_plans] == [p.ev_id for p in fresh.ev_plans]
    assert check_schedule(prob2, second) == []
