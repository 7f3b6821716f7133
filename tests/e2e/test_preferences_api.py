"""Owner preferences over HTTP: owners their own EVs, aggregators their customers', per-field 422, stale 409."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from tests.journey_support import PASSWORD, TEST_BLUEPRINT, World, seed_world, signup_body
from v2g.adapters.db.preferences_repo import SqlEvAccess, SqlPreferencesAudit, SqlPreferencesStore
from v2g.adapters.db.tables.journey import audit_log
from v2g.api.app import create_app
from v2g.bootstrap import bootstrap
from v2g.config import Settings
from v2g.services.planning.preferences import PreferencesService

URL = "/api/v1/evs/{}/preferences"


@pytest.fixture
def world(engine: Engine) -> World:
    return seed_world(engine)


@pytest.fixture
def changed() -> list[str]:
    return []


@pytest.fixture
def client(world: World, changed: list[str]) -> Iterator[TestClient]:
    settings = Settings(database_url=str(world.engine.url), blueprint_path=TEST_BLUEPRINT)
    preferences = PreferencesService(
        SqlPreferencesStore(world.engine),
        SqlEvAccess(world.engine),
        world.clock,
        SqlPreferencesAudit(world.engine),
        on_change=[changed.append],
    )
    platform = bootstrap(settings, engine=world.engine, clock=world.clock, journeys=world.service)
    platform.preferences = preferences
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def login(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_preferences_by_role_with_validation_and_locking(client: TestClient, world: World, changed: list[str]) -> None:
    agg = login(client, "aggregator")
    for cid in ("c1", "c2"):
        assert client.post("/api/v1/customers", headers=agg, json=signup_body(cid)).status_code == 201
    owner1, owner2 = login(client, "owner-c1"), login(client, "owner-c2")

    # nothing set yet: the platform defaults
    first = client.get(URL.format("veh-c1"), headers=owner1)
    assert first.status_code == 200, first.text
    assert first.json()["is_default"] is True
    assert first.json()["version"] is None
    assert first.json()["departures"]["mon"] == "07:00"

    # the owner sets their own EV (world clock: Monday 2026-11-02 10:00 in Stockholm)
    body = {
        "version": None,
        "departures": {"mon": "07:30", "tue": "07:30", "sat": None, "sun": None},
        "target_soc_percent": 90,
        "min_soc_percent": 30,
        "charge_now_until": "2026-11-02T14:00:00+01:00",
        "opt_out_today": True,
    }
    saved = client.put(URL.format("veh-c1"), headers=owner1, json=body)
    assert saved.status_code == 200, saved.text
    got = saved.json()
    assert got["version"] == 1
    assert got["is_default"] is False
    assert got["departures"] == {
        "mon": "07:30",
        "tue": "07:30",
        "wed": "07:00",
        "thu": "07:00",
        "fri": "07:00",
        "sat": None,
        "sun": None,
    }
    assert got["charge_now_until"] == "2026-11-02T13:00:00+00:00"
    assert got["charge_now_active"] is True
    assert got["opt_out_on"] == "2026-11-02"
    assert got["opt_out_today"] is True
    assert changed == ["veh-c1"]
    assert client.get(URL.format("veh-c1"), headers=owner1).json() == got

    # another owner sees neither EV 1 nor can change it; an unknown EV answers the same
    assert client.get(URL.format("veh-c1"), headers=owner2).status_code == 404
    assert client.put(URL.format("veh-c1"), headers=owner2, json={**body, "version": 1}).status_code == 404
    assert client.get(URL.format("veh-none"), headers=owner1).status_code == 404
    assert client.get(URL.format("veh-c2"), headers=owner2).status_code == 200
    # an aggregator that does not serve the customer: 404; another role: 403; no token: 401
    assert client.get(URL.format("veh-c1"), headers=login(client, "aggregator2")).status_code == 404
    assert client.get(URL.format("veh-c1"), headers=login(client, "installer")).status_code == 403
    assert client.get(URL.format("veh-c1")).status_code == 401

    # the serving aggregator reads and changes it
    assert client.get(URL.format("veh-c1"), headers=agg).json()["version"] == 1
    by_agg = client.put(URL.format("veh-c1"), headers=agg, json={**body, "version": 1, "target_soc_percent": 85})
    assert by_agg.status_code == 200, by_agg.text
    assert by_agg.json()["version"] == 2
    assert by_agg.json()["updated_by"] != got["updated_by"]

    # the owner's change based on version 1 is stale now
    stale = client.put(URL.format("veh-c1"), headers=owner1, json={**body, "version": 1})
    assert stale.status_code == 409, stale.text
    assert stale.json()["detail"]["field"] == "version"
    assert stale.json()["detail"]["stored_version"] == 2

    # bad fields: each named, nothing stored
    bad = client.put(
        URL.format("veh-c1"),
        headers=owner1,
        json={"version": 2, "departures": {"mon": "7 am"}, "target_soc_percent": 50, "min_soc_percent": 60},
    )
    assert bad.status_code == 422, bad.text
    locs = {tuple(d["loc"]) for d in bad.json()["detail"]}
    assert locs == {("body", "departures", "mon"), ("body", "min_soc_percent")}
    assert "'7 am' is not a time of day" in bad.text
    assert client.get(URL.format("veh-c1"), headers=owner1).json()["version"] == 2

    # every change is in the customer's audit log with before and after
    with world.engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action == "preferences.update")).mappings().all()
    assert [(r["entity_id"], r["before"]["version"], r["after"]["version"]) for r in rows] == [
        ("veh-c1", None, 1),
        ("veh-c1", 1, 2),
    ]
    assert all(r["journey_id"] for r in rows)
    assert changed == ["veh-c1", "veh-c1"]


def test_bootstrap_wires_preferences_and_documents_the_body(engine: Engine) -> None:
    platform = bootstrap(Settings(database_url=engine.url.render_as_string(hide_password=False)))
    assert isinstance(platform.preferences, PreferencesService)
    schema = TestClient(create_app(platform)).get("/openapi.json").json()
    assert set(schema["paths"][URL.format("{ev_id}")]) == {"get", "put"}
    body = schema["components"]["schemas"]["PreferencesIn"]["properties"]
    assert body["target_soc_percent"]["type"] == ["number", "null"]
    assert {"version", "departures", "min_soc_percent", "charge_now_until", "opt_out_today", "opt_out_on"} <= set(body)
