"""The owner's pages: value indication and status tracker, charging schedule, earnings and costs with the
monthly statements, and pause, resume, termination and the data export.

Every figure and every change goes through the same use cases as the API (the journey service, the
preferences service, the settlement reports, the value indicator), with the caller's principal, so
the services' role and organisation rules decide what an owner sees: their own EVs, statements and
journey only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from v2g.fleet.model import Charger, Site, Vehicle
from v2g.fleet.preferences import PreferencesError
from v2g.journey.model import Journey, JourneyError
from v2g.services.journey.service import JourneyService
from v2g.services.planning.ports import PreferencesConflictError
from v2g.services.planning.preferences import DAY_KEYS, PreferencesService
from v2g.services.settlement.access import require_owner_data
from v2g.services.settlement.reports import SettlementNotFoundError, SettlementReports
from v2g.settlement.money import SettlementInputError
from v2g.settlement.periods import SettlementPeriod
from v2g.settlement.statement import render_statement_html
from v2g.units import STOCKHOLM
from v2g.web.base import (
    PortalError,
    Viewer,
    call,
    checked_form,
    platform_of,
    redirect,
    render,
    require_role,
    service_errors,
    viewer,
)

router = APIRouter(prefix="/owner", include_in_schema=False)


@dataclass(frozen=True, slots=True)
class OwnedEv:
    vehicle: Vehicle
    site: Site
    charger: Charger | None


def _owner(who: Viewer = Depends(viewer)) -> Viewer:  # noqa: B008 - FastAPI dependency
    require_role(who, "owner")
    return who


def _journeys(request: Request) -> JourneyService:
    service = platform_of(request).journeys
    if service is None:
        raise PortalError(503, "not_found_title", "the platform has no journey service (no blueprint loaded)")
    return service


def _preferences(request: Request) -> PreferencesService:
    service = platform_of(request).preferences
    if service is None:
        raise PortalError(503, "not_found_title", "owner preferences are not configured")
    return service


def _evs(request: Request, who: Viewer) -> list[OwnedEv]:
    files = call(lambda: _journeys(request).customer_files(who.principal))
    out = []
    for file in files:
        sites = {s.id: s for s in file.sites}
        for vehicle in file.vehicles:
            site = sites.get(vehicle.site_id or "") or (file.sites[0] if file.sites else None)
            if site is None:
                continue
            charger = next((c for c in file.chargers if c.site_id == site.id), None)
            out.append(OwnedEv(vehicle, site, charger))
    return out


def _journey(request: Request, who: Viewer) -> Journey | None:
    journeys = call(lambda: _journeys(request).list_journeys(who.principal))
    return journeys[0] if journeys else None


# ------------------------------------------------------------------------------------ overview
@router.get("")
def overview(request: Request, who: Viewer = Depends(_owner)) -> HTMLResponse:  # noqa: B008
    """The quick value indication of each EV (under the owner's offer) and the status tracker of the journey."""
    value = platform_of(request).value
    journey = _journey(request, who)
    indications = []
    for ev in _evs(request, who):
        if value is not None:
            # the offer on the owner's contract when it is one of the offers the indication knows
            offer = journey.offer if journey and journey.offer in {o.id for o in value.offers.offers} else None
            with service_errors():
                indications.append((ev, value.for_ev(who.principal, ev.vehicle, ev.site, ev.charger, offer)))
    tracker = call(lambda: _journeys(request).tracker(who.principal, journey.id)) if journey else None
    return render(request, "owner_home.html.j2", who=who, indications=indications, journey=journey, tracker=tracker)


# ------------------------------------------------------------------------------------ schedule
def _form_values(view_json: dict[str, Any]) -> dict[str, Any]:
    """The stored preferences as the form's fields (local times for people in Sweden)."""
    until = view_json.get("charge_now_until")
    local_until = datetime.fromisoformat(until).astimezone(STOCKHOLM).strftime("%Y-%m-%dT%H:%M") if until else ""
    values: dict[str, Any] = {f"dep_{day}": view_json["departures"][day] or "" for day in DAY_KEYS}
    values |= {
        "target_soc_percent": f"{view_json['target_soc_percent']:g}",
        "min_soc_percent": f"{view_json['min_soc_percent']:g}",
        "charge_now_until": local_until,
        "opt_out_today": bool(view_json["opt_out_today"]),
        "version": "" if view_json["version"] is None else str(view_json["version"]),
    }
    return values


def _number(text: object) -> object:
    """A form number as a number; anything else is passed on for the use case to name."""
    raw = str(text or "").strip()
    if not raw:
        return None
    try:
        return float(raw.replace(",", "."))
    except ValueError:
        return raw


def _local_datetime(text: object) -> object:
    """A ``datetime-local`` value (Swedish time) as ISO 8601 with its offset; anything else passed on."""
    raw = str(text or "").strip()
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=STOCKHOLM).isoformat()
    except ValueError:
        return raw


