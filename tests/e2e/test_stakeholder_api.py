"""The stakeholders' API: the work queue with deadlines, evidence files of a task over HTTP (multipart
upload, list, download), completing with a file, and the DSO's grid areas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.journey_support import TEST_BLUEPRINT, World, seed_world
from tests.stakeholder_support import APPROVAL, COVERAGE, DSO, INSURER, JPEG, PDF, PNG, to_onboarding
from v2g.api.app import create_app
from v2g.bootstrap import bootstrap
from v2g.config import Settings

pytestmark = pytest.mark.slow
LIMIT = 2 * 1_048_576  # over the 1 MiB body limit of other requests


@pytest.fixture
def world(engine: Engine) -> World:
    return seed_world(engine)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    settings = Settings(database_url=str(world.engine.url), blueprint_path=TEST_BLUEPRINT, evidence_max_bytes=LIMIT)
    platform = bootstrap(settings, engine=world.engine, clock=world.clock, journeys=world.service)
    with TestClient(create_app(platform)) as test_client:
        yield test_client


def upload(client: TestClient, world: World, who: str, task_id: str, field: str, name: str, content: bytes) -> Any:
    return client.post(
        f"/api/v1/tasks/{task_id}/evidence",
        headers=world.bearer(who),
        data={"field": field},
        files={"file": (name, content, "application/octet-stream")},
    )


def test_the_dso_queue_lists_its_tasks_most_urgent_first_with_their_deadline(client: TestClient, world: World) -> None:
    first = to_onboarding(world.service, "c1")
    world.clock.advance(days=12)  # c1's onboarding (14 days, warning at 80 %) is due soon
    second = to_onboarding(world.service, "c2")
    answer = client.get("/api/v1/work-queue", headers=world.bearer("dso"))
    assert answer.status_code == 200, answer.text
    queue = answer.json()
    assert [(i["task"]["id"], i["sla"]["state"]) for i in queue] == [
        (f"{first}:{APPROVAL}", "warning"),
        (f"{second}:{APPROVAL}", "ok"),
    ]
    assert queue[0]["customer_name"] == "Owner c1"
    assert queue[0]["stage_name"] == "Installation & onboarding"
    assert queue[0]["sla"]["due_at"].startswith("2026-")
    world.clock.advance(days=3)
    queue = client.get("/api/v1/work-queue", headers=world.bearer("dso")).json()
    assert [i["sla"]["state"] for i in queue] == ["breached", "ok"]
    # the same tasks as /tasks, which stays as it was
    assert {t["id"] for t in client.get("/api/v1/tasks", headers=world.bearer("dso")).json()} == {
        i["task"]["id"] for i in queue
    }
    # done tasks on request, after the open ones
    assert client.get("/api/v1/work-queue", headers=world.bearer("dso2")).json() == []
    installer = client.get("/api/v1/work-queue?include_done=true", headers=world.bearer("installer")).json()
    done = [i["task"]["status"] == "completed" for i in installer]
    assert done == [False, False, True, True]  # scheduling carried over open; both installations done
    plain = client.get("/api/v1/work-queue", headers=world.bearer("installer")).json()
    assert len(plain) == done.count(False)


def test_evidence_over_http_upload_list_download_and_complete(client: TestClient, world: World) -> None:
    jid = to_onboarding(world.service, "c1")
    task_id = f"{jid}:{APPROVAL}"
    big_photo = PNG + b"\x00" * (LIMIT - len(PNG))  # exactly the limit: larger than any other request body
    created = upload(client, world, "dso", task_id, "inspection_report", "approval.pdf", PDF)
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["media_type"] == "application/pdf"
    assert record["reference"] == f"file:{record['id']} sha256:{record['sha256']}"
    again = upload(client, world, "dso", task_id, "inspection_report", "approval (1).pdf", PDF)
    assert again.status_code == 200
    assert again.json()["id"] == record["id"]
    photo = upload(client, world, "dso", task_id, "grid_connection_id", "meter.png", big_photo)
    assert photo.status_code == 201, photo.text[:300]

    listed = client.get(f"/api/v1/tasks/{task_id}/evidence", headers=world.bearer("dso")).json()
    assert {f["id"] for f in listed} == {record["id"], photo.json()["id"]}
    download = client.get(f"/api/v1/tasks/{task_id}/evidence/{record['id']}", headers=world.bearer("dso"))
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"] == f'attachment; filename="{record["id"]}.pdf"'

    done = client.post(
        f"/api/v1/tasks/{task_id}/complete",
        headers=world.bearer("dso"),
        json={
            "outcome": "approved",
            "evidence": {"inspection_report": record["reference"], "grid_connection_id": "GC-1"},
        },
    )
    assert done.status_code == 200, done.text
    task = next(t for t in done.json()["tasks"] if t["id"] == task_id)
    assert task["evidence"]["inspection_report"] == record["reference"]
    insurer = client.get("/api/v1/work-queue", headers=world.bearer("insurer")).json()
    confirmation = next(i for i in insurer if i["task"]["id"] == f"{jid}:{COVERAGE}")
    policy = upload(client, world, "insurer", confirmation["task"]["id"], "coverage_confirmation", "p.jpg", JPEG)
    moved = client.post(
        f"/api/v1/tasks/{confirmation['task']['id']}/complete",
        headers=world.bearer("insurer"),
        json={"evidence": {"coverage_confirmation": policy.json()["reference"]}},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["stage_id"] == "test_prequalification"
    audit = client.get(f"/api/v1/journeys/{jid}/audit", headers=world.bearer("aggregator")).json()
    assert any(e["action"] == "evidence_uploaded" and e["after"]["file"] == record["reference"] for e in audit)


def test_evidence_refusals_over_http_name_the_field(client: TestClient, world: World) -> None:
    jid = to_onboarding(world.service, "c1")
    task_id = f"{jid}:{APPROVAL}"
    fake = upload(client, world, "dso", task_id, "inspection_report", "approval.pdf", b"GIF89a not accepted")
    assert fake.status_code == 422
    assert fake.json()["detail"][0]["loc"] == ["body", "file"]
    assert "only PDF, PNG or JPEG" in fake.json()["detail"][0]["msg"]
    too_big = upload(client, world, "dso", task_id, "inspection_report", "a.pdf", PDF + b"0" * LIMIT)
    assert too_big.status_code == 422
    assert "larger than" in too_big.json()["detail"][0]["msg"]
    way_too_big = upload(client, world, "dso", task_id, "inspection_report", "a.pdf", PDF + b"0" * (LIMIT + 100_000))
    assert way_too_big.status_code == 413
    wrong_field = upload(client, world, "dso", task_id, "selfie", "a.png", PNG)
    assert wrong_field.status_code == 422
    assert wrong_field.json()["detail"][0]["loc"] == ["body", "field"]
    assert upload(client, world, "insurer", task_id, "inspection_report", "a.pdf", PDF).status_code == 403
    assert upload(client, world, "dso2", task_id, "inspection_report", "a.pdf", PDF).status_code == 404
    assert upload(client, world, "dso", f"{jid}:nothing.here", "inspection_report", "a.pdf", PDF).status_code == 404
    assert client.get(f"/api/v1/tasks/{task_id}/evidence", headers=world.bearer("installer")).status_code == 403
    assert client.get(f"/api/v1/tasks/{task_id}/evidence/ev-{'0' * 32}", headers=world.bearer("dso")).status_code == 404
    assert client.get(f"/api/v1/tasks/{task_id}/evidence").status_code == 401
    unknown_ref = client.post(
        f"/api/v1/tasks/{task_id}/complete",
        headers=world.bearer("dso"),
        json={"outcome": "approved", "evidence": {"inspection_report": f"file:ev-{'1' * 32} sha256:{'2' * 64}"}},
    )
    assert unknown_ref.status_code == 422
    assert unknown_ref.json()["detail"][0]["loc"] == ["body", "evidence", "inspection_report"]
    assert client.get(f"/api/v1/tasks/{task_id}/evidence", headers=world.bearer("dso")).json() == []


def test_the_dso_sees_its_areas_with_queue_capacity_and_v2g_sites(client: TestClient, world: World) -> None:
    jid = to_onboarding(world.service, "c1")
    to_onboarding(world.service, "c2")
    areas = client.get("/api/v1/dso/areas", headers=world.bearer("dso"))
    assert areas.status_code == 200, areas.text
    (ga1,) = areas.json()
    assert ga1["id"] == "GA-1"
    assert ga1["hosting_capacity_kw"] == 200.0
    assert ga1["external_queue_length"] == 2
    assert [(r["customer_id"], r["queue_position"]) for r in ga1["queue"]] == [("c1", 3), ("c2", 4)]
    assert ga1["queue"][0]["result"] == "feasible"
    # onboarding gave both boxes their V2G site ID: their export is committed in the area
    assert [(s["customer_id"], s["v2g_site_id"]) for s in ga1["v2g_sites"]] == [
        ("c1", "V2G-GA-1-CP-c1"),
        ("c2", "V2G-GA-1-CP-c2"),
    ]
    assert ga1["committed_export_kw"] == 23.0
    assert ga1["headroom_kw"] == 200.0 - 23.0
    # a customer whose service went live leaves the connection queue
    world.service.complete_task(
        DSO, f"{jid}:{APPROVAL}", outcome="approved", evidence={"inspection_report": "R", "grid_connection_id": "G"}
    )
    world.service.complete_task(INSURER, f"{jid}:{COVERAGE}", evidence={"coverage_confirmation": "P"})
    with world.engine.begin() as conn:
        conn.execute(text("UPDATE journeys SET first_active_at = created_at WHERE id = :id"), {"id": jid})
    ga1 = client.get("/api/v1/dso/areas", headers=world.bearer("dso")).json()[0]
    assert [r["customer_id"] for r in ga1["queue"]] == ["c2"]
    other = client.get("/api/v1/dso/areas", headers=world.bearer("dso2")).json()
    assert [(a["id"], a["queue"]) for a in other] == [("GA-2", [])]
    assert client.get("/api/v1/dso/areas", headers=world.bearer("installer")).status_code == 403
