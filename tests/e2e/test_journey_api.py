"""One customer from awareness to termination through the HTTP API only, each actor with its own login."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.journey_support import PASSWORD, TEST_BLUEPRINT, World, seed_world, signup_body
from v2g.api.app import create_app
from v2g.bootstrap import Platform, attach_ports
from v2g.config import Settings

pytestmark = pytest.mark.slow


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
    session = {"Authorization": f"Bearer {response.json()['token']}"}
    # the login token lasts 12 h; the test moves time by months, so each actor takes an API token
    api_token = client.post("/api/v1/auth/tokens", headers=session, json={"label": "e2e"})
    assert api_token.status_code == 201, api_token.text
    return {"Authorization": f"Bearer {api_token.json()['token']}"}


def open_task(client: TestClient, who: dict[str, str], item_suffix: str) -> dict[str, Any]:
    tasks = client.get("/api/v1/tasks", headers=who).json()
    matching = [t for t in tasks if t["item_id"].endswith(item_suffix)]
    assert len(matching) == 1, [t["item_id"] for t in tasks]
    return matching[0]


def complete(client: TestClient, who: dict[str, str], task_id: str, **body: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/tasks/{task_id}/complete", headers=who, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_one_customer_from_awareness_to_termination(client: TestClient, world: World) -> None:
    agg = login(client, "aggregator")
    created = client.post("/api/v1/customers", headers=agg, json=signup_body("c1"))
    assert created.status_code == 201, created.text
    journey = created.json()
    jid = journey["id"]
    # awareness has no tasks: the engine moved on and ran the selection checks itself
    assert journey["stage_id"] == "selection_request"
    checks = {t["service"]: t for t in journey["tasks"] if t["service"]}
    assert checks["check_vehicle_compatibility"]["status"] == "completed"
    assert checks["check_vehicle_compatibility"]["result"]["max_discharge_kw"] == 10
    fuse = checks["list_certified_wallboxes"]["result"]["wallboxes"][0]["fuse_check"]
    assert fuse["safe_charge_current_a"] == 8.0  # 20 A x 0.9 - 6900 W / (230 V x 3) = 18 - 10
    assert checks["dso_feasibility_indication"]["result"]["queue_position"] == 3

    owner = login(client, "owner-c1")
    installer, dso, insurer, tso = (world.bearer(n) for n in ("installer", "dso", "insurer", "tso"))

    # the owner provides the site details; the engine prepares the agreement
    task = open_task(client, owner, "provide_site_details")
    assert client.post(f"/api/v1/tasks/{task['id']}/complete", headers=installer, json={}).status_code == 403
    missing = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=owner, json={"evidence": {}})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "evidence"]
    assert "smart_meter_id" in missing.json()["detail"][0]["msg"]
    state = complete(client, owner, task["id"], evidence={"smart_meter_id": "735999100000000001"})
    assert state["stage_id"] == "decision_contracting"
    world.clock.advance(days=3)
    state = complete(
        client, owner, open_task(client, owner, "sign_contracts")["id"], evidence={"signature_ref": "BankID-123"}
    )
    assert state["stage_id"] == "installation_preparation"

    tracker = client.get(f"/api/v1/journeys/{jid}/tracker", headers=owner).json()
    assert tracker["stage_id"] == "installation_preparation"
    assert tracker["waiting_on"] == ["installer"]
    assert tracker["dso_queue_position"] == 3
    assert tracker["sla"]["state"] == "ok"
    assert tracker["go_live"]["expected_at"] is not None
    assert tracker["go_live"]["uncertainty_days"] > 0

    world.clock.advance(days=10)
    complete(
        client,
        installer,
        open_task(client, installer, "schedule_installation")["id"],
        evidence={"installation_date": "2026-12-10"},
    )
    world.clock.advance(days=20)
    complete(
        client,
        installer,
        open_task(client, installer, "install_wallbox")["id"],
        evidence={"installation_report": "IR-77"},
    )

    # the gate: DSO approval and insurance coverage are both still missing
    refused = client.post(f"/api/v1/journeys/{jid}/advance", headers=agg, json={})
    assert refused.status_code == 409
    unmet = refused.json()["detail"]["unmet"]
    assert len(unmet) == 2
    assert "inspect_approve_installation" in unmet[0]
    assert "'approved'" in unmet[0]
    assert "confirm_coverage" in unmet[1]
    wrong_outcome = client.post(
        f"/api/v1/tasks/{open_task(client, dso, 'inspect_approve_installation')['id']}/complete",
        headers=dso,
        json={"outcome": "maybe", "evidence": {"inspection_report": "x", "grid_connection_id": "y"}},
    )
    assert wrong_outcome.status_code == 422
    assert wrong_outcome.json()["detail"][0]["loc"] == ["body", "outcome"]
    complete(
        client,
        dso,
        open_task(client, dso, "inspect_approve_installation")["id"],
        outcome="approved",
        evidence={"inspection_report": "DSO-INSP-1", "grid_connection_id": "735999-GC-42"},
    )
    state = complete(
        client,
        insurer,
        open_task(client, insurer, "confirm_coverage")["id"],
        evidence={"coverage_confirmation": "POL-9"},
    )
    assert state["stage_id"] == "test_prequalification"
    site_id_task = next(t for t in state["tasks"] if t["service"] == "generate_box_site_id")
    assert site_id_task["result"]["v2g_site_id"] == "V2G-GA-1-CP-c1"

    # usage cannot start before pre-qualification passed
    refused = client.post(f"/api/v1/journeys/{jid}/advance", headers=agg, json={})
    assert refused.status_code == 409
    assert "one of" in refused.json()["detail"]["unmet"][0]
    for kind in ("boot", "test_profile_accepted"):
        assert client.post("/api/v1/chargers/CP-c1/events", headers=agg, json={"kind": kind}).status_code == 200
    state = complete(
        client,
        tso,
        open_task(client, tso, "prequalification_test")["id"],
        outcome="passed",
        evidence={"test_report": "FCR-D test 2026-12-20"},
    )
    assert state["stage_id"] == "usage"
    assert state["first_active_at"] is not None
    assert {t["service"]: t["status"] for t in state["tasks"] if t["service"]}["activate_v2g_service"] == "completed"

    # pause instead of cancel, then resume
    paused = client.post(f"/api/v1/journeys/{jid}/pause", headers=owner, json={"reason": "holiday"})
    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    assert client.post(f"/api/v1/journeys/{jid}/pause", headers=owner, json={}).status_code == 409
    assert client.post(f"/api/v1/journeys/{jid}/resume", headers=owner).json()["status"] == "active"

    # usage is the steady state: the engine stays there until an operator moves the customer on
    world.clock.advance(days=30)
    assert client.get(f"/api/v1/journeys/{jid}", headers=owner).json()["stage_id"] == "usage"
    moved = client.post(f"/api/v1/journeys/{jid}/advance", headers=agg, json={"to_stage": "engagement"})
    assert moved.status_code == 200
    assert moved.json()["stage_id"] == "engagement"

    offers = client.get(f"/api/v1/journeys/{jid}/retention-offers", headers=owner).json()
    assert any(o["id"] == "pause_instead" for o in offers)
    bad_reason = client.post(f"/api/v1/journeys/{jid}/terminate", headers=owner, json={"reasons": ["bored"]})
    assert bad_reason.status_code == 422
    assert bad_reason.json()["detail"][0]["loc"] == ["body", "reasons"]
    world.clock.advance(days=60)
    ended = client.post(
        f"/api/v1/journeys/{jid}/terminate",
        headers=owner,
        json={"reasons": ["low_financial_benefit"], "comment": "Less than I hoped"},
    )
    assert ended.status_code == 200, ended.text
    state = ended.json()
    assert state["stage_id"] == "termination"
    assert state["status"] == "terminating"
    by_service = {t["service"]: t for t in state["tasks"] if t["stage_id"] == "termination" and t["service"]}
    assert by_service["deactivate_charger"]["status"] == "completed"
    assert by_service["remove_v2g_site_id"]["result"]["removed"] == ["V2G-GA-1-CP-c1"]
    assert by_service["final_settlement"]["status"] == "waiting"  # run by settlement
    # the owner cannot override an automated task; the aggregator can, with evidence (audited)
    settle_id = by_service["final_settlement"]["id"]
    assert settle_id in [t["id"] for t in client.get("/api/v1/tasks", headers=agg).json()]
    assert (
        client.post(f"/api/v1/tasks/{settle_id}/complete", headers=owner, json={"evidence": {"note": "x"}}).status_code
        == 403
    )
    assert client.post(f"/api/v1/tasks/{settle_id}/complete", headers=agg, json={}).status_code == 422
    complete(client, agg, settle_id, evidence={"note": "final invoice INV-2027-001 sent"})
    complete(client, agg, by_service["deregister_unit"]["id"], evidence={"note": "removed from bidding group BG-1"})
    state = complete(
        client, installer, open_task(client, installer, "remove_charger")["id"], evidence={"removal_report": "RR-1"}
    )
    assert state["status"] == "terminated"

    export = client.get(f"/api/v1/journeys/{jid}/export", headers=owner)
    assert export.status_code == 200
    assert export.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(export.content)) as zf:
        names = set(zf.namelist())
        assert {"README.txt", "data.json", "profile.csv", "contracts.csv", "journey_history.csv", "tasks.csv"} <= names
        data = json.loads(zf.read("data.json"))
        history = list(csv.DictReader(io.StringIO(zf.read("journey_history.csv").decode())))
    assert data["profile"][0]["email"] == "c1@example.se"
    assert data["contracts"][0]["offer"] == "v2g-basic"
    assert [h["stage_id"] for h in history] == [s.id for s in world.blueprint.stages]
    assert data["exit_feedback"][0]["reasons"] == ["low_financial_benefit"]
    dso_task = next(t for t in data["tasks"] if t["item_id"].endswith("inspect_approve_installation"))
    assert dso_task["evidence"]["grid_connection_id"] == "735999-GC-42"

    audit = client.get(f"/api/v1/journeys/{jid}/audit", headers=agg).json()
    assert any(e["action"] == "task_override" and e["user_id"] == "user-aggregator" for e in audit)
    notes = client.get(f"/api/v1/journeys/{jid}/notifications", headers=owner).json()
    assert {"email", "sms", "app"} <= {n["channel"] for n in notes}
    assert "Done: Inspect and approve installation (approved)" in [n["subject"] for n in notes]
    tso_notes = client.get(f"/api/v1/journeys/{jid}/notifications", headers=tso).json()
    assert any("V2G unit joining" in n["subject"] for n in tso_notes)

    kpis = client.get("/api/v1/kpis", headers=agg).json()
    assert kpis["churn_rate"]["terminated"] == 1
    assert kpis["churn_reasons"] == {"low_financial_benefit": 1}
    assert kpis["pause_rate"]["ever_paused"] == 1


def test_refusals_wrong_role_other_org_and_bad_payloads(client: TestClient, world: World) -> None:
    agg = world.bearer("aggregator")
    assert client.post("/api/v1/customers", headers=agg, json=signup_body("c1")).status_code == 201
    other = client.post("/api/v1/customers", headers=agg, json=signup_body("c2", grid_area_id="GA-2"))
    assert other.status_code == 201
    owner1 = login(client, "owner-c1")

    # wrong role: 403
    assert client.post("/api/v1/customers", headers=owner1, json=signup_body("c3")).status_code == 403
    assert client.get("/api/v1/kpis", headers=owner1).status_code == 403
    assert client.post("/api/v1/journeys/j-c1/advance", headers=owner1, json={}).status_code == 403

    # other organisation's data: 404 with nothing leaked
    for name in ("aggregator2", "dso2"):
        who = world.bearer(name)
        response = client.get("/api/v1/journeys/j-c1", headers=who)
        assert response.status_code == 404
        assert response.json()["detail"] == "journey 'j-c1' not found"
        assert client.get("/api/v1/journeys/j-c1/tracker", headers=who).status_code == 404
        assert client.get("/api/v1/journeys/j-c1/notifications", headers=who).status_code == 404
        assert "j-c1" not in [j["id"] for j in client.get("/api/v1/journeys", headers=who).json()]
        assert client.get("/api/v1/tasks", headers=who).json() == []
    assert client.get("/api/v1/journeys/j-c2", headers=owner1).status_code == 404
    event = {"kind": "boot"}
    assert (
        client.post("/api/v1/chargers/CP-c1/events", headers=world.bearer("aggregator2"), json=event).status_code == 404
    )
    assert client.post("/api/v1/chargers/CP-c1/events", headers=owner1, json=event).status_code == 403
    assert [j["id"] for j in client.get("/api/v1/journeys", headers=owner1).json()] == ["j-c1"]
    dso = world.bearer("dso")
    assert [j["id"] for j in client.get("/api/v1/journeys", headers=dso).json()] == ["j-c1"]
    assert [j["id"] for j in client.get("/api/v1/journeys", headers=world.bearer("dso2")).json()] == ["j-c2"]
    assert client.get("/api/v1/journeys/j-c2/export", headers=owner1).status_code == 404
    assert (
        client.post("/api/v1/journeys/j-c2/terminate", headers=owner1, json={"reasons": ["other"]}).status_code == 404
    )

    # unmet gate: 409 listing the conditions
    for _ in range(3):  # gates-free stages: open tasks carry over
        assert client.post("/api/v1/journeys/j-c1/advance", headers=agg, json={}).status_code == 200
    refused = client.post("/api/v1/journeys/j-c1/advance", headers=agg, json={})
    assert refused.status_code == 409
    assert refused.json()["detail"]["message"].startswith("journey j-c1 cannot move from installation_onboarding")
    assert [u.split(":")[0] for u in refused.json()["detail"]["unmet"]] == [
        "gate installation_approved_and_insured"
    ] * 2
    skip = client.post("/api/v1/journeys/j-c2/advance", headers=agg, json={"to_stage": "usage"})
    assert skip.status_code == 422
    assert skip.json()["detail"][0]["loc"] == ["body", "to_stage"]

    # bad payloads: 422 naming the field
    bad = signup_body("c4")
    bad["site"]["main_fuse_a"] = 0  # type: ignore[index]
    response = client.post("/api/v1/customers", headers=agg, json=bad)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "site", "main_fuse_a"]
    bad = signup_body("c5", grid_area_id="GA-NOPE")
    response = client.post("/api/v1/customers", headers=agg, json=bad)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "site", "grid_area_id"]
    response = client.post("/api/v1/customers", headers=agg, json=signup_body("c:6"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "customer_id"]
    task_id = client.get("/api/v1/tasks", headers=owner1).json()[0]["id"]
    response = client.post(f"/api/v1/tasks/{task_id}/complete", headers=owner1, json={"evidence": ["not", "a", "map"]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "evidence"]
    response = client.post(f"/api/v1/tasks/{task_id}/complete", headers=owner1, json={"evidence": {}, "extra": 1})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "extra"]
    dup = client.post("/api/v1/customers", headers=agg, json=signup_body("c1"))
    assert dup.status_code == 409
    assert client.get("/api/v1/journeys", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/v1/journeys").status_code == 401
    wrong = client.post("/api/v1/auth/login", json={"username": "aggregator", "password": "wrong password"})
    assert wrong.status_code == 401
