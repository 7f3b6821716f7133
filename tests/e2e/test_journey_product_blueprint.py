"""The product blueprint end to end over HTTP: every actor completes its own tasks with the evidence
the blueprint names, from awareness to a completed termination, and the export holds the journey."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.e2e.test_journey_api import login
from tests.journey_support import ACTORS, PRODUCT_BLUEPRINT, World, seed_world, signup_body
from v2g.api.app import create_app
from v2g.bootstrap import Platform, attach_ports
from v2g.config import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def world(engine: Engine) -> World:
    return seed_world(engine, blueprint_path=PRODUCT_BLUEPRINT)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    settings = Settings(database_url=str(world.engine.url), blueprint_path=PRODUCT_BLUEPRINT)
    platform = attach_ports(Platform(settings=settings, engine=world.engine, clock=world.clock, journeys=world.service))
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def _work_stage(client: TestClient, tokens: dict[str, dict[str, str]], jid: str) -> dict[str, Any]:
    """Each actor completes its open tasks of the current stage; waiting automated tasks are either
    reported by the device layer (connectivity) or completed by the aggregator with a note."""
    agg = tokens["aggregator_operator"]
    journey = client.get(f"/api/v1/journeys/{jid}", headers=agg).json()
    for task in journey["tasks"]:
        if task["stage_id"] != journey["stage_id"] or task["status"] == "completed":
            continue
        if task["kind"] == "manual":
            # the actor sees the task in its own list, and completes it with the named evidence
            mine = client.get("/api/v1/tasks", headers=tokens[task["role"]]).json()
            assert task["id"] in [t["id"] for t in mine], (task["role"], task["item_id"])
            body = {"evidence": {name: f"{name} #1" for name in task["evidence_required"]}}
            if task["outcomes"]:
                body["outcome"] = task["outcomes"][0]
            response = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=tokens[task["role"]], json=body)
        elif task["service"] == "verify_connectivity":
            for kind in ("boot", "test_profile_accepted"):
                response = client.post("/api/v1/chargers/CP-c1/events", headers=agg, json={"kind": kind})
        else:
            current = client.get(f"/api/v1/journeys/{jid}", headers=agg).json()
            if next(t for t in current["tasks"] if t["id"] == task["id"])["status"] == "completed":
                continue  # a handler finished it meanwhile
            note = {"evidence": {"note": f"{task['service']} done outside the platform"}}
            response = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=agg, json=note)
        assert response.status_code == 200, (task["item_id"], response.text)
    return dict(client.get(f"/api/v1/journeys/{jid}", headers=agg).json())


def test_product_blueprint_from_awareness_to_termination(client: TestClient, world: World) -> None:
    tokens = {role: world.bearer(username) for username, (_, _, role) in ACTORS.items() if "2" not in username}
    agg = tokens["aggregator_operator"]
    created = client.post("/api/v1/customers", headers=agg, json=signup_body("c1"))
    assert created.status_code == 201, created.text
    jid = created.json()["id"]
    tokens["owner"] = login(client, "owner-c1")
    stages = [s.id for s in world.blueprint.stages]

    seen = [created.json()["stage_id"]]
    for _ in range(30):
        journey = _work_stage(client, tokens, jid)
        if journey["stage_id"] == "usage":
            break
        if journey["stage_id"] == seen[-1]:
            # every task is done: the gates decide (409 would list what is missing)
            moved = client.post(f"/api/v1/journeys/{jid}/advance", headers=agg, json={})
            assert moved.status_code == 200, moved.text
            journey = moved.json()
        seen.append(journey["stage_id"])
        world.clock.advance(days=10)
    assert journey["stage_id"] == "usage"
    assert journey["first_active_at"] is not None
    assert set(stages[1 : stages.index("usage")]) <= set(seen)

    tracker = client.get(f"/api/v1/journeys/{jid}/tracker", headers=tokens["owner"]).json()
    assert tracker["go_live"]["basis"] == "live"
    moved = client.post(f"/api/v1/journeys/{jid}/advance", headers=agg, json={"to_stage": "engagement"})
    assert moved.status_code == 200, moved.text

    ended = client.post(
        f"/api/v1/journeys/{jid}/terminate", headers=tokens["owner"], json={"reasons": ["unclear_value"]}
    )
    assert ended.status_code == 200, ended.text
    for _ in range(3):
        journey = _work_stage(client, tokens, jid)
        if journey["status"] == "terminated":
            break
    assert journey["status"] == "terminated", [t["item_id"] for t in journey["tasks"] if t["status"] != "completed"]

    export = client.get(f"/api/v1/journeys/{jid}/export", headers=tokens["owner"])
    assert export.status_code == 200
    with zipfile.ZipFile(io.BytesIO(export.content)) as zf:
        data = json.loads(zf.read("data.json"))
    assert [v["stage_id"] for v in data["journey_history"]] == stages
    evidence = {t["item_id"]: t["evidence"] for t in data["tasks"]}
    assert evidence["installation_onboarding.back.dso.inspect_approve_installation"] == {
        "inspection_report": "inspection_report #1"
    }
    assert data["exit_feedback"][0]["reasons"] == ["unclear_value"]
