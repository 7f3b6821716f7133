"""The offer comparison and the contract's key terms for an owner's EV.

For each service configuration in ``offers.yaml`` (smart charging only, charge-only reserves, V2G
with spot and reserves) the owner sees the value indication of their own EV under it, what they
commit to (nights plugged in, the hours the pool may bid the car, the SoC kept) and what they are
paid (their share of reserve revenue, the wear allowance, a fixed fee). The contract summary gives
the figures the plain-language summary quotes, each with its source. Who may ask is decided as for
the indication: owners their own EVs, aggregator operators their customers'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal

from v2g.fleet.model import Charger, Site, Vehicle
from v2g.services.actors.ports import NotFoundError, Principal
from v2g.services.journey.service import JourneyService
from v2g.services.planning.value import DEFAULT_OFFER, ValueIndication, ValueIndicator
from v2g.settlement.offers import Offer
from v2g.settlement.tariffs import DatedValue
from v2g.units import to_local


@dataclass(frozen=True, slots=True)
class OwnedEv:
    """An EV ``who`` may see, with its site, its charger and the customer it belongs to."""

    vehicle: Vehicle
    site: Site
    charger: Charger | None
    customer_id: str


OwnedEvs = Callable[[Principal], Sequence[OwnedEv]]
"""The EVs ``who`` may see (the journey service's customer files)."""
CurrentOffer = Callable[[Principal, str], str | None]
"""The offer on the contract of a customer ``who`` may see: (who, customer id) -> offer id."""


@dataclass(frozen=True, slots=True)
class Commitments:
    """What the owner commits to under an offer."""

    nights_per_week: int  # nights before a departure in the owner's settings
    plug_in: bool  # the offer needs the car plugged in on those nights
    reserve_from_local: time | None  # the pool may bid the car from this time ...
    reserve_until_before_departure_h: Decimal | None  # ... until this long before each departure
    target_soc_percent: float  # reached by every departure
    min_soc_percent: float | None  # never discharged below (None: the offer never discharges)


@dataclass(frozen=True, slots=True)
class OfferView:
    """One offer for one EV: its indication, the commitments and the owner's pay."""

    offer: Offer
    indication: ValueIndication
    commitments: Commitments
    owner_share: Decimal  # of the reserve revenue
    wear_allowance_ore_per_kwh: Decimal
    fixed_fee_sek_per_month: Decimal
    current: bool  # the offer on the owner's contract


@dataclass(frozen=True, slots=True)
class ContractFacts:
    """The figures the plain-language contract summary quotes, each with its source."""

    offer_id: str
    owner_share: DatedValue
    wear_allowance_ore_per_kwh: DatedValue
    fixed_fee_sek_per_month: DatedValue
    notice_period_days: DatedValue
    withdrawal_days: DatedValue
    records_kept_years: DatedValue
    departures: tuple[time | None, ...]
    target_soc_percent: float
    min_soc_percent: float
    discharges: bool
    reserve_from_local: time


class OfferComparison:
    """Compares the offers for an owner's EV and gathers the contract's figures."""

    def __init__(self, value: ValueIndicator, evs: OwnedEvs, current_offer: CurrentOffer) -> None:
        self.value = value
        self.evs = evs
        self.current_offer = current_offer

    def _ev(self, who: Principal, ev_id: str) -> OwnedEv:
        for ev in self.evs(who):
            if ev.vehicle.id == ev_id:
                return ev
        msg = f"ev_id: no EV {ev_id!r} of yours is on record"
        raise NotFoundError(msg)

    def _current(self, who: Principal, ev: OwnedEv) -> str | None:
        """The offer on the EV's customer's contract, when it is one of the offers in ``offers.yaml``."""
        current = self.current_offer(who, ev.customer_id)
        return current if current in {o.id for o in self.value.offers.offers} else None

    def _today(self) -> date:
        return to_local(self.value.clock.now()).date()

    def compare(self, who: Principal, ev_id: str) -> tuple[OfferView, ...]:
        """Every offer for the EV ``ev_id``, in the order of ``offers.yaml``."""
        ev = self._ev(who, ev_id)
        prefs = self.value.preferences.get(who, ev_id).preferences
        today = self._today()
        book, tariffs = self.value.offers, self.value.tariffs
        current = self._current(who, ev)
        out = []
        for offer in book.offers:
            indication = self.value.for_ev(who, ev.vehicle, ev.site, ev.charger, offer=offer.id)
            reserves = bool(offer.reserve_products)
            out.append(
                OfferView(
                    offer=offer,
                    indication=indication,
                    commitments=Commitments(
                        nights_per_week=sum(1 for d in prefs.departure_by_weekday if d is not None),
                        plug_in=reserves,
                        reserve_from_local=book.clock("reserve_bid_from_local", today) if reserves else None,
                        reserve_until_before_departure_h=(
                            book.single["departure_margin_h"].at(today) if reserves else None
                        ),
                        target_soc_percent=prefs.target_soc_percent,
                        min_soc_percent=prefs.min_soc_percent if offer.discharges else None,
                    ),
                    owner_share=offer.owner_share(tariffs, today),
                    wear_allowance_ore_per_kwh=(
                        tariffs.wear_allowance_ore_per_kwh.at(today) if offer.shares_reserve_revenue else Decimal(0)
                    ),
                    fixed_fee_sek_per_month=offer.fixed_fee_sek_per_month.at(today),
                    current=offer.id == current,
                )
            )
        return tuple(out)

    def contract(self, who: Principal, ev_id: str, offer_id: str | None = None) -> ContractFacts:
        """The contract's figures for the EV ``ev_id`` under ``offer_id`` (default: the owner's current offer)."""
        ev = self._ev(who, ev_id)
        prefs = self.value.preferences.get(who, ev_id).preferences
        today = self._today()
        book, tariffs = self.value.offers, self.value.tariffs
        offer = book.offer(offer_id or self._current(who, ev) or DEFAULT_OFFER)
        share = tariffs.owner_revenue_share.entry(today)
        wear = tariffs.wear_allowance_ore_per_kwh.entry(today)
        if not offer.shares_reserve_revenue:
            share = DatedValue(share.valid_from, Decimal(0), share.confidence, f"offer {offer.id}: no revenue share")
            wear = DatedValue(wear.valid_from, Decimal(0), wear.confidence, f"offer {offer.id}: never discharges")
        return ContractFacts(
            offer_id=offer.id,
            owner_share=share,
            wear_allowance_ore_per_kwh=wear,
            fixed_fee_sek_per_month=offer.fixed_fee_sek_per_month.entry(today),
            notice_period_days=book.contract["notice_period_days"].entry(today),
            withdrawal_days=book.contract["withdrawal_days"].entry(today),
            records_kept_years=book.contract["records_kept_years"].entry(today),
            departures=prefs.departure_by_weekday,
            target_soc_percent=prefs.target_soc_percent,
            min_soc_percent=prefs.min_soc_percent,
            discharges=offer.discharges,
            reserve_from_local=book.clock("reserve_bid_from_local", today),
        )


def owned_evs(journeys: JourneyService) -> OwnedEvs:
    """The EVs ``who`` may see from the journey service's customer files, each with its site and charger."""

    def evs(who: Principal) -> list[OwnedEv]:
        out: list[OwnedEv] = []
        for file in journeys.customer_files(who):
            sites = {s.id: s for s in file.sites}
            for vehicle in file.vehicles:
                site = sites.get(vehicle.site_id or "") or (file.sites[0] if file.sites else None)
                if site is not None:
                    charger = next((c for c in file.chargers if c.site_id == site.id), None)
                    out.append(OwnedEv(vehicle, site, charger, file.customer.id))
        return out

    return evs


def current_offer(journeys: JourneyService) -> CurrentOffer:
    """The offer of the customer's latest journey among those ``who`` may see."""

    def offer(who: Principal, customer_id: str) -> str | None:
        found = [j for j in journeys.list_journeys(who) if j.customer_id == customer_id]
        return max(found, key=lambda j: j.created_at).offer if found else None

    return offer
