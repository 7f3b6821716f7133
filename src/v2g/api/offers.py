"""The offers an owner can choose for an EV, compared, and the figures of the contract summary.

``GET /evs/{ev_id}/offers`` answers every offer with the value indication of the EV under it (low,
expected and high per year and per term, the assumptions with their sources), what the owner
commits to and what they are paid. ``GET /evs/{ev_id}/contract`` answers the contract's key
figures (revenue share, wear allowance, fee, notice and withdrawal periods, records kept, the
owner's departures and SoC limits), each with its source. Owners see their own EVs, aggregator
operators their customers'; an EV the caller may not see is answered 404, an unknown offer 422.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from v2g.api.journeys import Who, _errors
from v2g.services.planning.offers import ContractFacts, OfferComparison, OfferView
from v2g.settlement.money import SettlementInputError
from v2g.settlement.tariffs import DatedValue

router = APIRouter(prefix="/evs", tags=["offers"])


def _service(request: Request) -> OfferComparison:
    service: OfferComparison | None = getattr(request.app.state.platform, "offers", None)
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the offer comparison is not configured")
    return service


Offers = Annotated[OfferComparison, Depends(_service)]


def _money(value: Decimal) -> str:
    return str(value)


def _view(view: OfferView) -> dict[str, Any]:
    ind = view.indication
    c = view.commitments
    return {
        "offer": view.offer.id,
        "current": view.current,
        "strategy": view.offer.strategy.value,
        "reserve_products": [p.value for p in view.offer.reserve_products],
        "indication": {
            "low_sek_per_year": _money(ind.low_sek_per_year),
            "expected_sek_per_year": _money(ind.expected_sek_per_year),
            "high_sek_per_year": _money(ind.high_sek_per_year),
            "terms": [
                {
                    "term": t.key,
                    "low_sek": _money(t.low_sek),
                    "expected_sek": _money(t.expected_sek),
                    "high_sek": _money(t.high_sek),
                    "basis": t.basis,
                }
                for t in ind.terms
            ],
            "plugged_in_nights_per_year": [str(n) for n in ind.nights_per_year],
            "pool_reserve_eur_per_year": _money(ind.pool_reserve_eur_per_year),
            "nights_sampled": len(ind.nights),
            "v2g": ind.v2g,
            "assumptions": [{"name": n, "text": text} for n, text in ind.assumptions],
            "price_sources": list(ind.price_sources),
        },
        "commitments": {
            "nights_per_week": c.nights_per_week,
            "plug_in": c.plug_in,
            "reserve_from_local": c.reserve_from_local.strftime("%H:%M") if c.reserve_from_local else None,
            "reserve_until_before_departure_h": (
                str(c.reserve_until_before_departure_h) if c.reserve_until_before_departure_h is not None else None
            ),
            "target_soc_percent": c.target_soc_percent,
            "min_soc_percent": c.min_soc_percent,
        },
        "owner_share": str(view.owner_share),
        "wear_allowance_ore_per_kwh": str(view.wear_allowance_ore_per_kwh),
        "fixed_fee_sek_per_month": str(view.fixed_fee_sek_per_month),
    }


def _dated(entry: DatedValue) -> dict[str, Any]:
    return {
        "value": str(entry.value),
        "valid_from": entry.valid_from.isoformat(),
        "confidence": entry.confidence.value,
        "source": entry.source,
    }


def _facts(facts: ContractFacts) -> dict[str, Any]:
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return {
        "offer": facts.offer_id,
        "owner_share": _dated(facts.owner_share),
        "wear_allowance_ore_per_kwh": _dated(facts.wear_allowance_ore_per_kwh),
        "fixed_fee_sek_per_month": _dated(facts.fixed_fee_sek_per_month),
        "notice_period_days": _dated(facts.notice_period_days),
        "withdrawal_days": _dated(facts.withdrawal_days),
        "records_kept_years": _dated(facts.records_kept_years),
        "departures": {d: c.strftime("%H:%M") if c else None for d, c in zip(days, facts.departures, strict=True)},
        "target_soc_percent": facts.target_soc_percent,
        "min_soc_percent": facts.min_soc_percent,
        "discharges": facts.discharges,
        "reserve_from_local": facts.reserve_from_local.strftime("%H:%M"),
    }


@router.get("/{ev_id}/offers")
def get_offers(ev_id: str, who: Who, service: Offers) -> list[dict[str, Any]]:
    """Every offer for the EV with its value indication, the owner's commitments and pay."""
    with _errors():
        return [_view(v) for v in service.compare(who, ev_id)]


@router.get("/{ev_id}/contract")
def get_contract(
    ev_id: str,
    who: Who,
    service: Offers,
    offer: Annotated[str | None, Query(max_length=120, description="an offer id (default: the owner's)")] = None,
) -> dict[str, Any]:
    """The contract's key figures for the EV under ``offer``, each with its source."""
    with _errors():
        try:
            return _facts(service.contract(who, ev_id, offer))
        except SettlementInputError as exc:
            raise HTTPException(422, [{"loc": ["query", "offer"], "msg": str(exc), "type": "value_error"}]) from exc
