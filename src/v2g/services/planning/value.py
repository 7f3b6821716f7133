"""The quick value indication: what V2G would be worth to an owner per year, from the platform's own planner.

The owner's EV is planned night by night over the last ``sample_nights`` nights of the platform's
price feed (the same day-ahead and FCR price forecasts the planning cycle uses), once as it would
charge without the platform (``uncontrolled``: full power from plug-in) and once as the platform
plans it (``v2g-reserves``), with the owner's own settings (departure per weekday, target and
minimum SoC) and the EV's, charger's and site's limits. A night is worth to the owner

    the energy cost saved (uncontrolled - planned, export compensation included)
    + the owner's share of the expected reserve revenue (the contract's share)
    + the wear allowance on the energy discharged (the contract's öre per kWh)

and a year is ``plugged_in_nights_per_year`` such nights. The range is the spread of the nights
sampled (the 10th to the 90th percentile night, times the nights of a year); the assumptions and
the price sources come with the figure, and nothing else is assumed. Who may ask is decided by the
preferences use case (owners their own EVs, aggregator operators their customers').
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np

from v2g.fleet.model import Charger, PriceArea, Site, Vehicle
from v2g.fleet.preferences import OwnerPreferences
from v2g.planning.model import (
    PRODUCTS,
    EvPlan,
    EvSession,
    FleetPlan,
    GridAreaLimits,
    PlanningProblem,
    SiteLimits,
    Strategy,
)
from v2g.planning.planner import FleetPlanner
from v2g.planning.rules import PlanningRules
from v2g.services.actors.ports import Principal
from v2g.services.clock import Clock
from v2g.services.planning.cycle import PriceProvider
from v2g.services.planning.preferences import PreferencesService
from v2g.settlement.tariffs import TariffBook
from v2g.units import QUARTER, STOCKHOLM, floor_hour, to_local

DT_H = 0.25
POOLED_BID_MW = 1e-6  # 1 W: the EV's share of a pooled bid


@dataclass(frozen=True, slots=True)
class ValueAssumptions:
    """What the indication assumes beyond the owner's settings, each with where it comes from."""

    daily_use_kwh: float = 6.2  # 31 km/day (Trafikanalys 2023: 1 126 mil per car and year) x 0.20 kWh/km
    arrival_local: time = time(17, 0)
    plugged_in_nights_per_year: int = 260  # plugged in at home 5 nights of 7
    sample_nights: int = 14
    sources: dict[str, str] = field(
        default_factory=lambda: {
            "daily_use_kwh": "31 km a day (Trafikanalys, passenger cars 2023: 1 126 mil a year) x 0.20 kWh/km "
            "(winter consumption incl. charging losses, Vattenfall: about 2 kWh/mil)",
            "arrival_local": "an assumed home arrival; the owner's departures come from their own settings",
            "plugged_in_nights_per_year": "an assumption: plugged in at home 5 nights of 7",
        }
    )


@dataclass(frozen=True, slots=True)
class NightValue:
    """One sampled night: what it costs without and with the platform, and what it is worth to the owner."""

    local_date: date
    uncontrolled_cost_sek: Decimal
    planned_cost_sek: Decimal
    reserve_owner_sek: Decimal
    wear_allowance_sek: Decimal

    @property
    def value_sek(self) -> Decimal:
        return self.uncontrolled_cost_sek - self.planned_cost_sek + self.reserve_owner_sek + self.wear_allowance_sek


@dataclass(frozen=True, slots=True)
class ValueIndication:
    """An EV's value per year as a range, with the nights it rests on and what it assumes."""

    ev_id: str
    low_sek_per_year: Decimal
    expected_sek_per_year: Decimal
    high_sek_per_year: Decimal
    nights: tuple[NightValue, ...]
    assumptions: tuple[tuple[str, str], ...]  # (name, value and source)
    price_sources: tuple[str, ...]
    v2g: bool  # False: the EV or its charger cannot discharge (the planner still shifts its charging)

    @property
    def spread_sek_per_year(self) -> Decimal:
        return self.high_sek_per_year - self.low_sek_per_year


PriceSources = Callable[[datetime], dict[str, str]]


def _sek(amount_eur: float, sek_per_eur: Decimal) -> Decimal:
    return (Decimal(repr(amount_eur)) * sek_per_eur).quantize(Decimal("0.01"))


