"""The service offers an owner can choose and the numbers the quick value indication rests on.

Loaded from ``offers.yaml``: every number has the date it holds from, a source and a confidence
flag, like the tariff book. A ranged number (``low`` / ``value`` / ``high``) carries the spread the
indication shows; an offer names the planning strategy it runs, the reserve products the pool may
sell with the owner's EV, the owner's revenue share and a fixed fee per month.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from v2g.planning.model import Product, Strategy
from v2g.settlement.money import SettlementInputError, decimal_of
from v2g.settlement.tariffs import Confidence, Schedule, TariffBook, _date, _req, _schedule


@dataclass(frozen=True, slots=True)
class Ranged:
    """A number with its low and high case, the date it holds from and its source."""

    name: str
    low: Decimal
    value: Decimal
    high: Decimal
    valid_from: date
    confidence: Confidence
    source: str

    def __post_init__(self) -> None:
        if not self.low <= self.value <= self.high:
            msg = f"{self.name}: low {self.low} <= value {self.value} <= high {self.high} must hold"
            raise SettlementInputError(msg)


@dataclass(frozen=True, slots=True)
class Offer:
    """One service configuration an owner can choose."""

    id: str
    strategy: Strategy
    reserve_products: tuple[Product, ...]
    fixed_fee_sek_per_month: Schedule
    shares_reserve_revenue: bool  # the contract's owner share of reserve revenue, plus the wear allowance

    @property
    def discharges(self) -> bool:
        return self.strategy in (Strategy.V2G_SPOT, Strategy.V2G_RESERVES)

    def owner_share(self, tariffs: TariffBook, day: date) -> Decimal:
        """The owner's share of the reserve revenue their EV earns under this offer."""
        return tariffs.owner_revenue_share.at(day) if self.shares_reserve_revenue else Decimal(0)


