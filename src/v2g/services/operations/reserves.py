"""From the plan to the dispatcher: which EVs hold how much reserve in the current hour."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np

from v2g.dispatch.pool import ReservePool
from v2g.markets.commitments import Commitment
from v2g.markets.rules import FCR_PRODUCTS, Product
from v2g.planning.model import FleetPlan
from v2g.planning.model import Product as PlanProduct
from v2g.units import HOUR, QUARTER, ensure_utc


def pool_from_plan(
    plan: FleetPlan, at: datetime, limits_kw: Mapping[str, tuple[float, float]], online: Iterable[str] | None = None
) -> ReservePool:
    """The reserve pool of the hour that contains ``at``: each EV's planned reserve and baseline power.

    ``limits_kw`` maps an EV id to its (max discharge kW, max charge kW); EVs without a charger, or
    not in ``online`` when that is given, are in the pool but unavailable (their share is re-allocated).
    """
    at = ensure_utc(at, field="at")
    k = int((at - plan.start_at) / QUARTER)
    h = int((at - plan.start_at) / HOUR)
    inside = 0 <= k < plan.n_intervals
    evs = [p for p in plan.ev_plans if p.charger_id]
    n = len(evs)
    reserve: dict[Product, np.ndarray] = {p: np.zeros(n) for p in FCR_PRODUCTS}
    baseline = np.zeros(n)
    p_min = np.zeros(n)
    p_max = np.zeros(n)
    for i, ev in enumerate(evs):
        if inside:
            baseline[i] = float(ev.p_kw[k])
            for product in FCR_PRODUCTS:
                series = ev.reserve_kw.get(PlanProduct(product.value))
                if series is not None and h < len(series) and np.isfinite(series[h]):
                    reserve[product][i] = max(0.0, float(series[h]))
        dis_kw, ch_kw = limits_kw.get(ev.ev_id, (0.0, 0.0))
        p_min[i] = -abs(dis_kw)
        p_max[i] = abs(ch_kw)
    pool = ReservePool(
        ev_ids=[ev.ev_id for ev in evs],
        charger_ids=[ev.charger_id or "" for ev in evs],
        reserve_kw=reserve,
        baseline_p_kw=baseline,
        p_min_kw=p_min,
        p_max_kw=p_max,
    )
    if online is not None:
        up = set(online)
        for ev in evs:
            if ev.charger_id not in up:
                pool.set_available(ev.ev_id, False)
    return pool


def committed_kw_at(commitments: Sequence[Commitment], at: datetime) -> dict[Product, float]:
    """The capacity committed per product at ``at`` (kW), over every commitment that covers it."""
    out: dict[Product, float] = {}
    for c in commitments:
        if c.covers(at):
            out[c.product] = out.get(c.product, 0.0) + abs(c.mw) * 1000.0
    return out
