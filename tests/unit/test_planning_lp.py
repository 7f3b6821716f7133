"""The per-EV LP solver: warm-started HiGHS objects shared across efficiencies give the fresh optimum."""

from __future__ import annotations

import pytest

from tests.planning_helpers import ev, problem
from v2g.planning import Product, Strategy
from v2g.planning.lp import EvSolver, make_ev_lp
from v2g.planning.planner import _prepare, ler_factors

PRICES = (60.0, 50.0, 20.0, 10.0, 15.0, 40.0, 70.0, 80.0, 30.0, 25.0, 90.0, 35.0)


def test_shared_solver_matches_fresh_solvers() -> None:
    evs = [
        ev(f"e{i}", soc=15.0 + 3 * i, target=40.0, eta=(0.85, 0.92, 0.97)[i % 3], arrive_q=1, depart_q=12)
        for i in range(9)
    ]
    prob = problem(evs, PRICES, n=12, reserve=dict.fromkeys(Product, (20.0, 12.0, 7.0)))
    ler = ler_factors(prob)
    lps = [make_ev_lp(p.inputs, ler) for p in _prepare(prob, Strategy.V2G_RESERVES)]
    assert len({(lp.shape.m, lp.shape.k0) for lp in lps}) == 1
    assert len({lp.shape for lp in lps}) == 3
    shared = EvSolver()
    for lp in lps + lps[::-1]:
        _, _, _, got = shared.solve(lp)
        _, _, _, want = EvSolver().solve(lp)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9)
    assert shared.solved == 18
