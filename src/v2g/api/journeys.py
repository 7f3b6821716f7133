"""Journeys, tasks, auth, status tracker, pause/termination, export, KPIs and selection checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from v2g.api.deps import platform_of
from v2g.api.inputs import CheckedJsonRoute, StrictModel
from v2g.fleet.model import Charger, ChargerProtocol, Customer, FleetValueError, Site, Vehicle
from v2g.journey.eligibility import check_compatibility, compatibility_matrix, fuse_check
from v2g.journey.model import GateRefusedError, Journey, JourneyError, Task
from v2g.services.actors.auth import (
    AuthenticationError,
    hash_password,
    issue_token,
    login,
    principal_for_token,
    revoke_token,
)
from v2g.services.actors.login_guard import LoginBusyError, LoginThrottledError
from v2g.services.actors.ports import DuplicateError, ForbiddenError, GoneError, NotFoundError, Principal
from v2g.services.journey.export import to_jsonable
from v2g.services.journey.service import JourneyService
from v2g.services.journey.values import JourneyView, SignUp, StateConflictError

router = APIRouter(route_class=CheckedJsonRoute)
T = TypeVar("T")
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,54}$")]  # room for the prefixes of derived ids (org-owner-...)


# ------------------------------------------------------------------------------------ plumbing
def _service(request: Request) -> JourneyService:
    service: JourneyService | None = request.app.state.platform.journeys
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no blueprint loaded (V2G_BLUEPRINT_PATH)")
    return service


@contextmanager
def _errors() -> Iterator[None]:
    """Domain errors as HTTP answers: 401, 403, 404 (no leak), 409 (state, unmet gates), 422 (field)."""
    try:
        yield
    except AuthenticationError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
    except ForbiddenError as exc:
        raise HTTPException(403, str(exc)) from exc
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    except GoneError as exc:
        raise HTTPException(410, str(exc)) from exc
    except GateRefusedError as exc:
        raise HTTPException(409, {"message": str(exc).split(":")[0], "unmet": exc.unmet}) from exc
    except StateConflictError as exc:
        raise HTTPException(409, {"message": str(exc), "field": exc.field}) from exc
    except DuplicateError as exc:
        raise HTTPException(409, {"message": str(exc).split(":")[0], "field": None}) from exc
    except (JourneyError, FleetValueError, ValueError) as exc:
        field = getattr(exc, "field", None) or str(exc).split(":")[0]
        raise HTTPException(
            422, [{"loc": ["body", *field.split(".")], "msg": str(exc), "type": "value_error"}]
        ) from exc


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return authorization.split(" ", 1)[1].strip()


def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``."""
    service = _service(request)
    token = _bearer(authorization)
    with _errors(), service.uow() as repo:
        return principal_for_token(repo, token, now=service.clock.now())


Who = Annotated[Principal, Depends(principal)]
Svc = Annotated[JourneyService, Depends(_service)]


def _call(fn: Callable[[], T]) -> T:
    with _errors():
        return fn()


# ------------------------------------------------------------------------------------ models
class _In(StrictModel):
    """A request body: unknown fields and non-finite numbers are refused (422 naming the field)."""


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=1024)  # V2G_PASSWORD_MAX_CHARS sets the effective limit


class TokenOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"


class TokenIn(_In):
    label: str = Field(min_length=1, max_length=120)


class MeOut(BaseModel):
    user_id: str
    organisation_id: str
    role: str
    customer_id: str | None


class OwnerIn(_In):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    username: str | None = Field(default=None, min_length=3, max_length=120)
    password: str | None = Field(default=None, min_length=8, max_length=200)


class SiteIn(_In):
    address: str = Field(min_length=1, max_length=400)
    grid_area_id: Id
    main_fuse_a: int = Field(gt=0, le=400)
    phases: Literal[1, 3] = 3
    voltage_v: float = Field(default=230.0, gt=0, le=1000)
    household_peak_kw: float = Field(default=0.0, ge=0, le=1000)
    pv_kw: float = Field(default=0.0, ge=0, le=1000)
    has_bess: bool = False


class VehicleIn(_In):
    make: str = Field(min_length=1, max_length=100)
    model: str = Field(min_length=1, max_length=100)
    battery_kwh: float = Field(gt=0, le=1000)
    max_charge_kw: float = Field(ge=0, le=1000)
    max_discharge_kw: float = Field(ge=0, le=1000)


class ChargerIn(_In):
    id: Id
    vendor: str = Field(min_length=1, max_length=100)
    model: str = Field(min_length=1, max_length=100)
    protocol: ChargerProtocol
    max_charge_kw: float = Field(ge=0, le=1000)
    max_discharge_kw: float = Field(ge=0, le=1000)


