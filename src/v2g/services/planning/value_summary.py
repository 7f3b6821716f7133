"""The value indication's figures: sampled nights turned into yearly terms with a low, expected and high case."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from v2g.fleet.preferences import OwnerPreferences
from v2g.services.planning.value_terms import nights_per_year
from v2g.settlement.offers import Offer, OfferBook
from v2g.settlement.tariffs import TariffBook

MONTHS_PER_YEAR = Decimal(12)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class NightValue:
    """One sampled night: what it costs without and with the platform, and what it is worth to the owner."""

    local_date: date
    uncontrolled_cost_sek: Decimal
    planned_cost_sek: Decimal
    reserve_owner_sek: Decimal  # the owner's share of the expected reserve revenue (expected acceptance)
    wear_allowance_sek: Decimal
    reserve_gross_eur: Decimal = Decimal(0)  # what the pool can sell with the EV, all accepted, mean price level
    reserve_gross_low_eur: Decimal = Decimal(0)  # the same at the low month's prices
    reserve_gross_high_eur: Decimal = Decimal(0)  # the same at the high month's prices
    bid_hours: int = 0

    @property
    def value_sek(self) -> Decimal:
        return self.uncontrolled_cost_sek - self.planned_cost_sek + self.reserve_owner_sek + self.wear_allowance_sek


@dataclass(frozen=True, slots=True)
class ValueTerm:
    """One term of the yearly figure with its three cases and what it rests on."""

    key: str  # energy | reserves | wear | fee
    low_sek: Decimal
    expected_sek: Decimal
    high_sek: Decimal
    basis: str


@dataclass(frozen=True, slots=True)
class ValueIndication:
    """An EV's value per year under an offer as a range, with its terms, the nights and what it assumes."""

    ev_id: str
    low_sek_per_year: Decimal
    expected_sek_per_year: Decimal
    high_sek_per_year: Decimal
    nights: tuple[NightValue, ...]
    assumptions: tuple[tuple[str, str], ...]  # (name, value and source)
    price_sources: tuple[str, ...]
    v2g: bool  # False: the EV or its charger cannot discharge (the planner still shifts its charging)
    offer_id: str = ""
    terms: tuple[ValueTerm, ...] = ()
    nights_per_year: tuple[Decimal, Decimal, Decimal] = (Decimal(0), Decimal(0), Decimal(0))
    pool_reserve_eur_per_year: Decimal = Decimal(0)  # expected, before the owner's share

    @property
    def spread_sek_per_year(self) -> Decimal:
        return self.high_sek_per_year - self.low_sek_per_year


def _cases(values: Sequence[Decimal]) -> tuple[Decimal, Decimal, Decimal]:
    """The 10th percentile, the mean and the 90th percentile of per-night values."""
    if not values:
        return Decimal(0), Decimal(0), Decimal(0)
    if len(values) == 1:
        return values[0], values[0], values[0]
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return Decimal(deciles[0]), Decimal(statistics.fmean(values)), Decimal(deciles[-1])


def _year(x: Decimal) -> Decimal:
    return x.quantize(Decimal("1"))


