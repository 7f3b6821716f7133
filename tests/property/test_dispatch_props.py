"""Allocation properties: meets a feasible requirement, respects every EV's limits, ignores absent EVs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from v2g.dispatch.pool import ReservePool, allocate, setpoints_kw
from v2g.markets.rules import Product, default_rules

RULES = default_rules()

ev = st.tuples(
    st.floats(0.0, 8.0),  # FCR-N reserve
    st.floats(-11.0, 11.0),  # baseline
    st.booleans(),  # available
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ev, min_size=1, max_size=40), st.floats(49.0, 51.0))
def test_allocation_meets_feasible_requirements_within_limits(
    evs: list[tuple[float, float, bool]], f_hz: float
) -> None:
    n = len(evs)
    pool = ReservePool.build(
        [f"ev{i}" for i in range(n)],
        [f"cp{i}" for i in range(n)],
        {Product.FCR_N: [e[0] for e in evs]},
        [e[1] for e in evs],
        [-11.0] * n,
        [11.0] * n,
    )
    pool.available[:] = [e[2] for e in evs]
    committed = float(pool.held_kw(Product.FCR_N))
    need = committed * RULES[Product.FCR_N].response_fraction(f_hz)
    response = allocate(pool, {Product.FCR_N: need})
    base = pool.baseline_p_kw
    up_room = np.where(pool.available, base - pool.p_min_kw, 0.0)
    down_room = np.where(pool.available, pool.p_max_kw - base, 0.0)
    assert (response <= up_room + 1e-6).all()
    assert (response >= -down_room - 1e-6).all()
    assert (response[~pool.available] == 0).all()
    feasible = -down_room.sum() <= need <= up_room.sum()
    if feasible:
        assert abs(response.sum() - need) < 1e-6 * max(1.0, abs(need))
    p = setpoints_kw(pool, response)
    assert (p >= pool.p_min_kw - 1e-9).all()
    assert (p <= pool.p_max_kw + 1e-9).all()
