"""Market rules as data, bid validation (every rule broken once), submission and clearing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from v2g.adapters.feeds.energinet import load_price_series
from v2g.fleet.model import PriceArea
from v2g.fleet.schedule import PowerSchedule
from v2g.markets.bids import (
    Bid,
    BiddingGroup,
    BidRuleError,
    BidStatus,
    ControlMode,
    ReserveOffer,
    bids_from_offers,
    capacity_headroom_mw,
    submit_bids,
    validate_bid,
)
from v2g.markets.commitments import CommitmentBook, brp_schedule
from v2g.markets.prices import PriceSeries
from v2g.markets.rules import FCR_PRODUCTS, Product, RulesError, default_rules, parse_rules
from v2g.markets.simulator import TsoMarketSimulator, replay_season

RULES = default_rules()
# Delivery 2026-11-27 10:00 CET = 09:00 UTC; auction 1 closes 2026-11-26 00:30 CET = 2026-11-25 23:30 UTC,
# auction 2 closes 2026-11-26 18:00 CET = 17:00 UTC; bidding opens 2026-11-20 00:00 CET.
DELIVERY = datetime(2026, 11, 27, 9, tzinfo=UTC)
BEFORE_A1 = datetime(2026, 11, 25, 12, tzinfo=UTC)
BETWEEN = datetime(2026, 11, 26, 12, tzinfo=UTC)
LATE = datetime(2026, 11, 26, 17, 0, tzinfo=UTC)


def group(**changes: object) -> BiddingGroup:
    base: dict[str, object] = {
        "id": "g1",
        "bsp_org_id": "bsp",
        "price_area": PriceArea.SE3,
        "control_mode": ControlMode.LOCAL,
        "prequalified_mw": {Product.FCR_N: 2.0, Product.FCR_D_UP: 100.0, Product.FCR_D_DOWN: 2.0},
    }
    base.update(changes)
    return BiddingGroup(**base)  # type: ignore[arg-type]


def bid(**changes: object) -> Bid:
    base: dict[str, object] = {
        "id": "b1",
        "group_id": "g1",
        "product": Product.FCR_N,
        "price_area": PriceArea.SE3,
        "delivery_start_at": DELIVERY,
        "volume_mw": 0.5,
        "price_eur_per_mw_h": Decimal("10.00"),
    }
    base.update(changes)
    return Bid(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("product", "f_hz", "expected"),
    [
        (Product.FCR_N, 50.0, 0.0),
        (Product.FCR_N, 49.9, 1.0),
        (Product.FCR_N, 49.8, 1.0),
        (Product.FCR_N, 49.95, 0.5),
        (Product.FCR_N, 50.1, -1.0),
        (Product.FCR_N, 50.2, -1.0),
        (Product.FCR_N, 50.025, -0.25),
        (Product.FCR_D_UP, 49.9, 0.0),
        (Product.FCR_D_UP, 49.95, 0.0),
        (Product.FCR_D_UP, 49.7, 0.5),
        (Product.FCR_D_UP, 49.5, 1.0),
        (Product.FCR_D_UP, 49.0, 1.0),
        (Product.FCR_D_UP, 50.3, 0.0),
        (Product.FCR_D_DOWN, 50.1, 0.0),
        (Product.FCR_D_DOWN, 50.0, 0.0),
        (Product.FCR_D_DOWN, 50.2, -0.25),
        (Product.FCR_D_DOWN, 50.5, -1.0),
        (Product.FCR_D_DOWN, 51.0, -1.0),
        (Product.FCR_D_DOWN, 49.5, 0.0),
        (Product.MFRR, 49.0, 0.0),
    ],
)
def test_response_curves_at_and_between_band_edges(product: Product, f_hz: float, expected: float) -> None:
    assert RULES[product].response_fraction(f_hz) == pytest.approx(expected, abs=1e-9)


def test_every_rule_has_a_source() -> None:
    for product in Product:
        pr = RULES[product]
        assert {"curve_source", "min_bid_source", "auctions_source", "pricing_source"} <= set(pr.sources)
    assert "FCR-Test" in RULES.prequal.source
    for text in (
        RULES.prequal.source,
        *RULES.prequal.sources.values(),
        RULES.single_point_of_failure.source,
        *RULES.central_control.sources.values(),
        RULES.aggregation.source,
        RULES.ler_classification.source,
    ):
        assert "2025" in text or "platform" in text, text  # a dated source, or a stated platform choice
    for product in FCR_PRODUCTS:
        ler = RULES[product].ler
        assert ler is not None
        assert "FCR-TR" in ler.source


def test_rules_file_errors_name_the_key() -> None:
    with pytest.raises(RulesError, match=r"rules\.products: missing"):
        parse_rules({"timezone": "Europe/Stockholm"})


def test_gate_closures_are_local_time() -> None:
    closures = RULES[Product.FCR_N].gate_closures(DELIVERY, RULES.tz)
    assert closures == [
        ("auction_1", datetime(2026, 11, 25, 23, 30, tzinfo=UTC)),
        ("auction_2", datetime(2026, 11, 26, 17, 0, tzinfo=UTC)),
    ]
    # summer time: delivery 2026-07-02, auction 2 closes 2026-07-01 18:00 CEST = 16:00 UTC
    summer = RULES[Product.FCR_D_UP].gate_closures(datetime(2026, 7, 2, 8, tzinfo=UTC), RULES.tz)
    assert summer[1][1] == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)
    mfrr = RULES[Product.MFRR].gate_closures(datetime(2026, 11, 27, 9, 15, tzinfo=UTC), RULES.tz)
    assert mfrr == [("continuous", datetime(2026, 11, 27, 8, 30, tzinfo=UTC))]


def test_valid_bid_goes_to_the_first_open_auction() -> None:
    assert validate_bid(bid(), RULES, now=BEFORE_A1, group=group()) == "auction_1"
    assert validate_bid(bid(), RULES, now=BETWEEN, group=group()) == "auction_2"


@pytest.mark.parametrize(
    ("changes", "group_changes", "now", "rule", "field"),
    [
        ({}, {}, LATE, "gate_closure", "submitted_at"),
        ({}, {}, datetime(2026, 11, 18, tzinfo=UTC), "bidding_window", "submitted_at"),
        ({"volume_mw": 0.05}, {}, BEFORE_A1, "min_volume", "volume_mw"),
        ({"volume_mw": 0.25}, {}, BEFORE_A1, "resolution", "volume_mw"),
        ({"volume_mw": -0.5}, {}, BEFORE_A1, "volume", "volume_mw"),
        ({"volume_mw": float("nan")}, {}, BEFORE_A1, "volume", "volume_mw"),
        ({"price_eur_per_mw_h": Decimal(-1)}, {}, BEFORE_A1, "price", "price_eur_per_mw_h"),
        ({"price_eur_per_mw_h": Decimal("NaN")}, {}, BEFORE_A1, "price", "price_eur_per_mw_h"),
        ({"delivery_start_at": DELIVERY + timedelta(minutes=15)}, {}, BEFORE_A1, "period", "delivery_start_at"),
        ({"price_area": PriceArea.SE4}, {}, BEFORE_A1, "price_area", "price_area"),
        ({"group_id": "nope"}, {}, BEFORE_A1, "unknown_group", "group_id"),
        ({}, {"active": False}, BEFORE_A1, "group_inactive", "group_id"),
        ({"volume_mw": 2.5}, {}, BEFORE_A1, "prequalification", "volume_mw"),
        (
            {"volume_mw": 30.0},
            {"control_mode": ControlMode.CENTRAL, "prequalified_mw": {Product.FCR_N: 40.0}},
            BEFORE_A1,
            "central_control_allocation",
            "volume_mw",
        ),
        ({"product": Product.FCR_D_UP, "volume_mw": 80.0}, {}, BEFORE_A1, "single_point_of_failure", "volume_mw"),
        (
            {"product": Product.MFRR, "volume_mw": 0.5, "delivery_start_at": DELIVERY},
            {},
            BEFORE_A1,
            "min_volume",
            "volume_mw",
        ),
        (
            {"product": Product.MFRR, "volume_mw": 1.0, "delivery_start_at": DELIVERY},
            {},
            DELIVERY - timedelta(minutes=30),
            "gate_closure",
            "submitted_at",
        ),
    ],
)
def test_broken_bids_are_refused_with_the_rule(
    changes: dict[str, object], group_changes: dict[str, object], now: datetime, rule: str, field: str
) -> None:
    b = bid(**changes)
    g = group(**group_changes)
    with pytest.raises(BidRuleError) as info:
        validate_bid(b, RULES, now=now, group=g if b.group_id == g.id else None)
    assert info.value.rule == rule
    assert info.value.field_name == field
    assert f"bid[b1].{field}" in str(info.value)
    assert DELIVERY.isoformat()[:13] in str(info.value)


def test_naive_delivery_time_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"bid\[b1\]\.delivery_start_at: naive"):
        bid(delivery_start_at=datetime(2026, 11, 27, 9))


def test_submission_refuses_duplicates_and_group_overflow_and_loses_nothing() -> None:
    bids = [bid(id="a", volume_mw=1.5), bid(id="a", volume_mw=0.1), bid(id="c", volume_mw=1.0), bid(id="d")]
    result = submit_bids(bids, RULES, now=BEFORE_A1, groups={"g1": group()})
    assert [b.id for b in result.submitted] == ["a", "d"]
    assert all(b.status is BidStatus.SUBMITTED and b.auction == "auction_1" for b in result.submitted)
    assert [(b.id, e.rule) for b, e in result.refused] == [("a", "duplicate"), ("c", "prequalification")]
    assert all(b.status is BidStatus.REFUSED for b, _ in result.refused)
    again = submit_bids([bid(id="a")], RULES, now=BEFORE_A1, groups={"g1": group()}, existing=result.submitted)
    assert again.refused[0][1].rule == "duplicate"


def test_planner_offers_become_bids_rounded_down() -> None:
    offers = [
        ReserveOffer(Product.FCR_N, DELIVERY, PriceArea.SE3, 0.37, Decimal(12)),
        ReserveOffer(Product.FCR_D_UP, DELIVERY, PriceArea.SE3, 0.08, Decimal(3)),
        ReserveOffer(Product.MFRR, DELIVERY, PriceArea.SE3, -2.6, Decimal(40)),
    ]
    bids = bids_from_offers(offers, group(), RULES, id_prefix="p")
    assert [(b.product, b.volume_mw) for b in bids] == [(Product.FCR_N, pytest.approx(0.3)), (Product.MFRR, -2.0)]


def test_planner_offers_are_capped_at_what_the_group_may_still_bid() -> None:
    # FCR-N prequalified 2.0 MW; the first auction already holds 1.5 MW for the hour (and a refused
    # 0.4 MW that holds nothing); FCR-D down prequalified 2.0 MW, nothing held
    held = bid(id="a1", volume_mw=1.5, status=BidStatus.SUBMITTED)
    refused = bid(id="a1-x", volume_mw=0.4, status=BidStatus.REFUSED)
    offers = [
        ReserveOffer(Product.FCR_N, DELIVERY, PriceArea.SE3, 1.2, Decimal(12)),
        ReserveOffer(Product.FCR_D_DOWN, DELIVERY, PriceArea.SE3, 3.3, Decimal(4)),
        ReserveOffer(Product.FCR_N, DELIVERY + timedelta(hours=1), PriceArea.SE3, 2.6, Decimal(12)),
    ]
    bids = bids_from_offers(offers, group(), RULES, id_prefix="p", existing=[held, refused])
    volumes = [(b.product, b.delivery_start_at, b.volume_mw) for b in bids]
    assert volumes == [
        (Product.FCR_D_DOWN, DELIVERY, pytest.approx(2.0)),  # 3.3 offered, 2.0 prequalified
        (Product.FCR_N, DELIVERY, pytest.approx(0.5)),  # 2.0 - 1.5 held
        (Product.FCR_N, DELIVERY + timedelta(hours=1), pytest.approx(2.0)),
    ]
    # every capped bid passes the submission rules it would otherwise be refused by
    result = submit_bids(bids, RULES, now=BEFORE_A1, groups={"g1": group()}, existing=[held])
    assert result.refused == ()
    # nothing left to bid: no bid at all
    full = bid(id="a2", volume_mw=2.0, status=BidStatus.SUBMITTED)
    assert bids_from_offers(offers[:1], group(), RULES, id_prefix="q", existing=[full]) == []
    # a centrally controlled group is also held to the TSO's central-control cap
    central = group(control_mode=ControlMode.CENTRAL, prequalified_mw={Product.FCR_N: 100.0})
    cap = RULES.central_control.allocation_mw[Product.FCR_N]
    expected = min(cap, 100.0, RULES.single_point_of_failure.per_product_mw)
    assert capacity_headroom_mw(central, Product.FCR_N, RULES) == pytest.approx(expected)


def series(price: str = "20.00") -> PriceSeries:
    hours = {DELIVERY + timedelta(hours=i): Decimal(price) for i in range(3)}
    return PriceSeries({p: dict(hours) for p in Product}, source="test")


def test_clearing_is_marginal_and_respects_the_tso_need() -> None:
    sim = TsoMarketSimulator(RULES, series("20.00"), demand_mw={Product.FCR_N: 1.0})
    g = group(prequalified_mw={Product.FCR_N: 10.0})
    bids = [
        bid(id="cheap", volume_mw=0.6, price_eur_per_mw_h=Decimal(5)),
        bid(id="mid", volume_mw=0.4, price_eur_per_mw_h=Decimal(15)),
        bid(id="over-need", volume_mw=0.2, price_eur_per_mw_h=Decimal(16)),
        bid(id="dear", volume_mw=0.1, price_eur_per_mw_h=Decimal("20.01")),
        bid(id="no-price", delivery_start_at=DELIVERY + timedelta(hours=5)),
    ]
    submitted = submit_bids(bids, RULES, now=BEFORE_A1, groups={"g1": g}).submitted
    result = sim.clear(submitted, "auction_1")
    status = {o.bid.id: (o.bid.status, o.reason) for o in result.outcomes}
    assert status["cheap"][0] is BidStatus.ACCEPTED
    assert status["mid"][0] is BidStatus.ACCEPTED
    assert status["over-need"][0] is BidStatus.REJECTED
    assert "remaining need" in status["over-need"][1]
    assert status["dear"][0] is BidStatus.REJECTED
    assert "above the marginal price" in status["dear"][1]
    assert status["no-price"][0] is BidStatus.REJECTED
    assert "no clearing price" in status["no-price"][1]
    # everyone accepted is paid the marginal price, not their bid
    assert {c.price_eur_per_mw_h for c in result.commitments} == {Decimal("20.00")}
    assert sum(c.payment_eur for c in result.commitments) == Decimal("20.00")
    book = CommitmentBook(result.commitments)
    assert book.committed_kw(Product.FCR_N, DELIVERY + timedelta(minutes=30)) == pytest.approx(1000.0)
    assert book.committed_kw(Product.FCR_N, DELIVERY + timedelta(hours=1)) == 0.0
    shortfalls = book.check_plan({("g1", Product.FCR_N, DELIVERY): 999.0})
    assert len(shortfalls) == 4
    assert "999.0 kW of 1000.0 kW" in str(shortfalls[0])
    assert book.check_plan({("g1", Product.FCR_N, DELIVERY): 1000.0}) == []


def test_brp_schedule_includes_v2g_energy_and_reserves() -> None:
    sim = TsoMarketSimulator(RULES, series())
    submitted = submit_bids([bid()], RULES, now=BEFORE_A1, groups={"g1": group()}).submitted
    commitments = sim.clear(submitted, "auction_1").commitments
    schedules = [
        PowerSchedule("ev1", DELIVERY, (10.0, -8.0, 0.0, 0.0)),
        PowerSchedule("ev2", DELIVERY, (10.0, 10.0, 0.0, 0.0)),
    ]
    rows = brp_schedule(
        schedules, {"ev1": PriceArea.SE3, "ev2": PriceArea.SE3}, commitments, DELIVERY, DELIVERY + timedelta(hours=1)
    )
    assert [r.planned_mwh for r in rows] == pytest.approx([0.005, 0.0005, 0.0, 0.0])
    assert all(r.reserve_mw[Product.FCR_N] == 0.5 for r in rows)
    with pytest.raises(ValueError, match=r"schedule\[ev2\]: EV has no price area"):
        brp_schedule(schedules, {"ev1": PriceArea.SE3}, (), DELIVERY, DELIVERY + timedelta(hours=1))


def test_season_replay_on_recorded_dk2_prices(shared_data: Path) -> None:
    prices = load_price_series(
        shared_data / "ancillary" / "energinet_fcr_dk2_2021_jan-sep.csv",
        shared_data / "ancillary" / "energinet_mfrr_dk2_2021_jan-sep.csv",
    )
    first, last = prices.span()
    assert first == datetime(2021, 1, 1, 0, tzinfo=UTC) or first.year == 2020
    assert last.year == 2021
    sim = TsoMarketSimulator(RULES, prices)
    g = group(prequalified_mw={Product.FCR_N: 1.0, Product.FCR_D_UP: 1.0})

    def bids_for(day: date) -> list[Bid]:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=1)
        return [
            bid(
                id=f"{p.value}-{day}-{h}",
                product=p,
                delivery_start_at=start + timedelta(hours=h),
                volume_mw=0.5,
                price_eur_per_mw_h=Decimal(15),
            )
            for h in range(24)
            for p in (Product.FCR_N, Product.FCR_D_UP)
        ]

    summary = replay_season(sim, g, bids_for, date(2021, 3, 1), 30)
    assert summary.days == 30
    assert summary.bids == 30 * 48
    assert summary.refused == 0
    assert summary.accepted + summary.rejected == summary.bids
    assert 0 < summary.accepted < summary.bids  # a 15 EUR bid is sometimes above, sometimes below the price
    assert summary.revenue_eur > 0
    for c in summary.commitments:
        assert c.price_eur_per_mw_h >= Decimal(15)


def test_central_control_is_a_market_wide_allocation_across_groups_not_a_per_bid_check() -> None:
    # two centrally controlled groups of 20 MW FCR-N each: each bid fits SvK's 24 MW on its own, the
    # second breaks the platform's allocation because both share the central controller
    a = group(id="a", control_mode=ControlMode.CENTRAL, prequalified_mw={Product.FCR_N: 20.0})
    b = group(id="b", control_mode=ControlMode.CENTRAL, prequalified_mw={Product.FCR_N: 20.0})
    local = group(id="c", control_mode=ControlMode.LOCAL, prequalified_mw={Product.FCR_N: 20.0})
    bids = [
        bid(id="1", group_id="a", volume_mw=20.0),
        bid(id="2", group_id="b", volume_mw=20.0),
        bid(id="3", group_id="c", volume_mw=20.0),
    ]
    result = submit_bids(bids, RULES, now=BEFORE_A1, groups={"a": a, "b": b, "c": local})
    assert [x.id for x in result.submitted] == ["1", "3"]  # the local group is not capped
    assert [(x.id, e.rule) for x, e in result.refused] == [("2", "central_control_allocation")]


def test_single_point_of_failure_70_mw_per_product_and_100_mw_combined_per_direction() -> None:
    big = {Product.FCR_N: 80.0, Product.FCR_D_UP: 80.0, Product.FCR_D_DOWN: 80.0}
    g = group(id="g", control_mode=ControlMode.LOCAL, prequalified_mw=big)
    ok = [
        bid(id="n", group_id="g", volume_mw=40.0),
        bid(id="u", group_id="g", product=Product.FCR_D_UP, volume_mw=60.0),
    ]
    result = submit_bids(ok, RULES, now=BEFORE_A1, groups={"g": g})
    assert result.refused == ()  # 100 MW up combined: at the limit
    more = [bid(id="d", group_id="g", product=Product.FCR_D_UP, volume_mw=0.5)]
    again = submit_bids(more, RULES, now=BEFORE_A1, groups={"g": g}, existing=result.submitted)
    assert [e.rule for _, e in again.refused] == ["single_point_of_failure_combined"]
    down = [bid(id="dd", group_id="g", product=Product.FCR_D_DOWN, volume_mw=60.0)]
    assert submit_bids(down, RULES, now=BEFORE_A1, groups={"g": g}, existing=result.submitted).refused == ()
    over = [bid(id="x", group_id="g", product=Product.FCR_D_DOWN, volume_mw=70.5)]
    assert submit_bids(over, RULES, now=BEFORE_A1, groups={"g": g}).refused[0][1].rule == "single_point_of_failure"
    assert capacity_headroom_mw(g, Product.FCR_D_UP, RULES, 0.0, {Product.FCR_N: 40.0}) == pytest.approx(60.0)