def _utc(local: datetime) -> datetime:
    """A naive Swedish local time in UTC."""
    return local.replace(tzinfo=STOCKHOLM).astimezone(UTC)


def _departure(prefs: OwnerPreferences, arrival_local: datetime) -> datetime | None:
    """The first departure after ``arrival_local`` by the owner's weekday table (within a week)."""
    for offset in range(1, 8):
        day = arrival_local.date() + timedelta(days=offset)
        clock = prefs.departure_by_weekday[day.weekday()]
        if clock is not None:
            return _utc(datetime.combine(day, clock))
    return None


class ValueIndicator:
    """Plans the owner's EV over sampled nights and turns the difference into a yearly range."""

    def __init__(
        self,
        prices: PriceProvider,
        rules: PlanningRules,
        preferences: PreferencesService,
        clock: Clock,
        tariffs: TariffBook,
        *,
        assumptions: ValueAssumptions | None = None,
        price_sources: PriceSources | None = None,
        planner: FleetPlanner | None = None,
    ) -> None:
        self.prices = prices
        # the EV bids within the fleet's pool: the pool meets the minimum bid and its granularity
        self.rules = rules.with_options(min_bid_mw=POOLED_BID_MW, bid_granularity_mw=POOLED_BID_MW)
        self.preferences = preferences
        self.tariffs = tariffs
        self.clock = clock
        self.assumptions = assumptions or ValueAssumptions()
        self.price_sources = price_sources
        self.planner = planner or FleetPlanner()
        self._cache: dict[tuple[object, ...], ValueIndication] = {}

    def for_ev(self, who: Principal, vehicle: Vehicle, site: Site, charger: Charger | None = None) -> ValueIndication:
        """The indication for ``vehicle`` at ``site``; the preferences use case decides whether ``who`` may ask."""
        view = self.preferences.get(who, vehicle.id)  # ForbiddenError / NotFoundError as for the settings
        today = to_local(self.clock.now()).date()
        key = (vehicle, site, charger, view.preferences, today)
        if key not in self._cache:
            self._cache = {key: self._indicate(vehicle, site, charger, view.preferences, today)}
        return self._cache[key]

    # ------------------------------------------------------------------ internals
    def _indicate(
        self, vehicle: Vehicle, site: Site, charger: Charger | None, prefs: OwnerPreferences, today: date
    ) -> ValueIndication:
        a = self.assumptions
        share = self.tariffs.owner_revenue_share.at(today)
        wear_ore = self.tariffs.wear_allowance_ore_per_kwh.at(today)
        rate = self.tariffs.sek_per_eur.at(today)
        charge_kw = min(vehicle.max_charge_kw, charger.max_charge_kw if charger else vehicle.max_charge_kw)
        discharge_kw = 0.0
        if vehicle.v2g_capable and (charger is None or charger.bidirectional):
            discharge_kw = min(vehicle.max_discharge_kw, charger.max_discharge_kw if charger else 0.0)
        days = [today - timedelta(days=n) for n in range(a.sample_nights, 0, -1)]
        sessions: list[tuple[date, EvSession]] = []
        for day in days:
            arrival_local = datetime.combine(day, a.arrival_local)
            departure = _departure(prefs, arrival_local)
            if departure is None:
                continue
            battery = vehicle.battery_kwh
            target = prefs.target_soc_percent / 100 * battery
            minimum = prefs.min_soc_percent / 100 * battery
            session = EvSession(
                ev_id=f"{vehicle.id}@{day.isoformat()}",
                site_id=f"{site.id}@{day.isoformat()}",
                battery_kwh=battery,
                soc_kwh=max(minimum, target - a.daily_use_kwh),
                min_soc_kwh=minimum,
                target_soc_kwh=target,
                arrival_at=_utc(arrival_local),
                departure_at=departure,
                max_charge_kw=charge_kw,
                max_discharge_kw=discharge_kw,
                allow_discharge=discharge_kw > 0,
                allow_reserves=discharge_kw > 0,
            )
            sessions.append((day, session))
        planned = self._plan(site, [s for _, s in sessions], Strategy.V2G_RESERVES)
        uncontrolled = self._plan(site, [s for _, s in sessions], Strategy.UNCONTROLLED)
        nights = []
        for day, session in sessions:
            p, u = planned[session.ev_id], uncontrolled[session.ev_id]
            exported_kwh = float(np.clip(-p.p_kw, 0.0, None).sum()) * DT_H
            nights.append(
                NightValue(
                    local_date=day,
                    uncontrolled_cost_sek=_sek(u.energy_cost_eur, rate),
                    planned_cost_sek=_sek(p.energy_cost_eur, rate),
                    reserve_owner_sek=(_sek(p.reserve_revenue_eur, rate) * share).quantize(Decimal("0.01")),
                    wear_allowance_sek=(Decimal(repr(exported_kwh)) * wear_ore / 100).quantize(Decimal("0.01")),
                )
            )
        return self._summary(vehicle.id, nights, discharge_kw > 0, prefs, today)

    def _plan(self, site: Site, sessions: Sequence[EvSession], strategy: Strategy) -> dict[str, EvPlan]:
        if not sessions:
            return {}
        start = floor_hour(min(s.arrival_at for s in sessions))
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
            reserve_eur_per_mw_h={p: self.prices.reserve_eur_per_mw_h(p, start, n // 4) for p in PRODUCTS},
            rules=self.rules,
        )
        plan: FleetPlan = self.planner.plan(problem, strategy)
        return {ev.ev_id: ev for ev in plan.ev_plans}

    def _summary(
        self, ev_id: str, nights: list[NightValue], v2g: bool, prefs: OwnerPreferences, today: date
    ) -> ValueIndication:
        a = self.assumptions
        share = self.tariffs.owner_revenue_share.entry(today)
        wear = self.tariffs.wear_allowance_ore_per_kwh.entry(today)
        rate = self.tariffs.sek_per_eur.entry(today)
        per_year = Decimal(a.plugged_in_nights_per_year)
        values = [float(n.value_sek) for n in nights]
        if len(values) >= 2:
            deciles = statistics.quantiles(values, n=10, method="inclusive")
            low, high = deciles[0], deciles[-1]
        else:
            low = high = values[0] if values else 0.0
        mean = statistics.fmean(values) if values else 0.0

        def yearly(x: float) -> Decimal:
            return (Decimal(repr(x)) * per_year).quantize(Decimal("1"))

        departures = ", ".join(
            f"{d} {c.strftime('%H:%M') if c else '-'}"
            for d, c in zip(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), prefs.departure_by_weekday, strict=True)
        )
        assumptions = (
            ("nights_sampled", f"{len(nights)} nights before today, each planned with the prices of that night"),
            (
                "plugged_in_nights_per_year",
                f"{a.plugged_in_nights_per_year}: {a.sources['plugged_in_nights_per_year']}",
            ),
            ("daily_use_kwh", f"{a.daily_use_kwh:g} kWh driven between plug-ins: {a.sources['daily_use_kwh']}"),
            ("arrival_local", f"{a.arrival_local:%H:%M}: {a.sources['arrival_local']}"),
            ("departures", f"the owner's settings: {departures}"),
            (
                "soc",
                f"target {prefs.target_soc_percent:g} %, never below {prefs.min_soc_percent:g} % (owner's settings)",
            ),
            ("owner_revenue_share", f"{share.value * 100:g} % of the reserve revenue: {share.source}"),
            ("wear_allowance", f"{wear.value:g} öre per kWh discharged: {wear.source}"),
            ("sek_per_eur", f"{rate.value} SEK per EUR: {rate.source}"),
            (
                "reserve_pool",
                "the EV's reserve capacity is bid within the fleet's pool (the pool meets the minimum bid)",
            ),
            ("reserve_acceptance", "every offered reserve hour accepted at the forecast clearing price"),
        )
        sources: tuple[str, ...] = ()
        if self.price_sources is not None and nights:
            first = _utc(datetime.combine(nights[0].local_date, a.arrival_local))
            sources = tuple(f"{k}: {v}" for k, v in self.price_sources(first).items())
        return ValueIndication(
            ev_id=ev_id,
            low_sek_per_year=yearly(low),
            expected_sek_per_year=yearly(mean),
            high_sek_per_year=yearly(high),
            nights=tuple(nights),
            assumptions=assumptions,
            price_sources=sources,
            v2g=v2g,
        )
