"""Evidence files of tasks on SQLite and PostgreSQL: what is accepted (PDF, PNG, JPEG by content, up to
the size limit), who may upload, list and download, duplicates, and completing with a file; and the
deadline the work queue shows for a task."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from tests.journey_support import World, seed_world
from tests.stakeholder_support import (
    AGG,
    APPROVAL,
    COVERAGE,
    DSO,
    DSO2,
    INSTALLER,
    INSURER,
    JPEG,
    PDF,
    PNG,
    to_onboarding,
)
from v2g.adapters.db.evidence_repo import SqlEvidenceStore
from v2g.adapters.db.tables.evidence import task_evidence_files
from v2g.journey.model import JourneyError
from v2g.services.actors.ports import DuplicateError, ForbiddenError, NotFoundError
from v2g.services.journey.evidence import EvidenceError, EvidenceFile, TaskEvidence, display_name, media_type_of
from v2g.services.journey.values import StateConflictError

pytestmark = pytest.mark.slow
LIMIT = 4096


@pytest.fixture
def world(engine: Engine) -> World:
    return seed_world(engine)


@pytest.fixture
def evidence(world: World) -> TaskEvidence:
    return TaskEvidence(world.service, SqlEvidenceStore(world.engine), max_bytes=LIMIT)


def test_pdf_png_and_jpeg_are_recognised_by_their_first_bytes_whatever_the_name() -> None:
    assert media_type_of(PDF) == "application/pdf"
    assert media_type_of(PNG) == "image/png"
    assert media_type_of(JPEG) == "image/jpeg"
    assert media_type_of(b"MZ\x90\x00 an executable") is None
    assert media_type_of(b"<html><script>") is None
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("C:\\Users\\a\\report\x00.pdf") == "report.pdf"
    assert display_name("") == "upload"


def test_the_dso_uploads_a_pdf_and_completes_the_approval_with_it(world: World, evidence: TaskEvidence) -> None:
    jid = to_onboarding(world.service, "c1")
    task_id = f"{jid}:{APPROVAL}"
    record, created = evidence.upload(DSO, task_id, "inspection_report", "../inspection.pdf", PDF)
    assert created
    assert record.media_type == "application/pdf"
    assert record.sha256 == hashlib.sha256(PDF).hexdigest()
    assert record.size_bytes == len(PDF)
    assert record.original_name == "inspection.pdf"
    assert record.id.startswith("ev-")  # the platform names the file
    assert "inspection" not in record.id
    assert record.organisation_id == "org-dso"
    assert evidence.files(DSO, task_id) == [record]
    stored, content = evidence.download(DSO, task_id, record.id)
    assert (stored, content) == (record, PDF)

    view = evidence.complete(
        DSO,
        task_id,
        outcome="approved",
        evidence={"inspection_report": record.reference, "grid_connection_id": "735999-GC-1"},
    )
    done = next(t for t in view.tasks if t.id == task_id)
    assert done.evidence["inspection_report"] == f"file:{record.id} sha256:{record.sha256}"
    audit = world.service.audit_log(AGG, jid)
    actions = [(e.action, e.after) for e in audit if e.entity_id == task_id]
    assert ("evidence_uploaded", {"field": "inspection_report", "file": record.reference}) in actions
    completed = next(after for action, after in actions if action == "task_completed")
    assert completed["evidence"]["inspection_report"] == record.reference
    # the task is done: its evidence no longer changes
    with pytest.raises(StateConflictError):
        evidence.upload(DSO, task_id, "inspection_report", "late.png", PNG)


def test_size_and_type_are_checked_and_a_refusal_names_the_field(world: World, evidence: TaskEvidence) -> None:
    jid = to_onboarding(world.service, "c1")
    task_id = f"{jid}:{APPROVAL}"
    too_big = PDF + b"0" * LIMIT
    with pytest.raises(EvidenceError, match=r"^file: .* larger than the 4096 bytes allowed") as big:
        evidence.upload(DSO, task_id, "inspection_report", "big.pdf", too_big)
    assert big.value.field == "file"
    with pytest.raises(EvidenceError, match="only PDF, PNG or JPEG") as fake:
        evidence.upload(DSO, task_id, "inspection_report", "report.pdf", b"MZ\x90\x00 not a pdf at all")
    assert fake.value.field == "file"
    with pytest.raises(EvidenceError, match="empty"):
        evidence.upload(DSO, task_id, "inspection_report", "empty.pdf", b"")
    with pytest.raises(EvidenceError, match="'photo' is not evidence this task asks for") as wrong:
        evidence.upload(DSO, task_id, "photo", "photo.png", PNG)
    assert wrong.value.field == "field"
    # exactly the limit is accepted; nothing refused was stored
    record, _ = evidence.upload(DSO, task_id, "inspection_report", "max.pdf", PDF + b"0" * (LIMIT - len(PDF)))
    assert [f.id for f in evidence.files(DSO, task_id)] == [record.id]


def test_only_the_actor_assigned_the_task_may_upload_list_or_download(world: World, evidence: TaskEvidence) -> None:
    jid = to_onboarding(world.service, "c1")
    task_id = f"{jid}:{APPROVAL}"
    record, _ = evidence.upload(DSO, task_id, "inspection_report", "r.pdf", PDF)
    with pytest.raises(ForbiddenError, match="is for role 'dso', not 'insurer'"):
        evidence.upload(INSURER, task_id, "inspection_report", "r.pdf", JPEG)
    with pytest.raises(ForbiddenError):
        evidence.files(INSTALLER, task_id)
    with pytest.raises(ForbiddenError):
        evidence.download(INSURER, task_id, record.id)
    # another DSO does not see the customer (the area is not theirs): as if the task did not exist
    with pytest.raises(NotFoundError):
        evidence.upload(DSO2, task_id, "inspection_report", "r.pdf", PNG)
    with pytest.raises(NotFoundError):
        evidence.download(DSO2, task_id, record.id)
    # unknown task ids and a file of another task are not found
    with pytest.raises(NotFoundError, match="not found"):
        evidence.upload(DSO, f"{jid}:no.such.task", "inspection_report", "r.pdf", PDF)
    with pytest.raises(NotFoundError):
        evidence.files(DSO, "nojourney:whatever")
    coverage, _ = evidence.upload(INSURER, f"{jid}:{COVERAGE}", "coverage_confirmation", "policy.png", PNG)
    with pytest.raises(NotFoundError):
        evidence.download(DSO, task_id, coverage.id)


def test_the_same_file_twice_is_one_record_and_a_reference_must_be_this_tasks(
    world: World, evidence: TaskEvidence
) -> None:
    jid = to_onboarding(world.service, "c1")
    task_id = f"{jid}:{APPROVAL}"
    first, created = evidence.upload(DSO, task_id, "inspection_report", "a.pdf", PDF)
    again, created_again = evidence.upload(DSO, task_id, "inspection_report", "copy-of-a.pdf", PDF)
    assert created
    assert not created_again
    assert again == first
    with world.engine.connect() as conn:
        assert len(conn.execute(select(task_evidence_files.c.id)).all()) == 1
    # the same content for another field is other evidence
    other, created_other = evidence.upload(DSO, task_id, "grid_connection_id", "a.pdf", PDF)
    assert created_other
    assert other.id != first.id

    coverage, _ = evidence.upload(INSURER, f"{jid}:{COVERAGE}", "coverage_confirmation", "policy.jpg", JPEG)
    for bad in (
        coverage.reference,  # a file of another task
        other.reference,  # a file of another field
        f"file:{first.id} sha256:{'0' * 64}",  # the wrong digest
        "file:../../etc/passwd",
    ):
        with pytest.raises(JourneyError, match="is not a file uploaded for this task's inspection_report") as exc:
            evidence.complete(
                DSO, task_id, outcome="approved", evidence={"inspection_report": bad, "grid_connection_id": "GC"}
            )
        assert exc.value.field == "evidence.inspection_report"
    still_open = next(t for t in world.service.get(DSO, jid).tasks if t.id == task_id)
    assert not still_open.done  # nothing was completed by a refused attempt


def test_a_tasks_deadline_is_its_stages_sla_counted_from_the_tasks_creation(world: World) -> None:
    jid = to_onboarding(world.service, "c1")
    approval = next(t for t in world.service.get(DSO, jid).tasks if t.id == f"{jid}:{APPROVAL}")
    start = approval.created_at
    states = []
    for days in (0, 11.1, 11.3, 14, 14.01):  # onboarding: 14 days, warning from 80 % (11.2 days)
        status = world.service.task_deadline(approval, start + timedelta(days=days))
        states.append(status.state.value)
        assert status.due_at == start + timedelta(days=14)
    assert states == ["ok", "ok", "warning", "warning", "breached"]
    usage = replace(approval, id=f"{jid}:x", stage_id="usage")  # a stage without a timeline
    assert world.service.task_deadline(usage, start).state.value == "none"
    assert world.service.task_deadline(usage, start).due_at is None


def test_the_store_refuses_a_second_row_for_one_task_field_and_digest(world: World, evidence: TaskEvidence) -> None:
    jid = to_onboarding(world.service, "c1")
    record, _ = evidence.upload(DSO, f"{jid}:{APPROVAL}", "inspection_report", "a.pdf", PDF)
    store = SqlEvidenceStore(world.engine)
    with pytest.raises(DuplicateError, match="already has a file with this SHA-256"):
        store.add(replace(record, id="ev-" + "f" * 32), PDF)
    assert store.get("ev-" + "f" * 32) is None
    assert store.content(record.id) == PDF
    assert store.find(record.task_id, "grid_connection_id", record.sha256) is None

    class Racing(SqlEvidenceStore):
        """The other request stores the same file between this one's look and its write."""

        def find(self, task_id: str, field: str, sha256: str) -> EvidenceFile | None:
            self.looked = getattr(self, "looked", 0) + 1
            return None if self.looked == 1 else super().find(task_id, field, sha256)

    racing = TaskEvidence(world.service, Racing(world.engine), max_bytes=LIMIT)
    again, created = racing.upload(DSO, f"{jid}:{APPROVAL}", "inspection_report", "b.pdf", PDF)
    assert not created
    assert again == record
