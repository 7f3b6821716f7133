"""A charger's OCPP password reaches the installer once, through its task, and nowhere else: not the
outbox, not the owner's notifications, not the export."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from tests.e2e.test_journey_api import complete, login, open_task
from tests.journey_support import TEST_BLUEPRINT, World, seed_world, signup_body
from v2g.adapters.db.tables.journey import outbox
from v2g.api.app import create_app
from v2g.bootstrap import bootstrap
from v2g.config import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def world(engine: Engine) -> World:
    return seed_world(engine)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    # the platform's own journey service, with the device layer's generate_box_site_id
    settings = Settings(database_url=str(world.engine.url), blueprint_path=TEST_BLUEPRINT)
    platform = bootstrap(settings, engine=world.engine, clock=world.clock)
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def to_site_id(client: TestClient, world: World) -> str:
    """Run customer c1 (no phone) to the stage where the charger gets its site id and credentials."""
    agg = login(client, "aggregator")
    body = signup_body("c1")
    body["owner"]["phone"] = None  # type: ignore[index]
    assert client.post("/api/v1/customers", headers=agg, json=body).status_code == 201
    owner = login(client, "owner-c1")
    installer, dso, insurer = (world.bearer(n) for n in ("installer", "dso", "insurer"))
    complete(client, owner, open_task(client, owner, "provide_site_details")["id"], evidence={"smart_meter_id": "1"})
    complete(client, owner, open_task(client, owner, "sign_contracts")["id"], evidence={"signature_ref": "B-1"})
    complete(
        client,
        installer,
        open_task(client, installer, "schedule_installation")["id"],
        evidence={"installation_date": "d"},
    )
    complete(
        client, installer, open_task(client, installer, "install_wallbox")["id"], evidence={"installation_report": "r"}
    )
    complete(
        client,
        dso,
        open_task(client, dso, "inspect_approve_installation")["id"],
        outcome="approved",
        evidence={"inspection_report": "i", "grid_connection_id": "g"},
    )
    state = complete(
        client, insurer, open_task(client, insurer, "confirm_coverage")["id"], evidence={"coverage_confirmation": "p"}
    )
    task = next(t for t in state["tasks"] if t["service"] == "generate_box_site_id")
    assert task["status"] == "completed", (task["waiting_reason"], task["result"])
    assert task["result"]["credentials_issued"] is True
    return str(task["id"])


def test_the_ocpp_password_is_retrieved_once_by_the_installer_and_never_sent(client: TestClient, world: World) -> None:
    task_id = to_site_id(client, world)
    installer, owner, agg = world.bearer("installer"), login(client, "owner-c1"), world.bearer("aggregator")
    # nobody else gets it: not the owner, the aggregator, or another organisation
    for who in (owner, agg, world.bearer("dso"), world.bearer("aggregator2")):
        assert client.get(f"/api/v1/tasks/{task_id}/secret", headers=who).status_code == 404
    first = client.get(f"/api/v1/tasks/{task_id}/secret", headers=installer)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    password = first.json()["secret"]
    assert first.json()["subject"] == "CP-c1"
    assert len(password) >= 24
    again = client.get(f"/api/v1/tasks/{task_id}/secret", headers=installer)
    assert again.status_code == 410
    assert password not in again.text

    with world.engine.connect() as conn:
        bodies = conn.execute(select(outbox.c.body)).scalars().all()
    assert bodies
    assert not [b for b in bodies if password in b]
    note = next(
        n
        for n in client.get("/api/v1/journeys/j-c1/notifications", headers=installer).json()
        if n["subject"] == "Charger OCPP credentials"
    )
    assert f"/api/v1/tasks/{task_id}/secret" in note["body"]

    # the owner (who has no phone) sees only what is addressed to them, and so does the export
    notes = client.get("/api/v1/journeys/j-c1/notifications", headers=owner).json()
    assert notes
    assert all(n["recipient_organisation_id"] is None for n in notes)
    assert "Charger OCPP credentials" not in {n["subject"] for n in notes}
    export = client.get("/api/v1/journeys/j-c1/export", headers=owner)
    assert export.status_code == 200
    with zipfile.ZipFile(io.BytesIO(export.content)) as zf:
        everything = b"".join(zf.read(name) for name in zf.namelist()).decode()
        data = json.loads(zf.read("data.json"))
    assert password not in everything
    assert data["notifications"]
    assert all(n["recipient_organisation_id"] is None for n in data["notifications"])
    audit = client.get("/api/v1/journeys/j-c1/audit", headers=agg).json()
    assert any(e["action"] == "secret_retrieved" and e["user_id"] == "user-installer" for e in audit)
    assert password not in json.dumps(audit)


def test_no_password_in_the_outbox_and_the_owner_sees_only_their_own_messages(client: TestClient, world: World) -> None:
    to_site_id(client, world)
    with world.engine.connect() as conn:
        bodies = conn.execute(select(outbox.c.body).where(outbox.c.subject == "Charger OCPP credentials")).scalars()
        bodies = list(bodies)
    assert bodies  # the installer is told where to retrieve it ...
    assert not [b for b in bodies if re.search(r"password \S{16,}", b)]  # ... but not the password
    owner = login(client, "owner-c1")
    notes = client.get("/api/v1/journeys/j-c1/notifications", headers=owner).json()
    assert notes
    assert [n["subject"] for n in notes if n["recipient_organisation_id"] is not None] == []
    with zipfile.ZipFile(io.BytesIO(client.get("/api/v1/journeys/j-c1/export", headers=owner).content)) as zf:
        exported = json.loads(zf.read("data.json"))["notifications"]
    assert exported
    assert [n["subject"] for n in exported if n["recipient_organisation_id"] is not None] == []
