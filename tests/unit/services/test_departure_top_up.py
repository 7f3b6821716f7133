"""An EV that leaves inside a quarter charges what its plan left missing in the minutes it is still there."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.planning_helpers import ev, problem
from v2g.planning import FleetPlan, FleetPlanner, PlanningProblem, Product, Strategy
from v2g.services.planning.sessions import top_up_departure_quarters


def _tight(import_kw: float = 1e6) -> tuple[PlanningProblem, FleetPlan]:
    """20 kWh, wants 25.5 by 12:40; whole quarters to 12:30 give 11 kW x 0.5 h = 5.5 kWh at best (eta 0.92:
    5.06), so 0.44 kWh is left for the 10 minutes of the quarter it leaves in."""
    session = ev("ev-1", soc=20.0, target=25.5, depart_q=2, eta=0.92)
    session = replace(session, departure_at=session.departure_at + timedelta(minutes=10))
    planned = problem([session], (50.0, 60.0, 70.0, 80.0), import_kw=import_kw)
    return planned, FleetPlanner().plan(planned, Strategy.SMART)


def test_the_quarter_an_ev_leaves_in_charges_what_its_plan_left_missing() -> None:
    planned, plan = _tight()
    [p] = plan.ev_plans
    assert p.end_interval == 2
    assert p.soc_kwh[2] == pytest.approx(20.0 + 11.0 * 0.5 * 0.92)
    assert p.p_kw[2] == 0.0
    assert top_up_departure_quarters(plan, planned) == ["ev-1"]
    missing = 25.5 - (20.0 + 11.0 * 0.5 * 0.92)
    assert p.p_kw[2] == pytest.approx(missing / (0.92 * 10 / 60), abs=1e-3)
    assert p.p_kw[3] == 0.0


def test_no_top_up_beyond_the_area_limit_or_when_the_target_is_met() -> None:
    planned, plan = _tight(import_kw=1.0)  # the area takes 1 kW: the plan and the top-up stay within it
    [p] = plan.ev_plans
    top_up_departure_quarters(plan, planned)
    assert p.p_kw[2] <= 1.0 + 1e-9
    met = problem([ev("ev-2", soc=20.0, target=22.0, depart_q=2, eta=0.92)], (50.0, 60.0, 70.0, 80.0))
    met = replace(met, evs=(replace(met.evs[0], departure_at=met.evs[0].departure_at + timedelta(minutes=5)),))
    plan2 = FleetPlanner().plan(met, Strategy.SMART)
    assert top_up_departure_quarters(plan2, met) == []


def test_the_top_up_leaves_room_for_the_reserve_of_another_ev_at_the_site() -> None:
    planned, plan = _tight()
    [p] = plan.ev_plans
    sharing = replace(planned.sites[0], fuse_limit_kw=4.0)  # a small fuse: 4 kW for the site
    other = replace(p, ev_id="ev-0", p_kw=p.p_kw * 0.0, reserve_kw={Product.FCR_N: p.p_kw[:1] * 0.0 + 1.0})
    crowded = replace(planned, sites=(sharing,), evs=(*planned.evs, replace(planned.evs[0], ev_id="ev-0")))
    crowded_plan = replace(plan, ev_plans=(p, other))
    top_up_departure_quarters(crowded_plan, crowded)
    assert p.p_kw[2] <= 4.0 - 1.34 * 1.0 + 1e-9  # FCR-N of 1 kW may ask the other EV for 1.34 kW more
    assert p.p_kw[2] > 0.0
