"""The markets API: every role sees and changes only what its role and organisation allow."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.journey_support import TEST_BLUEPRINT, World, seed_world, signup_body
from v2g.adapters.db.market_repo import SqlMarketStore
from v2g.api.app import create_app
from v2g.bootstrap import bootstrap
from v2g.config import Settings
from v2g.fleet.model import PriceArea
from v2g.markets.bids import BiddingGroup, ControlMode
from v2g.markets.rules import Product, default_rules


@pytest.fixture
def world(engine: Engine) -> World:
    w = seed_world(engine)
    with engine.begin() as conn:
        store = SqlMarketStore(conn)
        now = w.clock.now()
        store.add_group(
            BiddingGroup("own", "org-bsp", PriceArea.SE3, ControlMode.LOCAL, {Product.FCR_N: 1.0}, ("ev1", "ev2")), now
        )
        store.add_group(
            BiddingGroup("theirs", "org-other", PriceArea.SE4, ControlMode.CENTRAL, {Product.FCR_N: 1.0}), now
        )
    return w


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    settings = Settings(database_url=str(world.engine.url), blueprint_path=TEST_BLUEPRINT)
    platform = bootstrap(settings, engine=world.engine, clock=world.clock, journeys=world.service)
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def delivery_hour(world: World) -> str:
    rules = default_rules()
    local_day = world.clock.now().astimezone(rules.tz).date() + timedelta(days=2)
    return datetime.combine(local_day, time(10, 0), tzinfo=rules.tz).isoformat()


def test_bsp_sees_and_bids_only_for_its_own_groups(client: TestClient, world: World) -> None:
    bsp = world.bearer("bsp")
    groups = client.get("/api/v1/markets/groups", headers=bsp).json()
    assert [g["id"] for g in groups] == ["own"]
    assert client.get("/api/v1/markets/groups/theirs", headers=bsp).status_code == 404
    assert client.get("/api/v1/markets/groups/theirs/bids", headers=bsp).status_code == 404
    body = [
        {
            "id": "b1",
            "product": "fcr_n",
            "price_area": "SE3",
            "delivery_start_at": delivery_hour(world),
            "volume_mw": 0.5,
            "price_eur_per_mw_h": "12.50",
        },
        {
            "id": "b2",
            "product": "fcr_n",
            "price_area": "SE3",
            "delivery_start_at": delivery_hour(world),
            "volume_mw": 0.05,
            "price_eur_per_mw_h": "12.50",
        },
    ]
    answer = client.post("/api/v1/markets/groups/own/bids", headers=bsp, json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert [b["id"] for b in result["submitted"]] == ["b1"]
    assert result["refused"][0]["rule"] == "min_volume"
    assert result["refused"][0]["field"] == "volume_mw"
    assert "bid[b2].volume_mw" in result["refused"][0]["message"]
    stored = client.get("/api/v1/markets/groups/own/bids", headers=bsp).json()
    assert {b["id"]: b["status"] for b in stored} == {"b1": "submitted", "b2": "refused"}
    assert client.post("/api/v1/markets/groups/theirs/bids", headers=bsp, json=body).status_code == 404


def test_tso_reads_everything_but_cannot_bid(client: TestClient, world: World) -> None:
    headers = world.bearer("tso")
    assert {g["id"] for g in client.get("/api/v1/markets/groups", headers=headers).json()} == {"own", "theirs"}
    assert client.get("/api/v1/markets/groups/theirs/delivery", headers=headers).status_code == 200
    refused = client.post("/api/v1/markets/groups/own/bids", headers=headers, json=[])
    assert refused.status_code == 403


def test_aggregator_reads_only_the_groups_of_the_customers_it_serves(client: TestClient, world: World) -> None:
    agg, agg2 = world.bearer("aggregator"), world.bearer("aggregator2")
    assert client.post("/api/v1/customers", headers=agg, json=signup_body("c1")).status_code == 201
    with world.engine.begin() as conn:
        group = BiddingGroup("served", "org-bsp", PriceArea.SE3, ControlMode.LOCAL, {Product.FCR_N: 1.0}, ("veh-c1",))
        SqlMarketStore(conn).add_group(group, world.clock.now())
    assert [g["id"] for g in client.get("/api/v1/markets/groups", headers=agg).json()] == ["served"]
    for path in ("", "/bids", "/commitments", "/delivery"):
        assert client.get(f"/api/v1/markets/groups/served{path}", headers=agg).status_code == 200
        for gid in ("own", "theirs"):
            assert client.get(f"/api/v1/markets/groups/{gid}{path}", headers=agg).status_code == 404
    assert client.post("/api/v1/markets/groups/served/bids", headers=agg, json=[]).status_code == 403
    # another organisation's aggregator reads no BSP's groups, bids, commitments or delivery
    assert client.get("/api/v1/markets/groups", headers=agg2).json() == []
    for gid in ("served", "own", "theirs"):
        for path in ("", "/bids", "/commitments", "/delivery"):
            answer = client.get(f"/api/v1/markets/groups/{gid}{path}", headers=agg2)
            assert answer.status_code == 404, (gid, path, answer.text)


@pytest.mark.parametrize("who", ["installer", "dso", "insurer", "brp", "ev_supplier", "energy_supplier"])
def test_other_roles_see_nothing(client: TestClient, world: World, who: str) -> None:
    answer = client.get("/api/v1/markets/groups", headers=world.bearer(who))
    assert answer.status_code == 403
    assert "may not read market data" in answer.json()["detail"]


def test_no_token_no_data_and_bad_bids_name_the_field(client: TestClient, world: World) -> None:
    assert client.get("/api/v1/markets/groups").status_code == 401
    bad = [
        {
            "id": "b3",
            "product": "fcr-x",
            "price_area": "SE3",
            "delivery_start_at": delivery_hour(world),
            "volume_mw": 0.5,
            "price_eur_per_mw_h": "1",
        }
    ]
    answer = client.post("/api/v1/markets/groups/own/bids", headers=world.bearer("bsp"), json=bad)
    assert answer.status_code == 422
    assert "product" in answer.text
    naive = [
        {
            "id": "b4",
            "product": "fcr_n",
            "price_area": "SE3",
            "delivery_start_at": "2026-12-01T10:00:00",
            "volume_mw": 0.5,
            "price_eur_per_mw_h": "1",
        }
    ]
    answer = client.post("/api/v1/markets/groups/own/bids", headers=world.bearer("bsp"), json=naive)
    assert answer.status_code == 422
    assert "bid[b4].delivery_start_at" in answer.text