def _preferences_data(form: dict[str, Any]) -> dict[str, Any]:
    departures = {day: (str(form.get(f"dep_{day}") or "").strip() or None) for day in DAY_KEYS}
    return {
        "departures": departures,
        "target_soc_percent": _number(form.get("target_soc_percent")),
        "min_soc_percent": _number(form.get("min_soc_percent")),
        "charge_now_until": _local_datetime(form.get("charge_now_until")),
        "opt_out_today": form.get("opt_out_today") == "on",
    }


def _field_errors(problems: Sequence[str]) -> dict[str, list[str]]:
    """The use case's problems by form field (``departures.mon`` is the field ``dep_mon``)."""
    out: dict[str, list[str]] = {}
    for problem in problems:
        name = problem.split(":", 1)[0].strip()
        field = "dep_" + name.split(".", 1)[1] if name.startswith("departures.") else name
        out.setdefault(field, []).append(problem)
    return out


@router.get("/schedule")
def schedule_first(request: Request, who: Viewer = Depends(_owner)) -> Response:  # noqa: B008
    evs = _evs(request, who)
    if not evs:
        raise PortalError(404, "not_found_title", "no EV of yours is on record")
    return redirect(f"/owner/schedule/{evs[0].vehicle.id}")


def _schedule_page(
    request: Request, who: Viewer, ev_id: str, *, values: dict[str, Any] | None = None, **context: Any
) -> HTMLResponse:
    context = {"saved": False, "stale": False, **context}
    prefs = _preferences(request)
    view = call(lambda: prefs.get(who.principal, ev_id))
    stored = view.to_json(prefs.clock.now())
    evs = _evs(request, who)
    car = next((f"{e.vehicle.make} {e.vehicle.model}" for e in evs if e.vehicle.id == ev_id), ev_id)
    return render(
        request,
        "schedule.html.j2",
        who=who,
        ev_id=ev_id,
        car=car,
        evs=evs,
        days=DAY_KEYS,
        values=values or _form_values(stored),
        is_default=view.is_default,
        status=context.pop("status", 200),
        errors=context.pop("errors", {}),
        **context,
    )


@router.get("/schedule/{ev_id}")
def schedule(request: Request, ev_id: str, who: Viewer = Depends(_owner), saved: int = 0) -> HTMLResponse:  # noqa: B008
    return _schedule_page(request, who, ev_id, saved=bool(saved))


@router.post("/schedule/{ev_id}")
async def post_schedule(request: Request, ev_id: str, who: Viewer = Depends(_owner)) -> Response:  # noqa: B008
    """Change the settings through the preferences use case; bad fields are shown next to each field."""
    form = await checked_form(request, who)
    prefs = _preferences(request)
    version_text = str(form.get("version") or "").strip()
    version = int(version_text) if version_text.isdigit() else None
    try:
        call(lambda: prefs.update(who.principal, ev_id, _preferences_data(form), version))
    except PreferencesError as exc:
        values = {k: form.get(k, "") for k in (*(f"dep_{d}" for d in DAY_KEYS), "target_soc_percent")}
        values |= {
            "min_soc_percent": form.get("min_soc_percent", ""),
            "charge_now_until": form.get("charge_now_until", ""),
            "opt_out_today": form.get("opt_out_today") == "on",
            "version": version_text,
        }
        return _schedule_page(request, who, ev_id, values=values, errors=_field_errors(exc.problems), status=422)
    except PreferencesConflictError:
        return _schedule_page(request, who, ev_id, stale=True, status=409)
    return redirect(f"/owner/schedule/{ev_id}?saved=1")


