"""Inputs that used to answer 5xx: non-finite and huge numbers, unbounded periods, datetimes at the edges
of the range and JSON text that is not valid Unicode. Each answers 422 naming the field, and nothing
non-finite is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from tests.e2e.test_markets_api import delivery_hour
from tests.journey_support import TEST_BLUEPRINT, World, seed_world, signup_body
from v2g.adapters.db.market_repo import SqlMarketStore
from v2g.adapters.db.tables.markets import market_bids
from v2g.api.app import create_app
from v2g.bootstrap import bootstrap
from v2g.config import Settings
from v2g.fleet.model import PriceArea
from v2g.markets.bids import BiddingGroup, ControlMode
from v2g.markets.rules import Product

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def world(engine: Engine) -> World:
    w = seed_world(engine)
    with engine.begin() as conn:
        SqlMarketStore(conn).add_group(
            BiddingGroup("own", "org-bsp", PriceArea.SE3, ControlMode.LOCAL, {Product.FCR_N: 1.0}), w.clock.now()
        )
    return w


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    settings = Settings(database_url=str(world.engine.url), blueprint_path=TEST_BLUEPRINT)
    platform = bootstrap(settings, engine=world.engine, clock=world.clock, journeys=world.service)
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def _fields(answer: object) -> set[str]:
    detail = answer.json()["detail"]  # type: ignore[attr-defined]
    return {str(e["loc"][-1]) for e in detail}


FUSE = '{"main_fuse_a": 20, "household_peak_kw": %s, "charger_current_a": 16, "voltage_v": %s}'


@pytest.mark.parametrize(
    ("peak", "voltage", "field"),
    [
        ("NaN", "230", "household_peak_kw"),
        ("Infinity", "230", "household_peak_kw"),
        ("-Infinity", "230", "household_peak_kw"),
        ("1e308", "230", "household_peak_kw"),
        ("3", "Infinity", "voltage_v"),
        ("3", "1e300", "voltage_v"),
    ],
)
def test_fuse_check_refuses_non_finite_and_huge_values(
    client: TestClient, world: World, peak: str, voltage: str, field: str
) -> None:
    answer = client.post(
        "/api/v1/eligibility/fuse-check", headers={**world.bearer("aggregator"), **JSON}, content=FUSE % (peak, voltage)
    )
    assert answer.status_code == 422, answer.text
    assert field in _fields(answer)


@pytest.mark.parametrize("volume", ["NaN", "Infinity", "1e309", "1e40"])
def test_bid_volume_must_be_finite_and_nothing_non_finite_is_stored(
    client: TestClient, world: World, volume: str
) -> None:
    body = (
        f'[{{"id": "nan-1", "product": "fcr_n", "price_area": "SE3", "delivery_start_at": "{delivery_hour(world)}",'
        f' "volume_mw": {volume}, "price_eur_per_mw_h": "1"}}]'
    )
    answer = client.post("/api/v1/markets/groups/own/bids", headers={**world.bearer("bsp"), **JSON}, content=body)
    assert answer.status_code == 422, answer.text
    assert "volume_mw" in _fields(answer)
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(market_bids)).scalar_one() == 0


def test_bid_price_must_be_finite(client: TestClient, world: World) -> None:
    for price in ('"NaN"', '"Infinity"', '"1e400"'):
        body = (
            f'[{{"id": "p-1", "product": "fcr_n", "price_area": "SE3", "delivery_start_at": "{delivery_hour(world)}",'
            f' "volume_mw": 0.5, "price_eur_per_mw_h": {price}}}]'
        )
        answer = client.post("/api/v1/markets/groups/own/bids", headers={**world.bearer("bsp"), **JSON}, content=body)
        assert answer.status_code == 422, (price, answer.text)
        assert "price_eur_per_mw_h" in _fields(answer)


@pytest.mark.parametrize("days", [10**6, 10**12, -1])
def test_commitment_days_are_bounded(client: TestClient, world: World, days: int) -> None:
    answer = client.get(f"/api/v1/markets/groups/own/commitments?days={days}", headers=world.bearer("bsp"))
    assert answer.status_code == 422, answer.text
    assert "days" in _fields(answer)


@pytest.mark.parametrize(
    "edge",
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59.999999+00:00",
    ],
)
def test_telemetry_since_at_the_edges_of_the_datetime_range(client: TestClient, world: World, edge: str) -> None:
    agg = world.bearer("aggregator")
    assert client.post("/api/v1/customers", headers=agg, json=signup_body("c1")).status_code == 201
    for name in ("since", "until"):
        answer = client.get("/api/v1/chargers/CP-c1/telemetry", headers=agg, params={name: edge})
        assert answer.status_code == 422, answer.text
        assert name in _fields(answer)


def test_bid_delivery_start_at_the_edge_of_the_datetime_range(client: TestClient, world: World) -> None:
    body = [
        {
            "id": "edge",
            "product": "fcr_n",
            "price_area": "SE3",
            "delivery_start_at": "0001-01-01T00:00:00+01:00",
            "volume_mw": 0.5,
            "price_eur_per_mw_h": "1",
        }
    ]
    answer = client.post("/api/v1/markets/groups/own/bids", headers=world.bearer("bsp"), json=body)
    assert answer.status_code == 422, answer.text
    assert "delivery_start_at" in _fields(answer)


@pytest.mark.parametrize(
    ("path", "body", "auth"),
    [
        ("/api/v1/auth/login", '{"username": "\\ud800", "password": "x"}', None),
        ("/api/v1/auth/login", '{"username": "a", "password": "x", "\\udfff": 1}', None),
        ("/api/v1/auth/login", '{"username": 5, "password": "\\ud800"}', None),
        ("/api/v1/eligibility/compatibility", '{"make": "\\ud800", "model": "x"}', "aggregator"),
        ("/api/v1/markets/groups/own/bids", '[{"id": "\\udc00"}]', "bsp"),
    ],
)
def test_lone_surrogate_in_a_json_body_answers_422(
    client: TestClient, world: World, path: str, body: str, auth: str | None
) -> None:
    headers = {**JSON, **(world.bearer(auth) if auth else {})}
    answer = client.post(path, headers=headers, content=body)
    assert answer.status_code == 422, answer.text
    answer.content.decode("utf-8")  # the answer itself is valid UTF-8


def test_lone_surrogate_in_a_sign_up_is_refused_before_storage(client: TestClient, world: World) -> None:
    body = signup_body("c9")
    body["owner"]["name"] = "PLACEHOLDER"  # type: ignore[index]
    raw = json.dumps(body).replace("PLACEHOLDER", "\\ud800")
    answer = client.post("/api/v1/customers", headers={**world.bearer("aggregator"), **JSON}, content=raw)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "owner", "name"]
