"""The stakeholders' pages: the work queue of the caller's role (a DSO's, an installer's jobs, an
insurer's confirmations...), a task with its facts, its evidence files and the form completing it.

Every list and every change goes through the use cases the API calls (``JourneyService.work_queue``,
``TaskEvidence``), with the caller's principal, so a task shows and changes for the actor it is
assigned to only (404 for a task the caller may not see, 403 for another role's task).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from v2g.journey.model import JourneyError
from v2g.services.journey.evidence import EvidenceFile, TaskEvidence
from v2g.services.journey.service import JourneyService
from v2g.services.journey.values import StateConflictError
from v2g.web.base import PortalError, Viewer, call, checked_form, platform_of, redirect, render, require_role, viewer

router = APIRouter(prefix="/work", include_in_schema=False)

# the organisations serving a customer besides the owner and the aggregator (whose pages are their own)
STAKEHOLDER_ROLES = (
    "dso",
    "installer",
    "insurer",
    "bsp",
    "energy_supplier",
    "ev_supplier",
    "evse_supplier",
    "tso",
    "brp",
)


def _stakeholder(who: Viewer = Depends(viewer)) -> Viewer:  # noqa: B008 - FastAPI dependency
    require_role(who, *STAKEHOLDER_ROLES)
    return who


def _journeys(request: Request) -> JourneyService:
    service = platform_of(request).journeys
    if service is None:
        raise PortalError(503, "not_found_title", "the platform has no journey service (no blueprint loaded)")
    return service


def _evidence(request: Request) -> TaskEvidence:
    evidence = platform_of(request).task_evidence
    if evidence is None:
        raise PortalError(503, "not_found_title", "the platform keeps no evidence files (no blueprint loaded)")
    return evidence


# ------------------------------------------------------------------------------------ the queue
@router.get("")
def queue(request: Request, who: Viewer = Depends(_stakeholder), done: int = 0) -> HTMLResponse:  # noqa: B008
    """The role's open tasks, most urgent first; with ``done=1`` the completed ones after them."""
    journeys = _journeys(request)
    items = call(lambda: journeys.work_queue(who.principal, include_done=bool(done)))
    return render(request, "work_queue.html.j2", who=who, items=items, show_done=bool(done))


# ------------------------------------------------------------------------------------ one task
def _task_page(request: Request, who: Viewer, task_id: str, **context: Any) -> HTMLResponse:
    journeys, evidence = _journeys(request), _evidence(request)
    item = call(lambda: journeys.queue_item(who.principal, task_id))
    files = call(lambda: evidence.files(who.principal, task_id))
    latest: dict[str, EvidenceFile] = {}
    for record in files:  # oldest first: the last one per field is the latest
        latest[record.field] = record
    values = context.pop("values", None) or {
        "outcome": "",
        **{
            f"evidence.{name}": latest[name].reference if name in latest else "" for name in item.task.evidence_required
        },
    }
    return render(
        request,
        "task.html.j2",
        who=who,
        item=item,
        task=item.task,
        files=files,
        values=values,
        stage_names={s.id: s.name for s in journeys.blueprint.stages},
        status=context.pop("status", 200),
        upload_errors=context.pop("upload_errors", {}),
        errors=context.pop("errors", {}),
        uploaded=context.pop("uploaded", None),
        completed=context.pop("completed", False),
        again=context.pop("again", False),
        upload_field=context.pop("upload_field", ""),
        max_mb=f"{evidence.max_bytes / 1_048_576:g}",
        **context,
    )


@router.get("/tasks/{task_id}")
def task(
    request: Request,
    task_id: str,
    who: Viewer = Depends(_stakeholder),  # noqa: B008
    uploaded: str = "",
    completed: int = 0,
    again: int = 0,
) -> HTMLResponse:
    return _task_page(request, who, task_id, uploaded=uploaded or None, completed=bool(completed), again=bool(again))


@router.post("/tasks/{task_id}/evidence")
async def post_evidence(request: Request, task_id: str, who: Viewer = Depends(_stakeholder)) -> Response:  # noqa: B008
    """Upload one evidence file; a refused file is named on the page with the reason."""
    form = await checked_form(request, who)
    evidence = _evidence(request)
    field = str(form.get("field") or "")
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors = {"file": ["file: choose a PDF, PNG or JPEG file to upload"]}
        return _task_page(request, who, task_id, upload_errors=errors, upload_field=field, status=422)
    try:
        content = await upload.read(evidence.max_bytes + 1)
    finally:
        await upload.close()
    try:
        record, created = call(lambda: evidence.upload(who.principal, task_id, field, upload.filename or "", content))
    except StateConflictError as exc:
        return _task_page(request, who, task_id, upload_errors={"form": [str(exc)]}, status=409)
    except JourneyError as exc:
        errors = {exc.field or "file": [str(exc)]}
        return _task_page(request, who, task_id, upload_errors=errors, upload_field=field, status=422)
    again = "" if created else "&again=1"
    return redirect(f"/work/tasks/{task_id}?uploaded={record.id}{again}")


@router.get("/tasks/{task_id}/evidence/{file_id}")
def evidence_file(request: Request, task_id: str, file_id: str, who: Viewer = Depends(_stakeholder)) -> Response:  # noqa: B008
    """An evidence file as the API serves it: its checked type, the platform's name, never cached."""
    evidence = _evidence(request)
    record, content = call(lambda: evidence.download(who.principal, task_id, file_id))
    return Response(
        content,
        media_type=record.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{record.download_name}"',
            "Cache-Control": "no-store",
            "X-Content-SHA256": record.sha256,
        },
    )


@router.post("/tasks/{task_id}/complete")
async def post_complete(request: Request, task_id: str, who: Viewer = Depends(_stakeholder)) -> Response:  # noqa: B008
    """Complete the task with the evidence and outcome of the form; refusals are shown by field."""
    form = await checked_form(request, who)
    evidence = _evidence(request)
    values = {k: str(v) for k, v in form.items() if k == "outcome" or k.startswith("evidence.")}
    given = {
        k.removeprefix("evidence."): v.strip() for k, v in values.items() if k.startswith("evidence.") and v.strip()
    }
    outcome = values.get("outcome") or None
    try:
        call(lambda: evidence.complete(who.principal, task_id, outcome=outcome, evidence=given))
    except StateConflictError as exc:
        return _task_page(request, who, task_id, values=values, errors={"form": [str(exc)]}, status=409)
    except JourneyError as exc:
        errors = {exc.field or "form": [str(exc)]}
        return _task_page(request, who, task_id, values=values, errors=errors, status=422)
    return redirect(f"/work/tasks/{task_id}?completed=1")