# ------------------------------------------------------------------------------------ earnings
def _reports(request: Request) -> SettlementReports:
    reports = platform_of(request).settlement_reports
    if reports is None:
        raise PortalError(503, "not_found_title", "the platform has no settlement reports")
    return reports


def _customer(who: Viewer) -> str:
    if who.principal.customer_id is None:
        raise PortalError(404, "not_found_title", "your user names no customer")
    return who.principal.customer_id


@router.get("/earnings")
def earnings(request: Request, who: Viewer = Depends(_owner)) -> HTMLResponse:  # noqa: B008
    """Earnings and costs per settled month, each with its monthly statement."""
    customer_id = _customer(who)
    journeys = platform_of(request).journeys
    call(lambda: require_owner_data(who.principal, customer_id, journeys, "ledger"))
    reports = _reports(request)
    months = [reports.owner_statement(customer_id, period) for period in reports.owner_periods(customer_id)]
    return render(request, "earnings.html.j2", who=who, months=months)


@router.get("/statements/{period}")
def statement(request: Request, period: str, who: Viewer = Depends(_owner)) -> HTMLResponse:  # noqa: B008
    """The monthly statement as the settlement service renders it."""
    customer_id = _customer(who)
    try:
        month = SettlementPeriod.parse(period)
    except SettlementInputError as exc:
        raise PortalError(404, "not_found_title", str(exc)) from exc
    journeys = platform_of(request).journeys
    call(lambda: require_owner_data(who.principal, customer_id, journeys, f"statement for {month}"))
    try:
        document = _reports(request).owner_statement(customer_id, month)
    except SettlementNotFoundError as exc:
        raise PortalError(404, "not_found_title", f"statement for {month} not found") from exc
    return HTMLResponse(render_statement_html(document))


# ------------------------------------------------------------------------------------ the service
def _service_page(request: Request, who: Viewer, **context: Any) -> HTMLResponse:
    context = {"done": "", **context}
    journey = _journey(request, who)
    reasons = sorted(_journeys(request).exit_reasons())
    pausable = journey is not None and journey.stage_id in _journeys(request).rules.pausable_stages
    return render(
        request,
        "service.html.j2",
        who=who,
        journey=journey,
        reasons=reasons,
        pausable=pausable,
        status=context.pop("status", 200),
        errors=context.pop("errors", {}),
        **context,
    )


@router.get("/service")
def service(request: Request, who: Viewer = Depends(_owner), done: str = "") -> HTMLResponse:  # noqa: B008
    return _service_page(request, who, done=done if done in ("pause", "resume", "terminate") else "")


def _own_journey(request: Request, who: Viewer) -> Journey:
    journey = _journey(request, who)
    if journey is None:
        raise PortalError(404, "not_found_title", "you have no service on record")
    return journey


@router.post("/service/{action}")
async def post_service(request: Request, action: str, who: Viewer = Depends(_owner)) -> Response:  # noqa: B008
    """Pause, resume or end the service through the journey use cases."""
    form = await checked_form(request, who)
    journeys = _journeys(request)
    journey = _own_journey(request, who)
    try:
        if action == "pause":
            call(lambda: journeys.pause(who.principal, journey.id, str(form.get("reason") or "")[:500]))
        elif action == "resume":
            call(lambda: journeys.resume(who.principal, journey.id))
        elif action == "terminate":
            raw = form.get("reasons", [])
            reasons = [raw] if isinstance(raw, str) else list(raw)
            comment = str(form.get("comment") or "")[:2000]
            call(lambda: journeys.terminate(who.principal, journey.id, reasons, comment))
        else:
            raise PortalError(404, "not_found_title", f"no action {action!r}")
    except JourneyError as exc:
        field = getattr(exc, "field", None) or "form"
        return _service_page(request, who, errors={field: [str(exc)]}, status=422)
    return redirect(f"/owner/service?done={action}")


@router.get("/export")
def export(request: Request, who: Viewer = Depends(_owner)) -> Response:  # noqa: B008
    """The journey export the API serves: a zip of JSON and CSV files."""
    journey = _own_journey(request, who)
    data = call(lambda: _journeys(request).export(who.principal, journey.id))
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="v2g-export-{journey.id}.zip"',
            "Cache-Control": "no-store",
        },
    )
