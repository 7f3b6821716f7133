"""From the planner's result to bids and to the planned reserve that commitments are checked against."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from v2g.markets.bids import ReserveOffer
from v2g.markets.rules import Product
from v2g.planning.model import FleetPlan, ReserveBid
from v2g.units import money_from_float


def offers_from_plan_bids(bids: Iterable[ReserveBid]) -> list[ReserveOffer]:
    """The planner's aggregated hourly bids as offers (prices to the cent)."""
    return [
        ReserveOffer(
            product=Product(b.product.value),
            delivery_start_at=b.hour_start_at,
            price_area=b.price_area,
            mw=b.mw,
            price_eur_per_mw_h=money_from_float(b.price_eur_per_mw_h, Decimal("0.01")),
        )
        for b in bids
    ]


def planned_reserve_kw(plan: FleetPlan, group_of_ev: dict[str, str]) -> dict[tuple[str, Product, datetime], float]:
    """Reserve (kW) the plan holds per group, product and hour: the input of ``CommitmentBook.check_plan``."""
    out: dict[tuple[str, Product, datetime], float] = defaultdict(float)
    for ev in plan.ev_plans:
        group = group_of_ev.get(ev.ev_id)
        if group is None:
            continue
        for product, per_hour in ev.reserve_kw.items():
            for h, kw in enumerate(per_hour):
                out[(group, Product(product.value), plan.start_at + timedelta(hours=h))] += float(kw)
    return dict(out)
