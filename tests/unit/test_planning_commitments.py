"""Reserve commitments: sold capacity is held by the next plans, or the shortfall is reported."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.planning_helpers import START, ev, problem
from v2g.fleet.model import PriceArea
from v2g.planning import (
    PlannerOptions,
    PlanningInputError,
    PlanningProblem,
    Product,
    ReserveCommitment,
    Strategy,
    check_schedule,
    plan,
)
from v2g.planning.planner import solve_monolithic
from v2g.units import HOUR

PRICES = (80.0, 120.0, 30.0, 200.0, 60.0, 90.0, 150.0, 40.0)
RESERVE = {Product.FCR_N: (30.0, 45.0), Product.FCR_D_UP: (10.0, 60.0), Product.FCR_D_DOWN: (25.0, 5.0)}


def _fleet(**kwargs: object) -> PlanningProblem:
    evs = [
        ev("a", soc=20, target=40, depart_q=8, eta=0.92),
        ev("b", soc=40, target=30, depart_q=8),
        ev("c", soc=50, target=55, arrive_q=1, depart_q=7, p_kw=7.4),
    ]
    return problem(evs, PRICES, n=8, reserve=RESERVE, import_kw=25.0, **kwargs)  # type: ignore[arg-type]


def commit(product: Product, hour: int, kw: float, area: PriceArea = PriceArea.SE3) -> ReserveCommitment:
    return ReserveCommitment(area, product, START + HOUR * hour, kw)


def held(pr: PlanningProblem, product: Product, hour: int, result_plan: object) -> float:
    return float(sum(p.reserve_kw[product][hour] for p in result_plan.ev_plans))  # type: ignore[attr-defined]


def test_a_commitment_is_held_every_hour_and_not_bid_again() -> None:
    base = _fleet()
    commitments = (commit(Product.FCR_N, 0, 6.0), commit(Product.FCR_D_UP, 1, 9.0), commit(Product.FCR_D_DOWN, 1, 4))
    pr = replace(base, commitments=commitments)
    free = plan(base)
    result = plan(pr)
    assert check_schedule(pr, result) == []
    assert result.commitment_shortfalls == ()
    for c in commitments:
        hour = int((c.hour_start_at - START) // HOUR)
        assert held(pr, c.product, hour, result) >= c.kw - 1e-6
        assert held(pr, c.product, hour, free) < c.kw  # the commitment made the difference
    assert result.bids == ()  # the fleet is too small for 0.1 MW beyond the commitment


def test_an_impossible_commitment_gives_a_shortfall_and_a_valid_plan() -> None:
    pr = replace(_fleet(), commitments=(commit(Product.FCR_N, 0, 500.0), commit(Product.FCR_D_UP, 1, 2.0)))
    result = plan(pr)
    assert check_schedule(pr, result) == []
    (gap,) = result.commitment_shortfalls
    assert (gap.product, gap.hour_start_at, gap.committed_kw) == (Product.FCR_N, START, 500.0)
    # every EV holds what it can: three EVs at most 11, 11 and 7.4 kW / 1.34
    assert 0.0 < gap.planned_kw <= (11 + 11 + 7.4) / 1.34 + 1e-6
    assert gap.planned_kw == pytest.approx(held(pr, Product.FCR_N, 0, result), abs=1e-6)
    assert gap.missing_kw > 400
    assert held(pr, Product.FCR_D_UP, 1, result) >= 2.0 - 1e-6
    # departure targets still win over the commitment
    assert not result.shortfalls


def test_a_strategy_without_reserves_reports_every_commitment() -> None:
    pr = replace(_fleet(), commitments=(commit(Product.FCR_N, 0, 1.0), commit(Product.FCR_D_DOWN, 1, 1.0)))
    for strategy in (Strategy.SMART, Strategy.UNCONTROLLED):
        result = plan(pr, strategy)
        assert check_schedule(pr, result) == []
        assert len(result.commitment_shortfalls) == 2
        assert all("no reserves" in s.reason for s in result.commitment_shortfalls)


def test_without_commitments_results_are_unchanged() -> None:
    base = _fleet()
    reference = plan(base)
    # the same value the planner gave before commitments existed
    assert reference.lp_objective_eur == pytest.approx(0.1462318840579681, abs=1e-9)
    assert reference.objective_eur == pytest.approx(1.1828260869565208, abs=1e-9)
    zero = plan(replace(base, commitments=(commit(Product.FCR_N, 0, 0.0),)))
    assert zero.lp_objective_eur == pytest.approx(reference.lp_objective_eur, abs=1e-9)
    assert zero.objective_eur == pytest.approx(reference.objective_eur, abs=1e-9)
    for a, b in zip(zero.ev_plans, reference.ev_plans, strict=True):
        np.testing.assert_allclose(a.p_kw, b.p_kw, atol=1e-9)


def test_a_commitment_in_a_price_area_without_evs_changes_nothing_else() -> None:
    base = _fleet()
    other = replace(
        base,
        grid_areas=(*base.grid_areas, replace(base.grid_areas[0], area_id="empty", price_area=PriceArea.SE4)),
        day_ahead_eur_per_mwh={**base.day_ahead_eur_per_mwh, PriceArea.SE4: PRICES},
        commitments=(commit(Product.FCR_N, 0, 3.0, PriceArea.SE4),),
    )
    result = plan(other)
    assert result.lp_objective_eur == pytest.approx(plan(base).lp_objective_eur, abs=1e-9)
    (gap,) = result.commitment_shortfalls
    assert gap.price_area == PriceArea.SE4
    assert "no EV" in gap.reason
    assert check_schedule(other, result) == []


def _two_areas(commitments: tuple[ReserveCommitment, ...]) -> PlanningProblem:
    evs = [
        ev("a1", soc=20, target=40, depart_q=8, eta=0.92),
        ev("a2", soc=45, target=30, depart_q=8),
        ev("b1", soc=30, target=35, depart_q=8, p_kw=7.4),
        ev("b2", soc=50, target=50, arrive_q=1, depart_q=8),
    ]
    areas = {"a1": "A", "a2": "A", "b1": "B", "b2": "B"}
    return replace(
        problem(evs, PRICES, n=8, reserve=RESERVE, import_kw=20.0, export_kw=15.0, areas=areas),
        commitments=commitments,
    )


def test_decomposed_and_monolithic_agree_with_commitments() -> None:
    pr = _two_areas((commit(Product.FCR_N, 0, 8.0), commit(Product.FCR_D_UP, 1, 6.0)))
    result = plan(pr, Strategy.V2G_RESERVES, PlannerOptions(workers=1, keep_state=False))
    mono, status = solve_monolithic(pr)
    assert status == "Optimal"
    assert result.commitment_shortfalls == ()
    assert result.lp_objective_eur == pytest.approx(mono, abs=1e-6)
    assert result.lp_objective_eur > plan(replace(pr, commitments=())).lp_objective_eur + 1e-3  # they bind
    assert check_schedule(pr, result) == []
    assert held(pr, Product.FCR_N, 0, result) >= 8.0 - 1e-6
    assert held(pr, Product.FCR_D_UP, 1, result) >= 6.0 - 1e-6


def test_a_larger_commitment_is_still_held_across_the_grid_areas() -> None:
    # area A cannot hold its capability share of FCR-D up in hour 1; area B takes the rest
    pr = _two_areas((commit(Product.FCR_N, 0, 12.0), commit(Product.FCR_D_UP, 1, 15.0)))
    result = plan(pr, Strategy.V2G_RESERVES, PlannerOptions(workers=2, keep_state=False))
    assert result.commitment_shortfalls == ()
    assert held(pr, Product.FCR_N, 0, result) >= 12.0 - 1e-6
    assert held(pr, Product.FCR_D_UP, 1, result) >= 15.0 - 1e-6
    assert check_schedule(pr, result) == []


def test_what_one_grid_area_cannot_hold_goes_to_another() -> None:
    # a1 must charge at full power for its target: it can hold no FCR-N; b1 idles and can hold 8.2 kW
    evs = [ev("a1", soc=10, target=21, depart_q=4), ev("b1", soc=30, target=30, depart_q=4)]
    pr = replace(
        problem(evs, PRICES[:4], n=4, areas={"a1": "A", "b1": "B"}),
        commitments=(commit(Product.FCR_N, 0, 8.0),),
    )
    result = plan(pr, Strategy.V2G_RESERVES, PlannerOptions(workers=1, keep_state=False))
    assert result.commitment_shortfalls == ()
    plans = {p.ev_id: p for p in result.ev_plans}
    assert plans["a1"].reserve_kw[Product.FCR_N][0] == pytest.approx(0.0, abs=1e-6)
    assert plans["b1"].reserve_kw[Product.FCR_N][0] >= 8.0 - 1e-6
    assert check_schedule(pr, result) == []


def test_replan_keeps_honouring_the_commitment() -> None:
    from v2g.planning import FleetPlanner

    pr = _two_areas((commit(Product.FCR_N, 1, 10.0),))
    planner = FleetPlanner(PlannerOptions(workers=1))
    first = planner.plan(pr)
    changed = replace(pr, evs=(replace(pr.evs[0], soc_kwh=25.0), *pr.evs[1:]))
    again = planner.replan(changed)
    fresh = plan(changed)
    assert again.lp_objective_eur == pytest.approx(fresh.lp_objective_eur, abs=1e-6)
    for result, case in ((first, pr), (again, changed)):
        assert check_schedule(case, result) == []
        assert held(case, Product.FCR_N, 1, result) >= 10.0 - 1e-6


def test_a_fleet_commitment_leaves_only_the_remainder_to_bid(shared_data: Path) -> None:
    from v2g.adapters.feeds.mimer import read_fcr_hourly
    from v2g.adapters.feeds.prices import read_day_ahead_hourly
    from v2g.planning.synthetic import generate_problem, load_behaviour

    fleet = generate_problem(
        150,
        load_behaviour(shared_data),
        read_day_ahead_hourly(shared_data / "prices" / "se_dayahead_hourly_2016_2023.csv"),
        read_fcr_hourly(shared_data / "ancillary" / "svk_mimer_fcr_hourly_2022-01_2025-06.csv"),
        day=datetime(2023, 3, 15, tzinfo=UTC),
        grid="congested",
        seed=1,
        evs_per_area=50,
    )
    options = PlannerOptions(workers=1, keep_state=False)
    free = plan(fleet, Strategy.V2G_RESERVES, options)
    assert free.lp_objective_eur == pytest.approx(
        -114.7133958743731, abs=1e-9
    )  # as before commitments (Mimer 2023 prices)
    bid = max(free.bids, key=lambda b: b.mw)
    sold = ReserveCommitment(bid.price_area, bid.product, bid.hour_start_at, bid.mw * 1000.0)
    result = plan(replace(fleet, commitments=(sold,)), Strategy.V2G_RESERVES, options)
    assert check_schedule(replace(fleet, commitments=(sold,)), result) == []
    assert result.commitment_shortfalls == ()
    same_hour = [b for b in result.bids if (b.product, b.hour_start_at) == (bid.product, bid.hour_start_at)]
    # what was sold is held; a new bid in that hour only offers what the plan holds beyond it
    total_kw = sum(
        p.reserve_kw[bid.product][int((bid.hour_start_at - fleet.start_at) // HOUR)] for p in result.ev_plans
    )
    assert total_kw >= sold.kw - 1e-6
    assert sum(b.mw for b in same_hour) * 1000.0 <= total_kw - sold.kw + 1e-6
    # the other hours are bid as before
    others = {(b.product, b.hour_start_at): b.mw for b in free.bids if b is not bid}
    assert {(b.product, b.hour_start_at): b.mw for b in result.bids if b not in same_hour}.keys() <= others.keys()


def test_commitments_are_validated_field_by_field() -> None:
    base = _fleet()
    bad = replace(
        base,
        commitments=(
            ReserveCommitment(PriceArea.SE1, Product.FCR_N, START, 1.0),
            ReserveCommitment(PriceArea.SE3, Product.FCR_N, START + HOUR * 5, 1.0),
            ReserveCommitment(PriceArea.SE3, Product.FCR_N, START, -2.0),
            ReserveCommitment(PriceArea.SE3, Product.FCR_N, datetime(2026, 11, 25, 12, 30, tzinfo=UTC), 1.0),
        ),
    )
    with pytest.raises(PlanningInputError) as err:
        bad.validate()
    text = str(err.value)
    assert "commitments[0].price_area" in text
    assert "commitments[1].hour_start_at" in text
    assert "outside the horizon" in text
    assert "commitments[2].kw: -2.0" in text
    assert "commitments[3].hour_start_at" in text
    assert "whole hour" in text


def test_replan_reuses_a_committed_area_only_while_its_share_is_the_same() -> None:
    from v2g.planning import FleetPlanner

    pr = _two_areas((commit(Product.FCR_N, 1, 10.0),))
    planner = FleetPlanner(PlannerOptions(workers=1))
    first = planner.plan(pr)
    again = planner.replan(pr)  # nothing changed: the areas' shares and EVs are the same
    assert again.extra["ev_lps_solved"] == 0
    assert all(a.wall_s == 0.0 for a in again.area_stats)  # each area's result kept, not solved again
    assert all(a.method == first_a.method for a, first_a in zip(again.area_stats, first.area_stats, strict=True))
    assert again.lp_objective_eur == pytest.approx(first.lp_objective_eur, rel=1e-12)
    # one EV's SoC moves: the shares follow the areas' capability, and the result is a fresh plan's
    changed = replace(pr, evs=(replace(pr.evs[0], soc_kwh=25.0), *pr.evs[1:]))
    moved = planner.replan(changed)
    assert moved.extra["ev_lps_solved"] >= 1
    assert moved.lp_objective_eur == pytest.approx(plan(changed).lp_objective_eur, abs=1e-6)
    assert held(changed, Product.FCR_N, 1, moved) >= 10.0 - 1e-6