def summarise(
    ev_id: str,
    offer: Offer,
    nights: Sequence[NightValue],
    v2g: bool,
    prefs: OwnerPreferences,
    today: date,
    tariffs: TariffBook,
    book: OfferBook,
    price_sources: tuple[str, ...],
    sample_nights: int,
) -> ValueIndication:
    """The yearly terms, their sum and the assumptions with their sources."""
    plug, acc = book.ranged["plug_in_share"], book.ranged["reserve_acceptance"]
    n_low, n_exp, n_high = (nights_per_year(prefs.departure_by_weekday, s) for s in (plug.low, plug.value, plug.high))
    share = offer.owner_share(tariffs, today)
    rate = tariffs.sek_per_eur.at(today)
    fee = offer.fixed_fee_sek_per_month.entry(today)

    def scaled(
        values: Sequence[Decimal], factors: tuple[Decimal, Decimal, Decimal]
    ) -> tuple[Decimal, Decimal, Decimal]:
        low, mean, high = _cases(values)
        return (
            _year(min(low * factors[0], low * factors[2])),
            _year(mean * factors[1]),
            _year(max(high * factors[0], high * factors[2])),
        )

    energy = scaled([n.uncontrolled_cost_sek - n.planned_cost_sek for n in nights], (n_low, n_exp, n_high))
    wear = scaled([n.wear_allowance_sek for n in nights], (n_low, n_exp, n_high))
    r_low = _cases([n.reserve_gross_low_eur for n in nights])[0] * acc.low * n_low
    r_exp = _cases([n.reserve_gross_eur for n in nights])[1] * acc.value * n_exp
    r_high = _cases([n.reserve_gross_high_eur for n in nights])[2] * acc.high * n_high
    reserves = (_year(r_low * share * rate), _year(r_exp * share * rate), _year(r_high * share * rate))
    fee_year = _year(fee.value * MONTHS_PER_YEAR)
    wear_entry = tariffs.wear_allowance_ore_per_kwh.entry(today)
    terms = (
        ValueTerm("energy", *energy, "energy cost saved per sampled night (10th percentile, mean, 90th) x nights"),
        ValueTerm(
            "reserves",
            *reserves,
            f"{share * 100:g} % of the pool's FCR revenue with the EV: capacity per bid hour x price level "
            f"(low month, mean, high month) x accepted share x nights a year",
        ),
        ValueTerm("wear", *wear, f"{wear_entry.value if offer.shares_reserve_revenue else 0:g} öre per kWh discharged"),
        ValueTerm("fee", fee_year, fee_year, fee_year, f"{fee.value:g} SEK a month: {fee.source}"),
    )
    departures = ", ".join(
        f"{d} {c.strftime('%H:%M') if c else '-'}" for d, c in zip(_DAYS, prefs.departure_by_weekday, strict=True)
    )
    per_week = sum(1 for d in prefs.departure_by_weekday if d is not None)
    share_entry = tariffs.owner_revenue_share.entry(today)
    rate_entry = tariffs.sek_per_eur.entry(today)
    assumptions: list[tuple[str, str]] = [
        ("offer", f"{offer.id}: plans {offer.strategy.value}; reserves {', '.join(offer.reserve_products) or 'none'}"),
        ("nights_sampled", f"{len(nights)} of the {sample_nights} nights before today, each with that night's prices"),
        (
            "plugged_in_nights_per_year",
            f"{n_low:.0f} / {n_exp:.0f} / {n_high:.0f}: {per_week} nights a week before a departure in your "
            f"settings x {plug.low:g} / {plug.value:g} / {plug.high:g} plugged in: {plug.source}",
        ),
        ("departures", f"your settings: {departures}"),
        ("soc", f"target {prefs.target_soc_percent:g} %, never below {prefs.min_soc_percent:g} % (your settings)"),
    ]
    for name in ("daily_use_kwh", "arrival_local", "reserve_bid_from_local", "departure_margin_h"):
        entry = book.single[name].entry(today)
        shown = book.clock(name, today).strftime("%H:%M") if name.endswith("_local") else f"{entry.value:g}"
        assumptions.append((name, f"{name} {shown} (from {entry.valid_from}): {entry.source}"))
    if offer.reserve_products:
        assumptions.append(
            (
                "reserve_acceptance",
                f"{acc.low:g} / {acc.value:g} / {acc.high:g} of offered hours accepted (from {acc.valid_from}): "
                f"{acc.source}",
            )
        )
        for product in offer.reserve_products:
            level = book.reserve_prices_eur_per_mw_h[product]
            assumptions.append(
                (
                    f"price_{product.value}",
                    f"{product.value} {level.low:g} / {level.value:g} / {level.high:g} EUR/MW,h "
                    f"(from {level.valid_from}): {level.source}",
                )
            )
        assumptions.append(
            (
                "reserve_capacity",
                "per bid hour, around the planned power: FCR-N min(up, down) / 1.34 with 1 h of energy each way, "
                "or FCR-D up and down with 20 min (2 h for a charge-only EV): FCR-TR v1.1, LER rules",
            )
        )
    if offer.shares_reserve_revenue:
        assumptions.append(
            ("owner_revenue_share", f"{share_entry.value * 100:g} % of the reserve revenue: {share_entry.source}")
        )
        assumptions.append(("wear_allowance", f"{wear_entry.value:g} öre per kWh discharged: {wear_entry.source}"))
    assumptions.append(("fixed_fee", f"{fee.value:g} SEK a month (from {fee.valid_from}): {fee.source}"))
    assumptions.append(("sek_per_eur", f"{rate_entry.value} SEK per EUR: {rate_entry.source}"))
    low = sum((t.low_sek for t in terms), Decimal(0))
    expected = sum((t.expected_sek for t in terms), Decimal(0))
    high = sum((t.high_sek for t in terms), Decimal(0))
    pool = _cases([n.reserve_gross_eur for n in nights])[1] * acc.value * n_exp
    return ValueIndication(
        ev_id=ev_id,
        low_sek_per_year=low,
        expected_sek_per_year=expected,
        high_sek_per_year=high,
        nights=tuple(nights),
        assumptions=tuple(assumptions),
        price_sources=price_sources,
        v2g=v2g,
        offer_id=offer.id,
        terms=terms,
        nights_per_year=(n_low.quantize(Decimal("1")), n_exp.quantize(Decimal("1")), n_high.quantize(Decimal("1"))),
        pool_reserve_eur_per_year=pool.quantize(Decimal("0.01")),
    )
