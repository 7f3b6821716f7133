"""Market rules as data: products, auctions, LER energy management, aggregation and test criteria.

The numbers live in ``rules.yaml`` next to this module, each with its source; this module only
types them. :func:`load_rules` reads the packaged file (or another one with the same shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from v2g.units import ensure_utc


class Product(StrEnum):
    """Balancing products the platform sells as a BSP."""

    FCR_N = "fcr_n"
    FCR_D_UP = "fcr_d_up"
    FCR_D_DOWN = "fcr_d_down"
    MFRR = "mfrr"

    @classmethod
    def parse(cls, text: str) -> Product:
        """Accept ``fcr-n``, ``FCR_N``, ``fcr_d_up`` ...; the error lists what is known."""
        key = text.strip().lower().replace("-", "_")
        try:
            return cls(key)
        except ValueError:
            known = ", ".join(p.value.replace("_", "-") for p in cls)
            msg = f"product: {text!r} is not a known product ({known})"
            raise ValueError(msg) from None


FCR_PRODUCTS = (Product.FCR_N, Product.FCR_D_UP, Product.FCR_D_DOWN)


class RulesError(ValueError):
    """The rules file is malformed; the message names the key."""


@dataclass(frozen=True, slots=True)
class Auction:
    """One auction of a capacity product: gate closure ``closes_days_before`` days before delivery at local time."""

    name: str
    closes_days_before: int
    closes_at_local: time


@dataclass(frozen=True, slots=True)
class LerRules:
    """Limited-energy-reservoir rules of one FCR product (FCR-TR v1.1)."""

    endurance_min: float
    power_reservation_factor: float
    nem_power_factor: float
    nem_on_below_min: float
    nem_off_above_min: float
    aem_on_below_min: float
    aem_off_above_min: float
    source: str


@dataclass(frozen=True, slots=True)
class ProductRules:
    """Everything the platform needs to know about one product."""

    product: Product
    name: str
    kind: str
    direction: str
    curve_hz_fraction: tuple[tuple[float, float], ...]
    activation_fraction_1: float
    activation_within_s_1: float
    activation_within_s_2: float
    min_bid_mw: float
    bid_resolution_mw: float
    period_minutes: int
    auctions: tuple[Auction, ...]
    opens_days_before: int
    gate_closure_minutes_before: int | None
    pricing: str
    central_control_cap_mw: float | None
    ler: LerRules | None
    sources: dict[str, str]

    @property
    def period(self) -> timedelta:
        """Length of one delivery period (an hour for FCR, a quarter for mFRR)."""
        return timedelta(minutes=self.period_minutes)

    def response_fraction(self, f_hz: float) -> float:
        """Required response as a fraction of the committed capacity at frequency ``f_hz``.

        Positive = up-regulation (less import / more export), negative = down-regulation. Linear
        between the curve points, constant outside them. Products without a curve return 0.
        """
        pts = self.curve_hz_fraction
        if not pts:
            return 0.0
        if f_hz <= pts[0][0]:
            return pts[0][1]
        if f_hz >= pts[-1][0]:
            return pts[-1][1]
        for (f0, y0), (f1, y1) in pairwise(pts):
            if f0 <= f_hz <= f1:
                return y0 + (y1 - y0) * (f_hz - f0) / (f1 - f0)
        return 0.0  # pragma: no cover - the points are sorted and cover the range

    def gate_closures(self, delivery_start_at: datetime, tz: ZoneInfo) -> list[tuple[str, datetime]]:
        """Gate closures (UTC) of the auctions that sell the period starting at ``delivery_start_at``."""
        start = ensure_utc(delivery_start_at, field="delivery_start_at")
        if self.gate_closure_minutes_before is not None:
            return [("continuous", start - timedelta(minutes=self.gate_closure_minutes_before))]
        delivery_day: date = start.astimezone(tz).date()
        out = []
        for auction in self.auctions:
            day = delivery_day - timedelta(days=auction.closes_days_before)
            local = datetime.combine(day, auction.closes_at_local, tzinfo=tz)
            out.append((auction.name, ensure_utc(local)))
        return sorted(out, key=lambda item: item[1])

    def bidding_opens_at(self, delivery_start_at: datetime, tz: ZoneInfo) -> datetime:
        """When bids for this period may first be submitted (UTC)."""
        start = ensure_utc(delivery_start_at, field="delivery_start_at")
        day = start.astimezone(tz).date() - timedelta(days=self.opens_days_before)
        return ensure_utc(datetime.combine(day, time(0, 0), tzinfo=tz))


@dataclass(frozen=True, slots=True)
class AggregationRules:
    """Type qualification and extension of providing groups."""

    type_qualification_max_unit_kw: float
    extension_fraction: float
    extension_min_mw: float
    extension_cap_mw: float
    flexible_operation_min_fraction: float
    central_control_availability: float
    source: str


@dataclass(frozen=True, slots=True)
class PrequalRules:
    """Criteria of the pre-qualification tests (FCR-Test v1.1)."""

    fcr_d_ramp_rates_hz_per_s: tuple[float, ...]
    fcr_d_power_at_7_5_s_min_fraction: float
    fcr_d_energy_7_5_s_min_s: float
    fcr_d_deactivation_overshoot_max_s: float
    fcr_d_log_hz: float
    fcr_n_log_hz: float
    fcr_n_steady_state_tolerance: tuple[float, float]
    fcr_n_sine_periods_s: tuple[float, ...]
    fcr_n_sine_amplitude_hz: float
    fcr_d_sine_centre_hz: dict[str, float]
    linearity_max_rms_ratio: float
    source: str


@dataclass(frozen=True, slots=True)
class VerificationRules:
    """Delivery verification: telemetry interval, tolerance and the financial consequence."""

    telemetry_max_interval_s: float
    deviation_tolerance_fraction: float
    repayment_fraction: float
    sanction_fraction: float
    consequence_source: str


@dataclass(frozen=True, slots=True)
class ReferencePrices:
    """Mean capacity prices (EUR/MW per hour) of one period; None: no mean stands for it."""

    name: str
    eur_per_mw_h: dict[Product, float | None]
    source: str


@dataclass(frozen=True, slots=True)
class OfferCostRules:
    """The numbers of the provider's cost of holding reserve (``offer_cost`` in the rules file)."""

    throughput_mwh_per_mw_h: dict[Product, float]
    wear_eur_per_mwh: float
    round_trip_loss: float
    min_offer_eur_per_mw_h: dict[Product, float]
    source: str


