"""Bids over HTTP: ids belong to their BSP, submissions are idempotent, a refused id stays refused,
and parallel submissions of one id store one bid and answer it consistently."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from tests.e2e.test_markets_api import delivery_hour
from tests.journey_support import TEST_BLUEPRINT, World, password_hash, seed_world
from v2g.adapters.db.journey_repo import sql_unit_of_work
from v2g.adapters.db.market_repo import SqlMarketStore
from v2g.adapters.db.tables.markets import market_bids
from v2g.api.app import create_app
from v2g.bootstrap import bootstrap
from v2g.config import Settings
from v2g.fleet.model import PriceArea
from v2g.markets.bids import BiddingGroup, ControlMode
from v2g.markets.rules import Product
from v2g.services.actors.auth import ensure_organisation_user, issue_token

GROUPS = "/api/v1/markets/groups"


@pytest.fixture
def world(engine: Engine) -> World:
    w = seed_world(engine)
    with sql_unit_of_work(engine)() as repo:
        user = ensure_organisation_user(
            repo,
            organisation_id="org-bsp2",
            organisation_name="Second BSP AB",
            role="bsp",
            username="bsp2",
            password_hash=password_hash(),
            now=w.clock.now(),
        )
        w.tokens["bsp2"] = issue_token(repo, user, label="test", now=w.clock.now())
    with engine.begin() as conn:
        store = SqlMarketStore(conn)
        for gid, org in (("g1", "org-bsp"), ("g1b", "org-bsp"), ("g2", "org-bsp2")):
            store.add_group(
                BiddingGroup(gid, org, PriceArea.SE3, ControlMode.LOCAL, {Product.FCR_N: 5.0}), w.clock.now()
            )
    return w


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    settings = Settings(database_url=str(world.engine.url), blueprint_path=TEST_BLUEPRINT)
    platform = bootstrap(settings, engine=world.engine, clock=world.clock, journeys=world.service)
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def bid(world: World, bid_id: str, volume_mw: float, price: str = "10") -> dict[str, Any]:
    return {
        "id": bid_id,
        "product": "fcr_n",
        "price_area": "SE3",
        "delivery_start_at": delivery_hour(world),
        "volume_mw": volume_mw,
        "price_eur_per_mw_h": price,
    }


def stored(world: World) -> list[dict[str, Any]]:
    with world.engine.connect() as conn:
        rows = conn.execute(select(market_bids).order_by(market_bids.c.bsp_org_id, market_bids.c.id)).mappings()
        return [dict(r) for r in rows]


def test_another_bsps_bid_id_neither_overwrites_nor_is_lost(client: TestClient, world: World) -> None:
    first = client.post(f"{GROUPS}/g1/bids", headers=world.bearer("bsp"), json=[bid(world, "X", 1.0)])
    second = client.post(f"{GROUPS}/g2/bids", headers=world.bearer("bsp2"), json=[bid(world, "X", 2.0)])
    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert second.json()["submitted"][0]["volume_mw"] == 2.0
    mine = client.get(f"{GROUPS}/g1/bids", headers=world.bearer("bsp")).json()
    theirs = client.get(f"{GROUPS}/g2/bids", headers=world.bearer("bsp2")).json()
    assert [(b["id"], b["volume_mw"], b["status"]) for b in mine] == [("X", 1.0, "submitted")]
    assert [(b["id"], b["volume_mw"], b["status"]) for b in theirs] == [("X", 2.0, "submitted")]
    assert [(r["bsp_org_id"], r["group_id"], r["volume_mw"]) for r in stored(world)] == [
        ("org-bsp", "g1", 1.0),
        ("org-bsp2", "g2", 2.0),
    ]


def test_same_id_same_body_answers_the_same_and_a_different_body_409(client: TestClient, world: World) -> None:
    bsp = world.bearer("bsp")
    once = client.post(f"{GROUPS}/g1/bids", headers=bsp, json=[bid(world, "B1", 1.0)])
    again = client.post(f"{GROUPS}/g1/bids", headers=bsp, json=[bid(world, "B1", 1.0, price="10.000")])
    assert once.status_code == again.status_code == 200
    assert once.json() == again.json()
    changed = client.post(f"{GROUPS}/g1/bids", headers=bsp, json=[bid(world, "B1", 2.0), bid(world, "B9", 1.0)])
    assert changed.status_code == 409, changed.text
    assert changed.json()["detail"]["bid_ids"] == ["B1"]
    assert changed.json()["detail"]["field"] == "id"
    # the same id in another of the BSP's groups is the same id
    other_group = client.post(f"{GROUPS}/g1b/bids", headers=bsp, json=[bid(world, "B1", 1.0)])
    assert other_group.status_code == 409
    assert [(r["id"], r["volume_mw"]) for r in stored(world)] == [("B1", 1.0)]  # B9 was not stored either


def test_a_resent_refused_id_stays_refused(client: TestClient, world: World) -> None:
    bsp = world.bearer("bsp")
    refused = client.post(f"{GROUPS}/g1/bids", headers=bsp, json=[bid(world, "R1", 0.05)])
    assert refused.json()["refused"][0]["rule"] == "min_volume"
    again = client.post(f"{GROUPS}/g1/bids", headers=bsp, json=[bid(world, "R1", 0.05)])
    assert again.status_code == 200
    assert again.json() == refused.json()
    corrected = client.post(f"{GROUPS}/g1/bids", headers=bsp, json=[bid(world, "R1", 0.5)])
    assert corrected.status_code == 409
    [row] = stored(world)
    assert (row["id"], row["status"], row["volume_mw"], row["refused_field"]) == ("R1", "refused", 0.05, "volume_mw")


@pytest.mark.parametrize("volumes", [[1.0] * 4, [1.0, 2.0, 1.0, 2.0, 3.0, 1.0]])
def test_parallel_submissions_of_one_id_store_one_bid(client: TestClient, world: World, volumes: list[float]) -> None:
    bsp = world.bearer("bsp")
    gate = Barrier(len(volumes))

    def send(volume: float) -> tuple[int, Any]:
        gate.wait()
        answer = client.post(f"{GROUPS}/g1/bids", headers=bsp, json=[bid(world, "P1", volume)])
        return answer.status_code, answer.json()

    with ThreadPoolExecutor(len(volumes)) as pool:
        answers = list(pool.map(send, volumes))
    [row] = stored(world)
    assert row["status"] == "submitted"
    for volume, (status, body) in zip(volumes, answers, strict=True):
        if volume == row["volume_mw"]:
            assert status == 200, body
            assert [b["volume_mw"] for b in body["submitted"]] == [volume]
        else:
            assert status == 409, body