class SignUpIn(_In):
    customer_id: Id
    owner: OwnerIn
    site: SiteIn
    vehicle: VehicleIn
    charger: ChargerIn | None = None
    offer: str = Field(min_length=1, max_length=120)
    serving_organisation_ids: list[Id] = Field(default_factory=list, description="Organisations serving the customer")


class TaskOut(BaseModel):
    id: str
    journey_id: str
    item_id: str
    stage_id: str
    actor_id: str
    role: str
    kind: str
    title: str
    service: str | None
    evidence_required: list[str]
    outcomes: list[str]
    status: str
    outcome: str | None
    evidence: dict[str, str]
    result: dict[str, Any]
    waiting_reason: str | None
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None


class JourneyOut(BaseModel):
    id: str
    customer_id: str
    blueprint_id: str
    stage_id: str
    status: str
    offer: str
    stage_entered_at: datetime
    created_at: datetime
    version: int
    paused_at: datetime | None
    terminated_at: datetime | None
    first_active_at: datetime | None


class JourneyDetailOut(JourneyOut):
    tasks: list[TaskOut]


class CompleteIn(_In):
    outcome: str | None = Field(default=None, max_length=64)
    evidence: dict[str, Annotated[str, Field(max_length=2000)]] = Field(default_factory=dict)


class AdvanceIn(_In):
    to_stage: str | None = None


class PauseIn(_In):
    reason: str = Field(default="", max_length=500)


class TerminateIn(_In):
    reasons: list[str] = Field(min_length=1)
    comment: str = Field(default="", max_length=2000)


class DeviceEventIn(_In):
    kind: Literal["boot", "test_profile_accepted"]
    detail: str = Field(default="", max_length=500)


class FuseCheckIn(_In):
    main_fuse_a: float = Field(gt=0, le=400)
    phases: Literal[1, 3] = 3
    voltage_v: float = Field(default=230.0, gt=0, le=1000)
    household_peak_kw: float = Field(ge=0, le=1000)
    pv_kw: float = Field(default=0.0, ge=0, le=1000)
    charger_current_a: float = Field(gt=0, le=500)
    charger_phases: Literal[1, 3] = 3


class CompatibilityIn(_In):
    make: str = Field(min_length=1)
    model: str = Field(min_length=1)
    wallbox_vendor: str | None = None
    wallbox_model: str | None = None


def _journey_out(journey: Journey) -> JourneyOut:
    return JourneyOut.model_validate(to_jsonable(journey))


def _task_out(task: Task) -> TaskOut:
    return TaskOut.model_validate(to_jsonable(task))


def _detail(view: JourneyView) -> JourneyDetailOut:
    return JourneyDetailOut.model_validate({**to_jsonable(view.journey), "tasks": [to_jsonable(t) for t in view.tasks]})


# ------------------------------------------------------------------------------------ auth
@router.post(
    "/auth/login",
    response_model=TokenOut,
    tags=["auth"],
    responses={
        401: {"description": "unknown username or wrong password"},
        429: {"description": "too many failed sign-ins for this account or address; see Retry-After"},
        503: {"description": "too many sign-ins at once; see Retry-After"},
    },
)
def post_login(body: LoginIn, request: Request, service: Svc) -> TokenOut:
    """Username and password -> a bearer token (valid V2G_LOGIN_TOKEN_TTL_MIN minutes, 12 h by default).

    Failed sign-ins are throttled per account and per client address with a growing wait (429 with
    ``Retry-After``); password checks running at once are bounded (503 with ``Retry-After``).
    """
    platform = platform_of(request)
    settings = platform.settings
    if len(body.password) > settings.password_max_chars:
        msg = f"password: at most {settings.password_max_chars} characters"
        raise HTTPException(422, [{"loc": ["body", "password"], "msg": msg, "type": "string_too_long"}])
    address = request.client.host if request.client else "unknown"
    ttl = timedelta(minutes=settings.login_token_ttl_min)

    def check() -> str:
        with service.uow() as repo:
            return login(repo, body.username, body.password, now=service.clock.now(), ttl=ttl)

    try:
        with _errors():
            return TokenOut(token=platform.login_guard.attempt(body.username, address, check))
    except LoginThrottledError as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from exc
    except LoginBusyError as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from exc


@router.post("/auth/logout", status_code=204, tags=["auth"])
def post_logout(who: Who, service: Svc, authorization: Annotated[str | None, Header()] = None) -> Response:
    """End the bearer token of this request: from now on it answers 401."""
    token = _bearer(authorization)
    with _errors(), service.uow() as repo:
        revoke_token(repo, token, who, now=service.clock.now())
    return Response(status_code=204)