@dataclass(frozen=True, slots=True)
class MarketRules:
    """All market rules of one jurisdiction."""

    tz: ZoneInfo
    products: dict[Product, ProductRules]
    single_point_of_failure_mw: float
    aggregation: AggregationRules
    prequal: PrequalRules
    verification: VerificationRules
    reference_prices: dict[str, ReferencePrices]
    default_reference: str
    fcr_d_down_first_delivery: date
    offer_cost: OfferCostRules

    def reference(self, name: str | None = None) -> ReferencePrices:
        """A named set of reference capacity prices (default: the current Swedish level)."""
        key = name or self.default_reference
        if key not in self.reference_prices:
            msg = f"reference_prices: {key!r} is not one of {', '.join(sorted(self.reference_prices))}"
            raise RulesError(msg)
        return self.reference_prices[key]

    def product_exists(self, product: Product, at: datetime) -> bool:
        """Whether the TSO bought ``product`` at ``at`` (FCR-D down only from its first delivery day)."""
        if product is Product.FCR_D_DOWN:
            return ensure_utc(at, field="at").astimezone(self.tz).date() >= self.fcr_d_down_first_delivery
        return True

    def __getitem__(self, product: Product) -> ProductRules:
        return self.products[product]


def _req(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        msg = f"{where}.{key}: missing in the market rules"
        raise RulesError(msg)
    return data[key]


def _hhmm(text: str, where: str) -> time:
    try:
        hours, minutes = (int(part) for part in str(text).split(":"))
        return time(hours, minutes)
    except ValueError as exc:
        msg = f"{where}: {text!r} is not HH:MM"
        raise RulesError(msg) from exc


def _product(product: Product, data: dict[str, Any]) -> ProductRules:
    where = f"products.{product.value}"
    curve = tuple((float(f), float(y)) for f, y in _req(data, "curve_hz_fraction", where))
    if any(b[0] <= a[0] for a, b in pairwise(curve)):
        msg = f"{where}.curve_hz_fraction: frequencies must increase"
        raise RulesError(msg)
    act = _req(data, "activation", where)
    auctions = tuple(
        Auction(
            name=str(_req(a, "name", f"{where}.auctions")),
            closes_days_before=int(_req(a, "closes_days_before", f"{where}.auctions")),
            closes_at_local=_hhmm(_req(a, "closes_at_local", f"{where}.auctions"), f"{where}.auctions.closes_at_local"),
        )
        for a in data.get("auctions", [])
    )
    gcb = data.get("gate_closure_minutes_before")
    if not auctions and gcb is None:
        msg = f"{where}: needs auctions or gate_closure_minutes_before"
        raise RulesError(msg)
    ler_data = data.get("ler")
    ler = (
        LerRules(
            **{
                k: float(_req(ler_data, k, f"{where}.ler"))
                for k in (
                    "endurance_min",
                    "power_reservation_factor",
                    "nem_power_factor",
                    "nem_on_below_min",
                    "nem_off_above_min",
                    "aem_on_below_min",
                    "aem_off_above_min",
                )
            },
            source=str(_req(ler_data, "source", f"{where}.ler")),
        )
        if ler_data
        else None
    )
    cap = data.get("central_control_cap_mw")
    return ProductRules(
        product=product,
        name=str(_req(data, "name", where)),
        kind=str(_req(data, "kind", where)),
        direction=str(_req(data, "direction", where)),
        curve_hz_fraction=curve,
        activation_fraction_1=float(_req(act, "fraction_1", f"{where}.activation")),
        activation_within_s_1=float(_req(act, "within_s_1", f"{where}.activation")),
        activation_within_s_2=float(_req(act, "within_s_2", f"{where}.activation")),
        min_bid_mw=float(_req(data, "min_bid_mw", where)),
        bid_resolution_mw=float(_req(data, "bid_resolution_mw", where)),
        period_minutes=int(_req(data, "period_minutes", where)),
        auctions=auctions,
        opens_days_before=int(_req(data, "opens_days_before", where)),
        gate_closure_minutes_before=int(gcb) if gcb is not None else None,
        pricing=str(_req(data, "pricing", where)),
        central_control_cap_mw=float(cap) if cap is not None else None,
        ler=ler,
        sources={k: str(v) for k, v in data.items() if k.endswith("_source")},
    )


def parse_rules(data: dict[str, Any]) -> MarketRules:
    """Type a rules mapping (the YAML's content)."""
    products_data = _req(data, "products", "rules")
    products = {}
    for product in Product:
        products[product] = _product(product, _req(products_data, product.value, "products"))
    agg = _req(data, "aggregation", "rules")
    pq = _req(data, "prequal", "rules")
    ver = _req(data, "verification", "rules")
    refs = _req(data, "reference_prices", "rules")
    cost = _req(data, "offer_cost", "rules")
    reference_prices = {
        str(name): ReferencePrices(
            name=str(name),
            eur_per_mw_h={
                p: (None if body.get(p.value) is None else float(body[p.value]))
                for p in FCR_PRODUCTS
                if p.value in body
            },
            source=str(_req(body, "source", f"reference_prices.{name}")),
        )
        for name, body in refs.items()
        if isinstance(body, dict)
    }
    return MarketRules(
        tz=ZoneInfo(str(_req(data, "timezone", "rules"))),
        products=products,
        single_point_of_failure_mw=float(_req(data, "single_point_of_failure_mw", "rules")),
        aggregation=AggregationRules(
            type_qualification_max_unit_kw=float(_req(agg, "type_qualification_max_unit_kw", "aggregation")),
            extension_fraction=float(_req(agg, "extension_fraction", "aggregation")),
            extension_min_mw=float(_req(agg, "extension_min_mw", "aggregation")),
            extension_cap_mw=float(_req(agg, "extension_cap_mw", "aggregation")),
            flexible_operation_min_fraction=float(_req(agg, "flexible_operation_min_fraction", "aggregation")),
            central_control_availability=float(_req(agg, "central_control_availability", "aggregation")),
            source=str(_req(agg, "source", "aggregation")),
        ),
        prequal=PrequalRules(
            fcr_d_ramp_rates_hz_per_s=tuple(float(x) for x in _req(pq, "fcr_d_ramp_rates_hz_per_s", "prequal")),
            fcr_d_power_at_7_5_s_min_fraction=float(_req(pq, "fcr_d_power_at_7_5_s_min_fraction", "prequal")),
            fcr_d_energy_7_5_s_min_s=float(_req(pq, "fcr_d_energy_7_5_s_min_s", "prequal")),
            fcr_d_deactivation_overshoot_max_s=float(_req(pq, "fcr_d_deactivation_overshoot_max_s", "prequal")),
            fcr_d_log_hz=float(_req(pq, "fcr_d_log_hz", "prequal")),
            fcr_n_log_hz=float(_req(pq, "fcr_n_log_hz", "prequal")),
            fcr_n_steady_state_tolerance=(
                float(_req(pq, "fcr_n_steady_state_tolerance", "prequal")[0]),
                float(_req(pq, "fcr_n_steady_state_tolerance", "prequal")[1]),
            ),
            fcr_n_sine_periods_s=tuple(float(x) for x in _req(pq, "fcr_n_sine_periods_s", "prequal")),
            fcr_n_sine_amplitude_hz=float(_req(pq, "fcr_n_sine_amplitude_hz", "prequal")),
            fcr_d_sine_centre_hz={str(k): float(v) for k, v in _req(pq, "fcr_d_sine_centre_hz", "prequal").items()},
            linearity_max_rms_ratio=float(_req(pq, "linearity_max_rms_ratio", "prequal")),
            source=str(_req(pq, "source", "prequal")),
        ),
        verification=VerificationRules(
            telemetry_max_interval_s=float(_req(ver, "telemetry_max_interval_s", "verification")),
            deviation_tolerance_fraction=float(_req(ver, "deviation_tolerance_fraction", "verification")),
            repayment_fraction=float(_req(ver, "repayment_fraction", "verification")),
            sanction_fraction=float(_req(ver, "sanction_fraction", "verification")),
            consequence_source=str(_req(ver, "consequence_source", "verification")),
        ),
        reference_prices=reference_prices,
        default_reference=str(_req(refs, "default", "reference_prices")),
        fcr_d_down_first_delivery=date.fromisoformat(str(_req(data, "fcr_d_down_first_delivery", "rules"))),
        offer_cost=OfferCostRules(
            throughput_mwh_per_mw_h={
                Product(k): float(v) for k, v in _req(cost, "throughput_mwh_per_mw_h", "offer_cost").items()
            },
            wear_eur_per_mwh=float(_req(cost, "wear_eur_per_mwh", "offer_cost")),
            round_trip_loss=float(_req(cost, "round_trip_loss", "offer_cost")),
            min_offer_eur_per_mw_h={
                Product(k): float(v) for k, v in _req(cost, "min_offer_eur_per_mw_h", "offer_cost").items()
            },
            source="; ".join(str(v) for k, v in cost.items() if k.endswith("_source")),
        ),
    )


def load_rules(path: Path | None = None) -> MarketRules:
    """Load the market rules from ``path`` or, by default, the packaged Swedish rules."""
    if path is None:
        return default_rules()
    return parse_rules(yaml.safe_load(path.read_text(encoding="utf-8")))


@cache
def default_rules() -> MarketRules:
    """The packaged Swedish market rules (cached)."""
    text = resources.files("v2g.markets").joinpath("rules.yaml").read_text(encoding="utf-8")
    return parse_rules(yaml.safe_load(text))
