"""The owner's charging preferences per EV: departures per weekday, target and minimum SoC, charge now, opt-out.

An owner reads and changes the preferences of their own EVs, an aggregator operator those of the
customers its organisation serves. Other roles get 403; an EV the caller may not see is answered
404 like an unknown one. A change names the ``version`` it is based on (``null`` while only the
defaults apply); a stale version is answered 409. Bad values are answered 422 with one entry per
field. The next planning cycle plans the EV with the new values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from v2g.api.inputs import CheckedJsonRoute
from v2g.api.journeys import Who, _errors
from v2g.fleet.preferences import PreferencesError
from v2g.services.planning.ports import PreferencesConflictError
from v2g.services.planning.preferences import PreferencesService

router = APIRouter(prefix="/evs", tags=["preferences"], route_class=CheckedJsonRoute)


def _service(request: Request) -> PreferencesService:
    service: PreferencesService | None = getattr(request.app.state.platform, "preferences", None)
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "owner preferences are not configured")
    return service


Prefs = Annotated[PreferencesService, Depends(_service)]


@contextmanager
def _answers() -> Iterator[None]:
    """Per-field 422 for bad preferences, 409 for a stale version, then the journey API's answers."""
    with _errors():
        try:
            yield
        except PreferencesError as exc:
            detail = [
                {"loc": ["body", *p.split(":", 1)[0].split(".")], "msg": p, "type": "value_error"} for p in exc.problems
            ]
            raise HTTPException(422, detail) from exc
        except PreferencesConflictError as exc:
            raise HTTPException(
                409, {"message": str(exc), "field": "version", "stored_version": exc.stored_version}
            ) from exc


def _loose(description: str, json_type: list[JsonValue], example: JsonValue) -> Any:
    """A body field checked by the service (so every bad field is reported together), documented by type."""
    return Field(default=None, description=description, json_schema_extra={"type": json_type, "examples": [example]})


class PreferencesIn(BaseModel):
    """The new settings; an omitted setting takes the platform default."""

    model_config = ConfigDict(extra="allow")

    version: int | None = Field(
        default=None, description="The version read with GET (null while the defaults apply); stale -> 409"
    )
    departures: Any = _loose(
        "Departure per weekday, Swedish local time: {'mon': '07:00', ..., 'sun': null}; "
        "an omitted day departs at 07:00, null = no departure that day",
        ["object", "null"],
        {"mon": "07:30", "sat": None, "sun": None},
    )
    target_soc_percent: Any = _loose("State of charge to reach by departure (default 80)", ["number", "null"], 80)
    min_soc_percent: Any = _loose("Never discharge below this (default 20)", ["number", "null"], 20)
    charge_now_until: Any = _loose(
        "Charge at full power, no V2G, until this time (ISO 8601 with offset, at most 48 h ahead)",
        ["string", "null"],
        "2026-11-02T18:00:00+01:00",
    )
    opt_out_today: Any = _loose("No V2G today (Swedish local date)", ["boolean", "null"], False)
    opt_out_on: Any = _loose("No V2G on this local date (YYYY-MM-DD)", ["string", "null"], None)


@router.get("/{ev_id}/preferences")
def get_preferences(ev_id: str, who: Who, service: Prefs) -> dict[str, Any]:
    """The EV's preferences, or the platform defaults (``is_default``) while the owner has set none."""
    with _answers():
        return service.get(who, ev_id).to_json(service.clock.now())


@router.put("/{ev_id}/preferences")
def put_preferences(ev_id: str, body: PreferencesIn, who: Who, service: Prefs) -> dict[str, Any]:
    """Replace the EV's preferences; the next planning cycle uses them."""
    data = body.model_dump(exclude={"version"}, exclude_unset=True)
    with _answers():
        return service.update(who, ev_id, data, body.version).to_json(service.clock.now())
