"""Chargers: latest state of charger and EV, telemetry history, transactions (read-only).

Access follows the journey engine's visibility: an owner sees the chargers at their own sites;
organisations (aggregator, installer, EVSE supplier, DSO, ...) see the chargers of the customers
they serve (a DSO also those in its grid areas). Anything else is answered 404, without telling
whether the charger exists.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from v2g.api.deps import Devices
from v2g.api.inputs import CheckedJsonRoute, UtcDatetime
from v2g.api.journeys import Svc, Who, _errors
from v2g.services.actors.ports import NotFoundError, Principal
from v2g.services.journey.service import JourneyService

router = APIRouter(prefix="/chargers", tags=["chargers"], route_class=CheckedJsonRoute)


def _require_visible(service: JourneyService, who: Principal, charger_id: str) -> None:
    with _errors(), service.uow() as repo:
        owner = repo.charger_owner(charger_id)
        visible = service.visible_customers(repo, who)
        if owner is None or (visible is not None and owner not in visible):
            msg = f"charger {charger_id!r} not found"
            raise NotFoundError(msg)


@router.get("/{charger_id}/state")
def get_state(charger_id: str, store: Devices, who: Who, service: Svc) -> dict[str, Any]:
    """Connection, last profile answer, power, state of charge, meters and the EV's latest needs."""
    _require_visible(service, who, charger_id)
    with _errors():
        return store.state(charger_id)


@router.get("/{charger_id}/telemetry")
def get_telemetry(
    charger_id: str,
    store: Devices,
    who: Who,
    service: Svc,
    measurand: Annotated[str | None, Query(description="e.g. Power.Active.Import, SoC")] = None,
    since: Annotated[UtcDatetime | None, Query(description="inclusive, ISO 8601 with offset")] = None,
    until: Annotated[UtcDatetime | None, Query(description="exclusive, ISO 8601 with offset")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    """Meter readings of one charger, oldest first."""
    _require_visible(service, who, charger_id)
    with _errors():
        rows = store.telemetry(
            charger_id,
            measurand=measurand,
            since=since,
            until=until,
            limit=limit,
        )
    return [
        {
            "evse_id": r.evse_id,
            "measurand": r.measurand,
            "measured_at": r.measured_at,
            "value": r.value,
            "unit": r.unit,
            "transaction_id": r.transaction_id,
        }
        for r in rows
    ]


@router.get("/{charger_id}/transactions")
def get_transactions(charger_id: str, store: Devices, who: Who, service: Svc) -> list[dict[str, Any]]:
    """Charging sessions with start/stop meters, sequence gaps and offline-delivered events."""
    _require_visible(service, who, charger_id)
    with _errors():
        return store.transactions(charger_id)
