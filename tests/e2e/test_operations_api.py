"""The operations view over HTTP: an aggregator sees the plan's aggregates and the EVs, chargers and bidding
groups of the customers it serves (another aggregator none of them), a BSP its own groups and the fleet's
aggregates, the TSO the market side only, and every other role nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.journey_support import PASSWORD, TEST_BLUEPRINT, World, seed_world, signup_body
from v2g.adapters.db.market_repo import SqlMarketStore
from v2g.adapters.db.operations_repo import SqlPlanStore
from v2g.api.app import create_app
from v2g.bootstrap import bootstrap
from v2g.config import Settings
from v2g.fleet.model import PriceArea
from v2g.markets.bids import Bid, BiddingGroup, BidStatus, ControlMode
from v2g.markets.commitments import Commitment
from v2g.markets.rules import Product

EV_ID = "veh-c1"  # the vehicle of customer c1, whom org-agg signs up and serves
OTHER_EV = "veh-elsewhere"  # an EV of a customer org-agg does not serve
HOUR = timedelta(hours=1)


@pytest.fixture
def world(engine: Engine) -> World:
    w = seed_world(engine)
    now = w.clock.now()
    price = Decimal("12.50")
    with engine.begin() as conn:
        store = SqlMarketStore(conn)
        own = BiddingGroup("own", "org-bsp", PriceArea.SE3, ControlMode.LOCAL, {Product.FCR_N: 1.0}, (EV_ID,))
        store.add_group(own, now)
        store.add_group(BiddingGroup("theirs", "org-other", PriceArea.SE4, ControlMode.LOCAL, {}, (OTHER_EV,)), now)
        store.save_bids(
            [
                Bid("b-own", "own", Product.FCR_N, PriceArea.SE3, now + HOUR, 0.5, price, BidStatus.ACCEPTED),
                Bid("b-theirs", "theirs", Product.FCR_N, PriceArea.SE4, now + HOUR, 0.4, price, BidStatus.SUBMITTED),
            ]
        )
        store.save_commitments(
            [Commitment("c-own", "b-own", "own", Product.FCR_N, PriceArea.SE3, now + HOUR, now + 2 * HOUR, 0.5, price)]
        )
    plan = {
        "energy_cost_eur": 0.4,
        "reserve_revenue_eur": 1.1,
        "evs": [
            {
                "id": EV_ID,
                "charger_id": "CP-c1",
                "p_kw": [7.0] * 4 + [-3.0] * 4,
                "soc_kwh": [40.0, 47.0, 44.0],
                "reserve_kw": {"fcr_n": [0.0, 500.0]},
                "energy_cost_eur": 0.4,
                "reserve_revenue_eur": 1.1,
            },
            {
                "id": OTHER_EV,
                "charger_id": "CP-elsewhere",
                "p_kw": [0.0] * 8,
                "soc_kwh": [30.0, 30.0, 30.0],
                "reserve_kw": {},
                "energy_cost_eur": 0.0,
                "reserve_revenue_eur": 0.0,
            },
        ],
    }
    SqlPlanStore(engine).save_plan(
        created_at=now,
        start_at=now,
        n_intervals=8,
        strategy="lp",
        status="sent",
        trigger="cycle",
        n_evs=2,
        objective_eur=-0.7,
        plan=plan,
    )
    return w


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    settings = Settings(database_url=str(world.engine.url), blueprint_path=TEST_BLUEPRINT)
    platform = bootstrap(settings, engine=world.engine, clock=world.clock, journeys=world.service)
    with TestClient(create_app(platform)) as test_client:
        agg = world.bearer("aggregator")
        assert test_client.post("/api/v1/customers", headers=agg, json=signup_body("c1")).status_code == 201
        yield test_client


def test_the_aggregator_sees_the_plan_and_the_fleet_it_serves(client: TestClient, world: World) -> None:
    answer = client.get("/api/v1/operations", headers=world.bearer("aggregator"))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["audience"] == "operator"
    assert data["plan"]["n_evs"] == 2
    assert data["plan"]["hours"] == 2
    assert data["hours"][1]["export_kwh"] == 3.0
    assert data["hours"][1]["committed_mw"]["fcr_n"] == 0.5
    # the group holding its customer's EV, not the other one; its customer's EV and charger only
    assert {b["id"]: b["status"] for b in data["bids"]} == {"b-own": "accepted"}
    assert [c["id"] for c in data["commitments"]] == ["c-own"]
    assert [e["ev_id"] for e in data["evs"]] == [EV_ID]
    assert "CP-c1" in data["chargers_offline"]  # signed up, never connected
    assert OTHER_EV not in answer.text
    assert "b-theirs" not in answer.text
    assert data["last_dispatch"] is None
    jobs = {j["name"]: j for j in data["jobs"]}  # the operating day's jobs, not started in this test
    assert {"planning", "re-plan", "market calendar", "outbox"} <= jobs.keys()
    assert jobs["planning"]["every_s"] == 900.0
    assert jobs["planning"]["runs"] == 0


def test_another_aggregator_sees_aggregates_and_none_of_the_fleet(client: TestClient, world: World) -> None:
    answer = client.get("/api/v1/operations", headers=world.bearer("aggregator2"))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["audience"] == "operator"
    assert data["plan"]["n_evs"] == 2  # the platform's aggregates, as a BSP sees them
    assert data["evs"] == []
    assert data["bids"] == []
    assert data["commitments"] == []
    assert data["departures_at_risk"] == []
    assert data["chargers_offline"] == []
    for private in (EV_ID, OTHER_EV, "CP-c1", "b-own", "b-theirs"):
        assert private not in answer.text


def test_a_bsp_sees_its_own_groups_and_aggregates_only(client: TestClient, world: World) -> None:
    data = client.get("/api/v1/operations", headers=world.bearer("bsp")).json()
    assert data["audience"] == "bsp"
    assert [b["id"] for b in data["bids"]] == ["b-own"]
    assert data["plan"]["n_evs"] == 2
    assert "evs" not in data
    assert EV_ID not in str(data)
    assert "CP-c1" not in str(data)


def test_the_tso_sees_the_market_side_and_no_per_ev_data(client: TestClient, world: World) -> None:
    answer = client.get("/api/v1/operations", headers=world.bearer("tso"))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert set(data) == {"at", "audience", "bids", "commitments", "delivery"}
    assert {b["id"] for b in data["bids"]} == {"b-own", "b-theirs"}
    assert [c["id"] for c in data["commitments"]] == ["c-own"]
    assert EV_ID not in answer.text
    assert "CP-c1" not in answer.text


def test_owners_and_other_roles_are_refused(client: TestClient, world: World) -> None:
    login = client.post("/api/v1/auth/login", json={"username": "owner-c1", "password": PASSWORD})
    assert login.status_code == 200, login.text
    owner = {"Authorization": f"Bearer {login.json()['token']}"}
    for headers in (owner, world.bearer("dso"), world.bearer("installer")):
        answer = client.get("/api/v1/operations", headers=headers)
        assert answer.status_code == 403
        assert "may not read the operations view" in answer.json()["detail"]
    assert client.get("/api/v1/operations").status_code == 401
