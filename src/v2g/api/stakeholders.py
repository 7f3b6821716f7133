"""The stakeholders' work: the work queue with each task's deadline, evidence files of a task, and the
DSO's grid areas. The portal's stakeholder pages show exactly these answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile, status
from pydantic import BaseModel

from v2g.api.inputs import CheckedJsonRoute
from v2g.api.journeys import TaskOut, Who, _call, _task_out
from v2g.services.journey.evidence import EvidenceFile, TaskEvidence
from v2g.services.journey.service import JourneyService
from v2g.services.journey.stakeholders import DsoArea, QueueItem

router = APIRouter(route_class=CheckedJsonRoute)


def _journeys(request: Request) -> JourneyService:
    service: JourneyService | None = request.app.state.platform.journeys
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no blueprint loaded (V2G_BLUEPRINT_PATH)")
    return service


def _evidence(request: Request) -> TaskEvidence:
    evidence: TaskEvidence | None = request.app.state.platform.task_evidence
    if evidence is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no evidence store (no blueprint loaded)")
    return evidence


Svc = Annotated[JourneyService, Depends(_journeys)]
Evidence = Annotated[TaskEvidence, Depends(_evidence)]


class SlaOut(BaseModel):
    state: str
    due_at: datetime | None
    warn_at: datetime | None


class QueueItemOut(BaseModel):
    task: TaskOut
    customer_id: str
    customer_name: str
    site_address: str | None
    grid_area_id: str | None
    stage_name: str
    journey_stage_id: str
    journey_status: str
    sla: SlaOut


class EvidenceFileOut(BaseModel):
    id: str
    task_id: str
    field: str
    original_name: str
    media_type: str
    size_bytes: int
    sha256: str
    uploaded_at: datetime
    uploaded_by: str
    reference: str


class ConnectionRequestOut(BaseModel):
    customer_id: str
    customer_name: str
    journey_id: str
    stage_id: str
    queue_position: int | None
    result: str | None
    requested_export_kw: float | None
    preliminary_connection_at: datetime | None
    indicated_at: datetime


class V2gSiteOut(BaseModel):
    customer_id: str
    site_id: str
    charger_id: str
    v2g_site_id: str
    max_discharge_kw: float
    active: bool


class DsoAreaOut(BaseModel):
    id: str
    name: str
    price_area: str
    import_limit_kw: float
    export_limit_kw: float
    hosting_capacity_kw: float
    committed_export_kw: float
    headroom_kw: float
    external_queue_length: int
    queue: list[ConnectionRequestOut]
    v2g_sites: list[V2gSiteOut]


def queue_item_out(item: QueueItem) -> QueueItemOut:
    return QueueItemOut(
        task=_task_out(item.task),
        customer_id=item.customer_id,
        customer_name=item.customer_name,
        site_address=item.site_address,
        grid_area_id=item.grid_area_id,
        stage_name=item.stage_name,
        journey_stage_id=item.journey_stage_id,
        journey_status=item.journey_status.value,
        sla=SlaOut(state=item.sla.state.value, due_at=item.sla.due_at, warn_at=item.sla.warn_at),
    )


def evidence_out(record: EvidenceFile) -> EvidenceFileOut:
    return EvidenceFileOut(
        id=record.id,
        task_id=record.task_id,
        field=record.field,
        original_name=record.original_name,
        media_type=record.media_type,
        size_bytes=record.size_bytes,
        sha256=record.sha256,
        uploaded_at=record.uploaded_at,
        uploaded_by=record.uploaded_by,
        reference=record.reference,
    )


def dso_area_out(area: DsoArea) -> DsoAreaOut:
    a = area.area
    return DsoAreaOut(
        id=a.id,
        name=a.name,
        price_area=a.price_area.value,
        import_limit_kw=a.import_limit_kw,
        export_limit_kw=a.export_limit_kw,
        hosting_capacity_kw=a.hosting_capacity_kw,
        committed_export_kw=area.committed_export_kw,
        headroom_kw=area.headroom_kw,
        external_queue_length=a.connection_queue_length,
        queue=[ConnectionRequestOut.model_validate(r, from_attributes=True) for r in area.queue],
        v2g_sites=[V2gSiteOut.model_validate(s, from_attributes=True) for s in area.v2g_sites],
    )


# ------------------------------------------------------------------------------------ work queue
@router.get("/work-queue", response_model=list[QueueItemOut], tags=["tasks"])
def get_work_queue(who: Who, service: Svc, include_done: bool = False) -> list[QueueItemOut]:
    """The caller's tasks with customer, stage and deadline (the stage's SLA counted from the task's
    creation): open ones most urgent first (breached, warning, ok, none), then done ones."""
    return [queue_item_out(i) for i in _call(lambda: service.work_queue(who, include_done=include_done))]


@router.get("/dso/areas", response_model=list[DsoAreaOut], tags=["fleet"])
def get_dso_areas(who: Who, service: Svc) -> list[DsoAreaOut]:
    """The caller's grid areas (DSOs): limits, committed export, the connection queue and the V2G sites."""
    return [dso_area_out(a) for a in _call(lambda: service.dso_areas(who))]


# ------------------------------------------------------------------------------------ evidence
@router.post(
    "/tasks/{task_id}/evidence",
    response_model=EvidenceFileOut,
    status_code=201,
    tags=["tasks"],
    responses={
        200: {"description": "the same file was already uploaded for this field; its record"},
        413: {"description": "larger than V2G_EVIDENCE_MAX_BYTES and its form"},
    },
)
async def post_evidence(
    task_id: str,
    who: Who,
    evidence: Evidence,
    response: Response,
    field: Annotated[str, Form(min_length=1, max_length=64)],
    file: Annotated[UploadFile, File()],
) -> EvidenceFileOut:
    """Upload an evidence file (PDF, PNG or JPEG by content) for one of the task's evidence fields.

    Complete the task with the answer's ``reference`` as that field's evidence value.
    """
    content = await file.read(evidence.max_bytes + 1)
    record, created = _call(lambda: evidence.upload(who, task_id, field, file.filename or "", content))
    if not created:
        response.status_code = 200
    return evidence_out(record)


@router.get("/tasks/{task_id}/evidence", response_model=list[EvidenceFileOut], tags=["tasks"])
def list_evidence(task_id: str, who: Who, evidence: Evidence) -> list[EvidenceFileOut]:
    """The task's evidence files (for the actor the task is assigned to)."""
    return [evidence_out(r) for r in _call(lambda: evidence.files(who, task_id))]


@router.get(
    "/tasks/{task_id}/evidence/{file_id}",
    tags=["tasks"],
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {}}}},
)
def get_evidence_file(task_id: str, file_id: str, who: Who, evidence: Evidence) -> Response:
    """One evidence file's content, as an attachment under the platform's name for it."""
    record, content = _call(lambda: evidence.download(who, task_id, file_id))
    return evidence_response(record, content)


def evidence_response(record: EvidenceFile, content: bytes) -> Response:
    """A stored file as a download: its checked media type, the platform's name, never cached."""
    return Response(
        content,
        media_type=record.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{record.download_name}"',
            "Cache-Control": "no-store",
            "X-Content-SHA256": record.sha256,
        },
    )