@router.post("/auth/tokens", response_model=TokenOut, status_code=201, tags=["auth"])
def post_token(body: TokenIn, who: Who, request: Request, service: Svc) -> TokenOut:
    """An API token for the caller, valid V2G_API_TOKEN_TTL_DAYS (shown once; only its hash is stored)."""
    ttl = timedelta(days=platform_of(request).settings.api_token_ttl_days)
    with _errors(), service.uow() as repo:
        user = repo.user(who.user_id)
        assert user is not None
        return TokenOut(token=issue_token(repo, user, label=body.label, now=service.clock.now(), ttl=ttl))


@router.get("/me", response_model=MeOut, tags=["auth"])
def get_me(who: Who) -> MeOut:
    """Who the token belongs to."""
    return MeOut(user_id=who.user_id, organisation_id=who.organisation_id, role=who.role, customer_id=who.customer_id)


# ------------------------------------------------------------------------------------ journeys
@router.post("/customers", response_model=JourneyDetailOut, status_code=201, tags=["journeys"])
def post_customer(body: SignUpIn, who: Who, service: Svc) -> JourneyDetailOut:
    """Sign up an EV owner with site, vehicle and offer; this starts their journey (aggregator operators)."""

    def run() -> JourneyDetailOut:
        with service.uow() as repo:
            area = repo.grid_area(body.site.grid_area_id)
        if area is None:
            msg = f"site.grid_area_id: unknown grid area {body.site.grid_area_id!r}"
            raise JourneyError(msg, field="site.grid_area_id")
        cid = body.customer_id
        site = Site(f"site-{cid}", cid, price_area=area.price_area, **body.site.model_dump())
        vehicle = Vehicle(f"veh-{cid}", cid, site_id=site.id, **body.vehicle.model_dump())
        charger = Charger(site_id=site.id, **body.charger.model_dump()) if body.charger else None
        if (body.owner.username is None) != (body.owner.password is None):
            msg = "owner.password: username and password go together"
            raise JourneyError(msg, field="owner.password")
        signup = SignUp(
            customer=Customer(cid, body.owner.name, str(body.owner.email), service.clock.now(), body.owner.phone),
            site=site,
            vehicle=vehicle,
            offer=body.offer,
            charger=charger,
            serving_organisation_ids=tuple(body.serving_organisation_ids),
            owner_username=body.owner.username,
            owner_password_hash=hash_password(body.owner.password) if body.owner.password else None,
        )
        return _detail(service.sign_up(who, signup))

    return _call(run)


@router.get("/journeys", response_model=list[JourneyOut], tags=["journeys"])
def list_journeys(who: Who, service: Svc) -> list[JourneyOut]:
    """Journeys the caller may see: owners their own, DSOs those in their grid areas, others their customers'."""
    return [_journey_out(j) for j in _call(lambda: service.list_journeys(who))]


@router.get("/journeys/{journey_id}", response_model=JourneyDetailOut, tags=["journeys"])
def get_journey(journey_id: str, who: Who, service: Svc) -> JourneyDetailOut:
    return _detail(_call(lambda: service.get(who, journey_id)))


@router.get("/journeys/{journey_id}/tracker", tags=["journeys"])
def get_tracker(journey_id: str, who: Who, service: Svc) -> dict[str, Any]:
    """Status tracker: stage, SLA state and due date, next steps, who is waited on, DSO queue, go-live."""
    result: dict[str, Any] = to_jsonable(_call(lambda: service.tracker(who, journey_id)))
    return result


@router.post("/journeys/{journey_id}/advance", response_model=JourneyDetailOut, tags=["journeys"])
def post_advance(journey_id: str, body: AdvanceIn, who: Who, service: Svc) -> JourneyDetailOut:
    """Move to the next stage if its gates hold (409 lists the unmet conditions)."""
    return _detail(_call(lambda: service.advance(who, journey_id, body.to_stage)))


@router.post("/journeys/{journey_id}/pause", response_model=JourneyOut, tags=["journeys"])
def post_pause(journey_id: str, body: PauseIn, who: Who, service: Svc) -> JourneyOut:
    """Pause instead of cancel: the service stops, contract and data are kept."""
    return _journey_out(_call(lambda: service.pause(who, journey_id, body.reason)))


@router.post("/journeys/{journey_id}/resume", response_model=JourneyOut, tags=["journeys"])
def post_resume(journey_id: str, who: Who, service: Svc) -> JourneyOut:
    return _journey_out(_call(lambda: service.resume(who, journey_id)))


@router.get("/journeys/{journey_id}/retention-offers", tags=["journeys"])
def get_retention_offers(journey_id: str, who: Who, service: Svc) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = to_jsonable(list(_call(lambda: service.retention_offers(who, journey_id))))
    return result


@router.post("/journeys/{journey_id}/terminate", response_model=JourneyDetailOut, tags=["journeys"])
def post_terminate(journey_id: str, body: TerminateIn, who: Who, service: Svc) -> JourneyDetailOut:
    """Run the termination stage; ``reasons`` are the exit reasons of the blueprint's facts row."""
    return _detail(_call(lambda: service.terminate(who, journey_id, body.reasons, body.comment)))