@dataclass(frozen=True, slots=True)
class OfferBook:
    """The offers, the value indication's assumptions, the reserve price levels and the contract numbers."""

    offers: tuple[Offer, ...]
    single: Mapping[str, Schedule]  # arrival_local (as HHMM), reserve_bid_from_local, departure_margin_h, ...
    ranged: Mapping[str, Ranged]  # plug_in_share, reserve_acceptance
    reserve_prices_eur_per_mw_h: Mapping[Product, Ranged]
    contract: Mapping[str, Schedule]

    def offer(self, offer_id: str) -> Offer:
        """The offer ``offer_id``; an unknown one is an error naming it and the known ones."""
        for offer in self.offers:
            if offer.id == offer_id:
                return offer
        known = ", ".join(o.id for o in self.offers)
        msg = f"offer: no offer {offer_id!r} (known: {known})"
        raise SettlementInputError(msg)

    def clock(self, name: str, day: date) -> time:
        """A local time of day kept as ``HHMM`` (e.g. ``arrival_local``)."""
        hhmm = int(self.single[name].at(day))
        return time(hhmm // 100, hhmm % 100)


def _clock_schedule(raw: Any, name: str) -> Schedule:
    """``value: "HH:MM"`` kept exact as the number HHMM."""
    if not isinstance(raw, Mapping):
        msg = f"{name}: must be a mapping with valid_from, value, confidence and source"
        raise SettlementInputError(msg)
    try:
        clock = time.fromisoformat(str(_req(raw, "value", name)))
    except ValueError:
        msg = f"{name}.value: {raw['value']!r} is not a time of day as HH:MM"
        raise SettlementInputError(msg) from None
    return _schedule([{**raw, "value": str(clock.hour * 100 + clock.minute)}], name)


def _ranged(raw: Any, name: str) -> Ranged:
    if not isinstance(raw, Mapping):
        msg = f"{name}: must be a mapping with valid_from, low, value, high, confidence and source"
        raise SettlementInputError(msg)
    single = _schedule([{k: raw[k] for k in ("valid_from", "value", "confidence", "source") if k in raw}], name)
    entry = single.entries[0]
    return Ranged(
        name=name,
        low=decimal_of(str(_req(raw, "low", name)), field=f"{name}.low"),
        value=entry.value,
        high=decimal_of(str(_req(raw, "high", name)), field=f"{name}.high"),
        valid_from=_date(raw["valid_from"], name),
        confidence=entry.confidence,
        source=entry.source,
    )


def parse_offers(data: Mapping[str, Any]) -> OfferBook:
    """Build the book from the parsed YAML document; every problem names its place in the file."""
    if _req(data, "version", "offers") != 1:
        msg = "offers.version: only version 1 is known"
        raise SettlementInputError(msg)
    assumptions = dict(_req(data, "assumptions", "offers"))
    single: dict[str, Schedule] = {}
    ranged: dict[str, Ranged] = {}
    for key, raw in assumptions.items():
        name = f"assumptions.{key}"
        if key.endswith("_local"):
            single[key] = _clock_schedule(raw, name)
        elif isinstance(raw, Mapping) and "low" in raw:
            ranged[key] = _ranged(raw, name)
        else:
            single[key] = _schedule([raw], name)
    for key in ("plug_in_share", "reserve_acceptance"):
        if key not in ranged:
            msg = f"assumptions.{key}: missing (a ranged number with low, value and high)"
            raise SettlementInputError(msg)
        if not (Decimal(0) <= ranged[key].low and ranged[key].high <= 1):
            msg = f"assumptions.{key}: must lie between 0 and 1"
            raise SettlementInputError(msg)
    for key in ("arrival_local", "reserve_bid_from_local", "departure_margin_h", "daily_use_kwh"):
        if key not in single:
            msg = f"assumptions.{key}: missing"
            raise SettlementInputError(msg)
    prices: dict[Product, Ranged] = {}
    for key, raw in dict(_req(data, "reserve_prices_eur_per_mw_h", "offers")).items():
        try:
            product = Product(str(key))
        except ValueError:
            msg = f"reserve_prices_eur_per_mw_h.{key}: not a reserve product"
            raise SettlementInputError(msg) from None
        prices[product] = _ranged(raw, f"reserve_prices_eur_per_mw_h.{key}")
    contract = {str(k): _schedule([v], f"contract.{k}") for k, v in dict(_req(data, "contract", "offers")).items()}
    for key in ("notice_period_days", "withdrawal_days", "records_kept_years"):
        if key not in contract:
            msg = f"contract.{key}: missing"
            raise SettlementInputError(msg)
    offers = []
    for i, raw in enumerate(_req(data, "offers", "offers")):
        where = f"offers[{i}]"
        try:
            strategy = Strategy(str(_req(raw, "strategy", where)))
            products = tuple(Product(str(p)) for p in _req(raw, "reserve_products", where))
        except ValueError as exc:
            msg = f"{where}: {exc}"
            raise SettlementInputError(msg) from None
        missing = [p.value for p in products if p not in prices]
        if missing:
            msg = f"{where}.reserve_products: no price level for {', '.join(missing)}"
            raise SettlementInputError(msg)
        offers.append(
            Offer(
                id=str(_req(raw, "id", where)),
                strategy=strategy,
                reserve_products=products,
                fixed_fee_sek_per_month=_schedule(
                    _req(raw, "fixed_fee_sek_per_month", where), f"{where}.fixed_fee_sek_per_month"
                ),
                shares_reserve_revenue=raw.get("owner_revenue_share") == "contract_default",
            )
        )
    return OfferBook(tuple(offers), single, ranged, prices, contract)


def load_offers(path: Path | None = None) -> OfferBook:
    """The shipped ``offers.yaml``, or the file at ``path``."""
    if path is None:
        text = resources.files("v2g.settlement").joinpath("offers.yaml").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, Mapping):
        msg = "offers: the file is not a YAML mapping"
        raise SettlementInputError(msg)
    return parse_offers(data)
