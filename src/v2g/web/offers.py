"""The owner's offer comparison and the plain-language contract summary.

``/owner/offers`` shows, for each of the owner's EVs, every service configuration side by side: the
value indication under it (low, expected, high and its terms), what the owner commits to and what
they are paid. ``/owner/contract`` is the contract's key terms in plain words with the figures of
the owner's own contract and settings. Both come from the offer comparison use case, with the
caller's principal, exactly as the API answers them.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from v2g.services.planning.offers import OfferComparison
from v2g.settlement.money import SettlementInputError
from v2g.web.base import PortalError, Viewer, call, platform_of, render, require_role, viewer

router = APIRouter(prefix="/owner", include_in_schema=False)

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _owner(who: Viewer = Depends(viewer)) -> Viewer:  # noqa: B008 - FastAPI dependency
    require_role(who, "owner")
    return who


def _comparison(request: Request) -> OfferComparison:
    service = platform_of(request).offers
    if service is None:
        raise PortalError(503, "not_found_title", "the offer comparison is not configured (no journey service)")
    return service


def _cars(who: Viewer, service: OfferComparison) -> list[tuple[str, str]]:
    """The owner's EVs as (id, make and model)."""
    return [(e.vehicle.id, f"{e.vehicle.make} {e.vehicle.model}") for e in call(lambda: service.evs(who.principal))]


@router.get("/offers")
def offers(request: Request, who: Viewer = Depends(_owner)) -> HTMLResponse:  # noqa: B008
    """Every offer for each of the owner's EVs, with its indication, commitments and pay."""
    service = _comparison(request)
    compared = []
    for ev_id, car in _cars(who, service):
        compared.append((car, call(partial(service.compare, who.principal, ev_id))))
    return render(request, "offers.html.j2", who=who, compared=compared)


@router.get("/contract")
def contract(request: Request, offer: str | None = None, who: Viewer = Depends(_owner)) -> HTMLResponse:  # noqa: B008
    """The contract's key terms in plain words, with the owner's own figures."""
    service = _comparison(request)
    ev_ids = [ev_id for ev_id, _ in _cars(who, service)]
    if not ev_ids:
        raise PortalError(404, "not_found_title", "no EV of yours is on record")
    try:
        facts = call(lambda: service.contract(who.principal, ev_ids[0], offer))
    except SettlementInputError as exc:
        raise PortalError(404, "not_found_title", str(exc)) from exc
    departures = [
        (day, clock.strftime("%H:%M")) for day, clock in zip(WEEKDAY_KEYS, facts.departures, strict=True) if clock
    ]
    clocks = set(facts.departures)
    every_day = departures[0][1] if len(clocks) == 1 and departures else None
    return render(request, "contract.html.j2", who=who, facts=facts, departures=departures, every_day=every_day)