@router.get(
    "/journeys/{journey_id}/export",
    tags=["journeys"],
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def get_export(journey_id: str, who: Who, service: Svc) -> Response:
    """The customer's complete data export: a zip of JSON and CSV files."""
    data = _call(lambda: service.export(who, journey_id))
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="v2g-export-{journey_id}.zip"'},
    )


@router.get("/journeys/{journey_id}/audit", tags=["journeys"])
def get_audit(journey_id: str, who: Who, service: Svc) -> list[dict[str, Any]]:
    """The journey's append-only audit log (aggregator operators)."""
    result: list[dict[str, Any]] = to_jsonable(_call(lambda: service.audit_log(who, journey_id)))
    return result


@router.get("/journeys/{journey_id}/notifications", tags=["journeys"])
def get_notifications(journey_id: str, who: Who, service: Svc) -> list[dict[str, Any]]:
    """Outbox messages of the journey addressed to the caller."""
    result: list[dict[str, Any]] = to_jsonable(_call(lambda: service.notifications(who, journey_id)))
    return result


# ------------------------------------------------------------------------------------ tasks
@router.get("/tasks", response_model=list[TaskOut], tags=["tasks"])
def list_tasks(who: Who, service: Svc, include_done: bool = False) -> list[TaskOut]:
    """The caller's role's tasks for the customers the caller serves."""
    return [_task_out(t) for t in _call(lambda: service.my_tasks(who, include_done=include_done))]


@router.post("/tasks/{task_id}/complete", response_model=JourneyDetailOut, tags=["tasks"])
def post_complete(task_id: str, body: CompleteIn, who: Who, request: Request) -> JourneyDetailOut:
    """Complete a task with the evidence (and outcome) the blueprint asks for; an evidence value naming
    an uploaded file (``file:<id> sha256:<hash>``) must be a file of this task and field."""
    evidence = platform_of(request).task_evidence
    if evidence is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no blueprint loaded (V2G_BLUEPRINT_PATH)")
    return _detail(_call(lambda: evidence.complete(who, task_id, outcome=body.outcome, evidence=body.evidence)))


class SecretOut(BaseModel):
    task_id: str
    subject: str
    label: str
    secret: str


@router.get(
    "/tasks/{task_id}/secret",
    response_model=SecretOut,
    tags=["tasks"],
    responses={404: {"description": "no secret for your organisation"}, 410: {"description": "already retrieved"}},
)
def get_task_secret(task_id: str, who: Who, service: Svc, response: Response) -> SecretOut:
    """The secret a task issued to the caller's organisation (a charger's OCPP password for the
    installer), answered once; afterwards 410. It is never sent by message or kept in an export."""
    secret = _call(lambda: service.take_secret(who, task_id))
    response.headers["Cache-Control"] = "no-store"
    assert secret.value is not None
    return SecretOut(task_id=secret.task_id, subject=secret.subject, label=secret.label, secret=secret.value)


@router.post("/chargers/{charger_id}/events", response_model=JourneyOut | None, tags=["tasks"])
def post_device_event(charger_id: str, body: DeviceEventIn, who: Who, service: Svc) -> JourneyOut | None:
    """A device report (first boot, accepted test profile) that ``verify_connectivity`` waits for."""
    journey = _call(lambda: service.record_device_event(charger_id, body.kind, body.detail, who=who))
    return _journey_out(journey) if journey else None


# ------------------------------------------------------------------------------------ KPIs, checks
@router.get("/kpis", tags=["kpis"])
def get_kpis(who: Who, service: Svc) -> dict[str, Any]:
    """The facts/metrics KPIs over the caller's customers' journeys."""
    return _call(lambda: service.kpis(who))


@router.get("/eligibility/matrix", tags=["eligibility"])
def get_matrix(who: Who) -> list[dict[str, Any]]:
    """Pre-qualified EV models x certified wallboxes."""
    result: list[dict[str, Any]] = to_jsonable(compatibility_matrix())
    return result


@router.post("/eligibility/compatibility", tags=["eligibility"])
def post_compatibility(body: CompatibilityIn, who: Who) -> dict[str, Any]:
    result: dict[str, Any] = to_jsonable(
        check_compatibility(body.make, body.model, body.wallbox_vendor, body.wallbox_model)
    )
    return result


@router.post("/eligibility/fuse-check", tags=["eligibility"])
def post_fuse_check(body: FuseCheckIn, who: Who, service: Svc) -> dict[str, Any]:
    """Safe charge and discharge current per phase at the main fuse."""
    result: dict[str, Any] = to_jsonable(_call(lambda: fuse_check(**body.model_dump(), rules=service.rules)))
    return result
