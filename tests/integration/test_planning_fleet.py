"""Fleets generated from the real reference data: all strategies, parallel workers and a Ray cluster."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from v2g.adapters.feeds.mimer import read_fcr_hourly
from v2g.adapters.feeds.prices import read_day_ahead_hourly
from v2g.planning import PlannerOptions, PlanningProblem, Strategy, check_schedule, plan
from v2g.planning.planner import solve_monolithic
from v2g.planning.synthetic import generate_problem, load_behaviour


@pytest.fixture(scope="module")
def fleet(shared_data: Path) -> PlanningProblem:
    return generate_problem(
        150,
        load_behaviour(shared_data),
        read_day_ahead_hourly(shared_data / "prices" / "se_dayahead_hourly_2016_2023.csv"),
        read_fcr_hourly(shared_data / "ancillary" / "svk_mimer_fcr_hourly_2022-01_2025-06.csv"),
        day=datetime(2023, 3, 15, tzinfo=UTC),
        grid="congested",
        seed=1,
        evs_per_area=50,
    )


@pytest.mark.slow
def test_strategies_rank_and_pass_the_check(fleet: PlanningProblem) -> None:
    results = {s: plan(fleet, s, PlannerOptions(workers=2, keep_state=False)) for s in Strategy}
    for strategy, result in results.items():
        assert check_schedule(fleet, result) == [], strategy
    # the uncontrolled schedule ignores the area limits; the others respect them
    assert not results[Strategy.UNCONTROLLED].grid_limits_enforced
    smart, spot, full = (
        results[s].lp_objective_eur for s in (Strategy.SMART, Strategy.V2G_SPOT, Strategy.V2G_RESERVES)
    )
    assert full <= spot + 1e-6 <= smart + 2e-6
    assert results[Strategy.V2G_RESERVES].bids
    assert {a.method for a in results[Strategy.V2G_RESERVES].area_stats} <= {"per-ev", "crash", "ipm", "clarabel"}
    # every EV gets a PowerSchedule the device layer can send
    sched = results[Strategy.V2G_RESERVES].ev_plans[0].schedule(fleet.start_at)
    assert len(sched.p_kw) == 96


@pytest.mark.slow
def test_decomposed_equals_monolithic_on_real_data(fleet: PlanningProblem) -> None:
    result = plan(fleet, Strategy.V2G_RESERVES, PlannerOptions(workers=2, keep_state=False))
    mono, status = solve_monolithic(fleet)
    assert status == "Optimal"
    assert result.lp_objective_eur == pytest.approx(mono, rel=1e-6)


@pytest.mark.slow
def test_ray_cluster_gives_the_same_plan(fleet: PlanningProblem) -> None:
    ray = pytest.importorskip("ray")
    try:
        local = plan(fleet, Strategy.V2G_RESERVES, PlannerOptions(workers=1, keep_state=False))
        remote = plan(fleet, Strategy.V2G_RESERVES, PlannerOptions(workers=2, ray_address="local", keep_state=False))
    finally:
        ray.shutdown()
    assert remote.lp_objective_eur == pytest.approx(local.lp_objective_eur, rel=1e-9)
    assert check_schedule(fleet, remote) == []
