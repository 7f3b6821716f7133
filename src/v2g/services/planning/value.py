"""The quick value indication: what an offer would be worth to an owner per year, with its terms.

The owner's EV is planned night by night over the last ``sample_nights`` nights of the platform's
day-ahead price feed, once as it would charge without the platform (``uncontrolled``: full power
from plug-in) and once as the offer plans it (``smart`` charging, or ``v2g-spot`` with discharge),
with the owner's own settings (departure per weekday, target and minimum SoC) and the EV's,
charger's and site's limits. The figure is the sum of terms, each with a low, expected and high
case and each resting on a real product or price (``offers.yaml``, ``tariffs.yaml``):

* **energy**: the energy cost saved (uncontrolled - planned, tariffs and export included), per
  sampled night (10th percentile, mean, 90th percentile) times the plugged-in nights a year;
* **reserves**: the owner's share of what the pool can sell with the EV in the hours it bids it
  (from 23:00 to an hour before the owner's departure), per hour the capacity the FCR rules allow
  around the planned power, times the FCR price level of the year ahead (Svk Mimer, low / mean /
  high month), times the share of offered hours the auction accepts;
* **wear**: the contract's allowance on the energy discharged;
* **fee**: the offer's fixed fee per month.

Plugged-in nights come from the owner's weekday departures times the share of nights plugged in.
Who may ask is decided by the preferences use case (owners their own EVs, operators their customers').
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np

from v2g.fleet.model import Charger, PriceArea, Site, Vehicle
from v2g.fleet.preferences import OwnerPreferences
from v2g.planning.model import EvPlan, EvSession, GridAreaLimits, PlanningProblem, Product, SiteLimits, Strategy
from v2g.planning.planner import FleetPlanner
from v2g.planning.rules import PlanningRules
from v2g.services.actors.ports import Principal
from v2g.services.clock import Clock
from v2g.services.planning.cycle import PriceProvider
from v2g.services.planning.preferences import PreferencesService
from v2g.services.planning.value_summary import NightValue, ValueIndication, summarise
from v2g.services.planning.value_terms import hourly_states, reserve_eur, sellable_kw
from v2g.settlement.offers import Offer, OfferBook, load_offers
from v2g.settlement.tariffs import TariffBook
from v2g.units import HOUR, QUARTER, STOCKHOLM, floor_hour, to_local

__all__ = ["NightValue", "ValueIndication", "ValueIndicator"]

DT_H = 0.25
DEFAULT_OFFER = "v2g-basic"
SAMPLE_NIGHTS = 14

PriceSources = Callable[[datetime], dict[str, str]]


def _utc(local: datetime) -> datetime:
    """A naive Swedish local time in UTC."""
    return local.replace(tzinfo=STOCKHOLM).astimezone(UTC)


def _departure(prefs: OwnerPreferences, arrival_local: datetime) -> datetime | None:
    """The departure the next morning by the owner's weekday table; None when the owner does not leave then.

    Only nights before a departure are sampled, the same nights the yearly count is made of (a car
    left at home over a free day is not counted as extra nights).
    """
    day = arrival_local.date() + timedelta(days=1)
    clock = prefs.departure_by_weekday[day.weekday()]
    return None if clock is None else _utc(datetime.combine(day, clock))


@dataclass(frozen=True, slots=True)
class _Night:
    day: date
    session: EvSession
    bid_from: datetime
    bid_until: datetime


class ValueIndicator:
    """Plans the owner's EV over sampled nights and turns each term into a yearly range."""

    def __init__(
        self,
        prices: PriceProvider,
        rules: PlanningRules,
        preferences: PreferencesService,
        clock: Clock,
        tariffs: TariffBook,
        *,
        offers: OfferBook | None = None,
        sample_nights: int = SAMPLE_NIGHTS,
        price_sources: PriceSources | None = None,
        planner: FleetPlanner | None = None,
    ) -> None:
        if sample_nights < 1:
            msg = f"sample_nights: {sample_nights} must be >= 1"
            raise ValueError(msg)
        self.prices = prices
        self.rules = rules
        self.preferences = preferences
        self.tariffs = tariffs
        self.clock = clock
        self.offers = offers or load_offers()
        self.sample_nights = sample_nights
        self.price_sources = price_sources
        self.planner = planner or FleetPlanner()
        self._cache: dict[tuple[object, ...], ValueIndication] = {}

    def for_ev(
        self, who: Principal, vehicle: Vehicle, site: Site, charger: Charger | None = None, offer: str | None = None
    ) -> ValueIndication:
        """The indication of ``offer`` (default ``v2g-basic``) for ``vehicle`` at ``site``.

        The preferences use case decides whether ``who`` may ask; an unknown offer is an error naming it.
        """
        chosen = self.offers.offer(offer or DEFAULT_OFFER)
        view = self.preferences.get(who, vehicle.id)  # ForbiddenError / NotFoundError as for the settings
        today = to_local(self.clock.now()).date()
        key = (vehicle, site, charger, view.preferences, today, chosen.id)
        if key not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = self._indicate(vehicle, site, charger, view.preferences, today, chosen)
        return self._cache[key]

    # ------------------------------------------------------------------ internals
    def _indicate(
        self,
        vehicle: Vehicle,
        site: Site,
        charger: Charger | None,
        prefs: OwnerPreferences,
        today: date,
        offer: Offer,
    ) -> ValueIndication:
        book = self.offers
        charge_kw = min(vehicle.max_charge_kw, charger.max_charge_kw if charger else vehicle.max_charge_kw)
        discharge_kw = 0.0
        if offer.discharges and vehicle.v2g_capable and (charger is None or charger.bidirectional):
            discharge_kw = min(vehicle.max_discharge_kw, charger.max_discharge_kw if charger else 0.0)
        arrival = book.clock("arrival_local", today)
        bid_from = book.clock("reserve_bid_from_local", today)
        margin = timedelta(hours=float(book.single["departure_margin_h"].at(today)))
        daily_use_kwh = float(book.single["daily_use_kwh"].at(today))
        battery = vehicle.battery_kwh
        target = prefs.target_soc_percent / 100 * battery
        minimum = prefs.min_soc_percent / 100 * battery
        nights: list[_Night] = []
        for day in (today - timedelta(days=n) for n in range(self.sample_nights, 0, -1)):
            arrival_local = datetime.combine(day, arrival)
            departure = _departure(prefs, arrival_local)
            if departure is None:
                continue
            session = EvSession(
                ev_id=f"{vehicle.id}@{day.isoformat()}",
                site_id=f"{site.id}@{day.isoformat()}",
                battery_kwh=battery,
                soc_kwh=max(minimum, target - daily_use_kwh),
                min_soc_kwh=minimum,
                target_soc_kwh=target,
                arrival_at=_utc(arrival_local),
                departure_at=departure,
                max_charge_kw=charge_kw,
                max_discharge_kw=discharge_kw,
                allow_discharge=discharge_kw > 0,
                allow_reserves=False,  # reserves are valued below, by the pool's bid hours
            )
            start = _utc(datetime.combine(day, bid_from) if bid_from >= arrival else arrival_local)
            nights.append(_Night(day, session, max(start, session.arrival_at), departure - margin))
        sessions = [n.session for n in nights]
        start_at = floor_hour(min(s.arrival_at for s in sessions)) if sessions else self.clock.now()
        strategy = offer.strategy if discharge_kw > 0 else Strategy.SMART
        planned = self._plan(site, sessions, strategy, start_at)
        uncontrolled = self._plan(site, sessions, Strategy.UNCONTROLLED, start_at)
        share = offer.owner_share(self.tariffs, today)
        wear_ore = self.tariffs.wear_allowance_ore_per_kwh.at(today) if offer.shares_reserve_revenue else Decimal(0)
        rate = self.tariffs.sek_per_eur.at(today)
        levels = book.reserve_prices_eur_per_mw_h
        expected_prices = {p: r.value for p, r in levels.items()}
        values: list[NightValue] = []
        for night in nights:
            plan, alone = planned[night.session.ev_id], uncontrolled[night.session.ev_id]
            exported_kwh = float(np.clip(-plan.p_kw, 0.0, None).sum()) * DT_H
            hours = self._bid_hours(plan, night, start_at, offer, expected_prices, minimum)
            gross = {
                case: reserve_eur(hours, {p: getattr(r, case) for p, r in levels.items()}, Decimal(1))
                for case in ("low", "value", "high")
            }
            acceptance = book.ranged["reserve_acceptance"].value
            values.append(
                NightValue(
                    local_date=night.day,
                    uncontrolled_cost_sek=_sek(alone.energy_cost_eur, rate),
                    planned_cost_sek=_sek(plan.energy_cost_eur, rate),
                    reserve_owner_sek=(gross["value"] * acceptance * share * rate).quantize(Decimal("0.01")),
                    wear_allowance_sek=(Decimal(repr(exported_kwh)) * wear_ore / 100).quantize(Decimal("0.01")),
                    reserve_gross_eur=gross["value"],
                    reserve_gross_low_eur=gross["low"],
                    reserve_gross_high_eur=gross["high"],
                    bid_hours=len(hours),
                )
            )
        sources: tuple[str, ...] = ()
        if self.price_sources is not None and nights:
            described = self.price_sources(nights[0].session.arrival_at)
            sources = tuple(f"{k}: {v}" for k, v in described.items() if k != "reserves")
        return summarise(
            vehicle.id,
            offer,
            values,
            discharge_kw > 0,
            prefs,
            today,
            self.tariffs,
            book,
            (*sources, self._energy_basis(rate)),
            self.sample_nights,
        )

    def _energy_basis(self, sek_per_eur: Decimal) -> str:
        """How the planner prices the owner's energy (``planning/rules.yaml``), in öre per kWh."""
        r = self.rules

        def ore(eur_per_kwh: float) -> str:
            return f"{Decimal(repr(eur_per_kwh)) * sek_per_eur * 100:.1f}"

        return (
            f"energy: import at spot + grid fee {ore(r.grid_fee_import_eur_per_kwh)} + energy tax "
            f"{ore(r.energy_tax_eur_per_kwh)} öre/kWh, plus {r.vat_rate * 100:g} % VAT; export at spot + grid "
            f"benefit {ore(r.grid_benefit_export_eur_per_kwh)} öre/kWh"
            f"{' + the stored-energy tax refund' if r.stored_energy_tax_refund else ''}; battery wear "
            f"{ore(r.battery_wear_eur_per_kwh)} öre/kWh discharged in the plan (planning/rules.yaml, with sources)"
        )

    def _bid_hours(
        self,
        plan: EvPlan,
        night: _Night,
        start_at: datetime,
        offer: Offer,
        prices: dict[Product, Decimal],
        min_soc_kwh: float,
    ) -> list[dict[Product, float]]:
        """The capacity per product the pool can sell in each whole hour of the night's bid window."""
        if not offer.reserve_products or night.bid_until <= night.bid_from:
            return []
        first = floor_hour(night.bid_from + HOUR - timedelta(microseconds=1))
        n_hours = int((night.bid_until - first) // HOUR)
        if n_hours <= 0:
            return []
        states = hourly_states(
            np.asarray(plan.p_kw, dtype=np.float64),
            np.asarray(plan.soc_kwh, dtype=np.float64),
            int((first - start_at) // QUARTER),
            n_hours,
            min_soc_kwh=min_soc_kwh,
            battery_kwh=night.session.battery_kwh,
            max_charge_kw=night.session.max_charge_kw,
            max_discharge_kw=night.session.max_discharge_kw,
        )
        return [dict(sellable_kw(s, offer.reserve_products, self.rules, prices)) for s in states]

    def _plan(
        self, site: Site, sessions: Sequence[EvSession], strategy: Strategy, start: datetime
    ) -> dict[str, EvPlan]:
        if not sessions:
            return {}
        end = max(s.departure_at for s in sessions)
        n = int(-(-(end - start) // QUARTER))
        n += -n % 4
        area = site.price_area
        limits = [
            SiteLimits(s.site_id, f"area-{s.site_id}", site.fuse_limit_kw, (site.household_peak_kw,), (0.0,))
            for s in sessions
        ]
        areas = [GridAreaLimits(f"area-{s.site_id}", area, (1e6,), (1e6,)) for s in sessions]
        problem = PlanningProblem(
            start_at=start,
            n_intervals=n,
            evs=tuple(sessions),
            sites=tuple(limits),
            grid_areas=tuple(areas),
            day_ahead_eur_per_mwh={PriceArea(area): self.prices.day_ahead_eur_per_mwh(area, start, n)},
            reserve_eur_per_mw_h={},
            rules=self.rules,
        )
        plan = self.planner.plan(problem, strategy)
        return {ev.ev_id: ev for ev in plan.ev_plans}


def _sek(amount_eur: float, sek_per_eur: Decimal) -> Decimal:
    return (Decimal(repr(amount_eur)) * sek_per_eur).quantize(Decimal("0.01"))
