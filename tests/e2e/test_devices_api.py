"""Charger state, telemetry and transactions over HTTP, visible only to the roles and organisations allowed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.journey_support import PASSWORD, TEST_BLUEPRINT, World, seed_world, signup_body
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.api.app import create_app
from v2g.bootstrap import Platform, attach_ports
from v2g.config import Settings
from v2g.devices import MeterSample, TransactionEventIn


@pytest.fixture
def world(engine: Engine) -> World:
    return seed_world(engine)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    settings = Settings(database_url=str(world.engine.url), blueprint_path=TEST_BLUEPRINT)
    platform = attach_ports(Platform(settings=settings, engine=world.engine, clock=world.clock, journeys=world.service))
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_charger_data_by_role(client: TestClient, world: World) -> None:
    agg = login(client, "aggregator")
    for cid in ("c1", "c2"):
        assert client.post("/api/v1/customers", headers=agg, json=signup_body(cid)).status_code == 201
    store = SqlDeviceStore(world.engine)
    at = world.clock.now()
    samples = [
        MeterSample("CP-c1", 1, "Power.Active.Export", at + timedelta(seconds=i), 7400.0, "W", "TX-1") for i in range(3)
    ] + [MeterSample("CP-c1", 1, "SoC", at + timedelta(seconds=2), 61.5, "Percent", "TX-1")]
    event = TransactionEventIn("CP-c1", "TX-1", 0, "Started", at, meter_wh=100.0)
    store.write_batch(samples, [event], at)

    owner1, owner2 = login(client, "owner-c1"), login(client, "owner-c2")
    for who in (agg, owner1, login(client, "installer"), login(client, "dso")):
        state = client.get("/api/v1/chargers/CP-c1/state", headers=who)
        assert state.status_code == 200, state.text
        assert state.json()["p_kw"] == pytest.approx(-7.4)
        assert state.json()["soc_percent"] == 61.5
    history = client.get(
        "/api/v1/chargers/CP-c1/telemetry", headers=owner1, params={"measurand": "Power.Active.Export", "limit": 2}
    )
    assert [r["value"] for r in history.json()] == [7400.0, 7400.0]
    txs = client.get("/api/v1/chargers/CP-c1/transactions", headers=owner1).json()
    assert txs[0]["transaction_id"] == "TX-1"
    assert txs[0]["meter_start_wh"] == 100.0

    # another owner, another aggregator, another DSO: not found (no leak), and no token: 401
    for who in (owner2, login(client, "aggregator2"), login(client, "dso2")):
        assert client.get("/api/v1/chargers/CP-c1/state", headers=who).status_code == 404
    assert client.get("/api/v1/chargers/CP-c1/telemetry", headers=owner2).status_code == 404
    assert client.get("/api/v1/chargers/CP-none/state", headers=agg).status_code == 404
    assert client.get("/api/v1/chargers/CP-c1/state").status_code == 401
    naive = client.get("/api/v1/chargers/CP-c1/telemetry", headers=agg, params={"since": "2026-11-02T09:00:00"})
    assert naive.status_code == 422
    assert "since" in naive.text
