"""The planner's result becomes bids, the bids clear, and the plan honours the commitments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from v2g.adapters.feeds.mimer import read_fcr_hourly
from v2g.adapters.feeds.prices import read_day_ahead_hourly
from v2g.markets.bids import BiddingGroup, ControlMode, bids_from_offers, submit_bids
from v2g.markets.commitments import CommitmentBook
from v2g.markets.from_plan import offers_from_plan_bids, planned_reserve_kw
from v2g.markets.prices import PriceSeries
from v2g.markets.rules import Product, default_rules
from v2g.markets.simulator import TsoMarketSimulator
from v2g.planning.planner import plan
from v2g.planning.synthetic import generate_problem, load_behaviour

RULES = default_rules()


def test_planner_bids_clear_and_the_plan_holds_the_commitments(shared_data: Path) -> None:
    day = datetime(2023, 3, 2, tzinfo=UTC)
    problem = generate_problem(
        60,
        load_behaviour(shared_data),
        read_day_ahead_hourly(shared_data / "prices" / "se_dayahead_hourly_2016_2023.csv"),
        read_fcr_hourly(shared_data / "ancillary" / "svk_mimer_fcr_hourly_2022-01_2025-06.csv"),
        day=day,
        seed=3,
    )
    fleet_plan = plan(problem)
    assert fleet_plan.bids, "the planner offered no reserve"
    offers = offers_from_plan_bids(fleet_plan.bids)
    area = offers[0].price_area
    group = BiddingGroup(
        "grp",
        "bsp",
        area,
        ControlMode.LOCAL,
        dict.fromkeys([Product.FCR_N, Product.FCR_D_UP, Product.FCR_D_DOWN], 10.0),
    )
    bids = bids_from_offers([o for o in offers if o.price_area == area], group, RULES, id_prefix="d1")
    assert bids
    first_delivery = min(b.delivery_start_at for b in bids)
    now = RULES[bids[0].product].gate_closures(first_delivery, RULES.tz)[0][1] - timedelta(minutes=5)
    result = submit_bids(bids, RULES, now=now, groups={"grp": group})
    assert not result.refused, [str(e) for _, e in result.refused]
    # clear at a price every bid meets, so all are accepted
    prices = PriceSeries(
        {p: {b.delivery_start_at: b.price_eur_per_mw_h for b in bids if b.product is p} for p in Product}, "test"
    )
    by_auction: dict[str, list] = {}
    for b in result.submitted:
        by_auction.setdefault(b.auction or "", []).append(b)
    book = CommitmentBook()
    for auction, auction_bids in by_auction.items():
        for c in TsoMarketSimulator(RULES, prices).clear(auction_bids, auction).commitments:
            book.add(c)
    assert len(book) == len(bids)
    held = planned_reserve_kw(fleet_plan, {ev.ev_id: "grp" for ev in fleet_plan.ev_plans})
    assert book.check_plan(held) == []
    # a plan that lost one EV's reserve no longer honours them all
    worst = max(held, key=lambda k: held[k] if k in {(c.group_id, c.product, c.start_at) for c in book} else 0)
    held[worst] = 0.0
    assert book.check_plan(held)
