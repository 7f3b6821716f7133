"""Market storage and use cases on SQLite and PostgreSQL, and the journey's market services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.journey_repo import SqlJourneyRepository
from v2g.adapters.db.market_repo import SqlMarketStore
from v2g.dispatch.verification import DeliveryRecord
from v2g.fleet.model import Charger, ChargerProtocol, Customer, GridArea, PriceArea, Site, Vehicle
from v2g.journey.model import Journey, Task, TaskKind
from v2g.journey.rules import load_rules as load_journey_rules
from v2g.markets.bids import Bid, BidStatus
from v2g.markets.prices import PriceSeries
from v2g.markets.rules import Product, default_rules
from v2g.markets.simulator import TsoMarketSimulator
from v2g.prequal.criteria import Requirement
from v2g.prequal.report import PrequalResult
from v2g.services.journey.automation import ServiceContext
from v2g.services.markets.bidding import record_clearing, record_prequal, run_auction, submit
from v2g.services.markets.groups import deregister_unit, join_bidding_group, qualified_products
from v2g.services.markets.handlers import market_handlers

RULES = default_rules()
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
DELIVERY = datetime(2026, 11, 27, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)
D1 = Decimal("1")


def prequal(group_id: str, passed: bool, kw: float = 500.0) -> PrequalResult:
    req = Requirement("t", "req2", "x", 1.0 if passed else 0.1, 0.86, "", passed)
    return PrequalResult(Product.FCR_N, group_id, 50, "wb", "central", kw, kw, NOW, (req,), ())


def test_bid_lifecycle_is_stored_and_refusals_keep_the_rule(engine: Engine) -> None:
    with engine.begin() as conn:
        store = SqlMarketStore(conn)
        group, added = join_bidding_group(
            store, bsp_org_id="bsp", price_area=PriceArea.SE3, ev_id="ev1", charger_id="cp1", now=NOW
        )
        assert added
        assert group.id == "bsp-se3"
        assert join_bidding_group(
            store, bsp_org_id="bsp", price_area=PriceArea.SE3, ev_id="ev1", charger_id="cp1", now=NOW
        ) == (group, False)
        record_prequal(store, prequal(group.id, passed=True, kw=500.0))
        assert store.group(group.id).prequalified_mw == {Product.FCR_N: 0.5}
        bids = [
            Bid("b1", group.id, Product.FCR_N, PriceArea.SE3, DELIVERY, 0.5, Decimal("10.00")),
            Bid("b2", group.id, Product.FCR_N, PriceArea.SE3, DELIVERY + timedelta(hours=1), 0.6, Decimal("10.00")),
            Bid("b1", group.id, Product.FCR_N, PriceArea.SE3, DELIVERY, 0.1, Decimal("9.00")),
        ]
        result = submit(store, bids, RULES, now=NOW)
        assert [b.id for b in result.submitted] == ["b1"]
        assert [e.rule for _, e in result.refused] == ["prequalification", "duplicate"]
    with engine.begin() as conn:
        store = SqlMarketStore(conn)
        stored = {b.id: b for b in store.bids("bsp-se3")}
        assert stored["b1"].status is BidStatus.SUBMITTED
        assert stored["b1"].price_eur_per_mw_h == Decimal("10.00")  # the duplicate did not overwrite it
        assert stored["b2"].status is BidStatus.REFUSED
        prices = PriceSeries({Product.FCR_N: {DELIVERY: Decimal("25.50")}}, "test")
        cleared = run_auction(store, TsoMarketSimulator(RULES, prices), "bsp-se3", "auction_1")
        assert [b.id for b in cleared.accepted] == ["b1"]
        record_clearing(store, cleared)  # reported twice, stored once
        commitments = store.commitments("bsp-se3", DELIVERY, DELIVERY + timedelta(hours=1))
        assert len(commitments) == 1
        assert commitments[0].price_eur_per_mw_h == Decimal("25.50")
        assert commitments[0].start_at.tzinfo is UTC
        assert store.bids("bsp-se3")[0].status is BidStatus.ACCEPTED
        record = DeliveryRecord(
            "bsp-se3",
            Product.FCR_N,
            DELIVERY,
            0.5,
            0.1,
            0.099,
            1.0,
            0.001,
            0.01,
            Decimal("12.75"),
            Decimal("0.13"),
            {"ev1": 0.099},
        )
        store.save_delivery([record])
        store.save_delivery([record])
        assert store.delivery("bsp-se3") == [record]


def test_deregistration_and_failed_prequal(engine: Engine) -> None:
    with engine.begin() as conn:
        store = SqlMarketStore(conn)
        for ev in ("ev1", "ev2"):
            join_bidding_group(
                store, bsp_org_id="bsp", price_area=PriceArea.SE4, ev_id=ev, charger_id=f"cp-{ev}", now=NOW
            )
        record_prequal(store, prequal("bsp-se4", passed=True))
        record_prequal(store, prequal("bsp-se4", passed=False))
        assert qualified_products(store, "bsp-se4") == {}
        assert deregister_unit(store, ev_id="ev1", now=NOW) == ("bsp-se4", 1)
        assert deregister_unit(store, ev_id="ev1", now=NOW) == (None, 0)
        assert deregister_unit(store, ev_id="ev2", now=NOW) == ("bsp-se4", 0)
        assert not store.group("bsp-se4").active
        with pytest.raises(ValueError, match=r"bidding_group\[bsp-se4\]: deregistered"):
            join_bidding_group(store, bsp_org_id="bsp", price_area=PriceArea.SE4, ev_id="ev3", charger_id="c", now=NOW)


def test_journey_market_services(engine: Engine) -> None:
    with engine.begin() as conn:
        fleet = SqlFleetRepository(conn)
        fleet.add_grid_area(GridArea("GA1", "Area 1", None, PriceArea.SE3, 500.0, 400.0, 600.0))
        fleet.add_customer(Customer("c1", "Ann Andersson", "ann@example.se", NOW))
        fleet.add_site(Site("s1", "c1", "Gatan 1", PriceArea.SE3, "GA1", main_fuse_a=20))
        fleet.add_vehicle(Vehicle("v1", "c1", "Volvo", "EX90", 107.0, 11.0, 11.0, site_id="s1"))
        fleet.add_charger(Charger("cp1", "s1", "Wallbox", "Quasar 2", ChargerProtocol.OCPP21, 11.0, 11.0))
    handlers = market_handlers(lambda ctx: SqlMarketStore(ctx.repo.conn), bsp_org_id="bsp")  # type: ignore[attr-defined]
    journey = Journey("j1", "c1", "bp", "prequalification", NOW, NOW, "standard")

    def ctx(conn, service: str) -> ServiceContext:  # type: ignore[no-untyped-def]
        task = Task(
            "t-" + service,
            "j1",
            f"x.back.aggregator.{service}",
            "x",
            "aggregator",
            "aggregator_operator",
            TaskKind.AUTOMATED,
            service,
            NOW,
            service=service,
        )
        return ServiceContext(journey, task, SqlJourneyRepository(conn), NOW, load_journey_rules())

    with engine.begin() as conn:
        out = handlers["create_bidding_group"](ctx(conn, "create_bidding_group"))
        assert out.completed
        assert out.result["group_id"] == "bsp-se3"
        waiting = handlers["submit_bids"](ctx(conn, "submit_bids"))
        assert not waiting.completed
        assert "has not passed pre-qualification" in (waiting.reason or "")
        record_prequal(SqlMarketStore(conn), prequal("bsp-se3", passed=True))
        done = handlers["submit_bids"](ctx(conn, "submit_bids"))
        assert done.completed
        assert done.result["qualified_kw"] == {"fcr_n": 500.0}
        gone = handlers["deregister_unit"](ctx(conn, "deregister_unit"))
        assert gone.result["removed"] == [{"ev_id": "v1", "group_id": "bsp-se3", "members_left": 0}]


def test_listings_across_groups_keep_to_the_window(engine: Engine) -> None:
    from v2g.markets.bids import BiddingGroup, ControlMode
    from v2g.markets.commitments import Commitment

    def delivery(group_id: str, hour_at: datetime) -> DeliveryRecord:
        return DeliveryRecord(
            group_id, Product.FCR_N, hour_at, 0.5, 0.1, 0.1, 1.0, 0.0, 0.0, Decimal("1"), Decimal("0"), {}
        )

    with engine.begin() as conn:
        store = SqlMarketStore(conn)
        for gid, area in (("g-se3", PriceArea.SE3), ("g-se4", PriceArea.SE4)):
            store.add_group(BiddingGroup(gid, "bsp", area, ControlMode.LOCAL, {Product.FCR_N: 1.0}), NOW)
        store.save_bids(
            [
                Bid("in-3", "g-se3", Product.FCR_N, PriceArea.SE3, DELIVERY, 0.5, Decimal("10"), BidStatus.SUBMITTED),
                Bid("in-4", "g-se4", Product.FCR_N, PriceArea.SE4, DELIVERY, 0.5, Decimal("10"), BidStatus.ACCEPTED),
                Bid("late", "g-se3", Product.FCR_N, PriceArea.SE3, DELIVERY + timedelta(days=3), 0.5, Decimal("10")),
                Bid("old", "g-se4", Product.FCR_N, PriceArea.SE4, NOW - 2 * HOUR, 0.5, D1, BidStatus.ACCEPTED),
            ]
        )
        store.save_commitments(
            [
                Commitment("c-in", "in-4", "g-se4", Product.FCR_N, PriceArea.SE4, DELIVERY, DELIVERY + HOUR, 0.5, D1),
                Commitment("c-old", "old", "g-se4", Product.FCR_N, PriceArea.SE4, NOW - 2 * HOUR, NOW, 0.5, D1),
            ]
        )
        store.save_delivery([delivery("g-se3", DELIVERY), delivery("g-se4", NOW - 2 * HOUR)])
    window = (NOW, DELIVERY + timedelta(days=1))
    with engine.begin() as conn:
        store = SqlMarketStore(conn)
        assert [b.id for b in store.bids_between(*window)] == ["in-3", "in-4"]
        assert [c.id for c in store.commitments_between(*window)] == ["c-in"]
        assert [(d.group_id, d.hour_start_at) for d in store.delivery_between(*window)] == [("g-se3", DELIVERY)]
        assert [g.id for g in store.all_groups()] == ["g-se3", "g-se4"]
