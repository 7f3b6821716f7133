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
    nem_max_power_factor: float
    f0_hz: float  # the AEM reference frequency of zero activation
    band_hz: float  # the frequency change of full activation (0.1 Hz FCR-N, 0.4 Hz FCR-D)
    source: str
    restore_within_min: float | None = None  # FCR-D: full capacity restored within this time


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
    """Type qualification and extension of providing groups (FCR-TR v1.1 §3.11)."""

    type_qualification_max_unit_kw: float
    extension_fraction: float
    extension_min_mw: float
    extension_max_increment_mw: float
    flexible_operation_min_fraction: float
    source: str


@dataclass(frozen=True, slots=True)
class SinglePointOfFailureRules:
    """Largest provision behind one point of failure (a group, or a central controller)."""

    per_product_mw: float
    combined_per_direction_mw: float
    source: str


@dataclass(frozen=True, slots=True)
class CentralControlRules:
    """SvK's market-wide cap on centrally controlled FCR and the platform's configured share of it."""

    market_cap_mw: dict[Product, float]
    allocation_mw: dict[Product, float]
    availability: float
    sources: dict[str, str]


@dataclass(frozen=True, slots=True)
class LerClassRules:
    """When an entity is a limited energy reservoir, and the energy-management averaging window."""

    full_activation_hours: float
    rolling_window_s: int
    source: str


@dataclass(frozen=True, slots=True)
class StepRules:
    """FCR-N step sequence (Table 3) and Requirement 1."""

    steps: tuple[tuple[float, float, str], ...]  # (f_hz, duration_s, name)
    endurance_hold_s: float
    steady_state_tolerance: tuple[float, float]
    k_red_min: float
    source: str


@dataclass(frozen=True, slots=True)
class RampRules:
    """FCR-D ramp sequence (Table 4) and Requirements 1-4."""

    stabilise_hz_up: float
    stabilise_s: float
    ramps: tuple[tuple[int, float, float, float], ...]  # (ramp, rate_hz_per_s, target_hz_up, duration_s)
    endurance_ramp_3_s: float
    steady_state_tolerance: tuple[float, float]
    power_at_7_5_s_min_fraction: float
    energy_7_5_s_min_s: float
    deactivation_overshoot_max_s: float
    deactivation_window_s: float
    deactivation_reference_fraction: float
    k_red_min: float
    source: str


@dataclass(frozen=True, slots=True)
class SineRules:
    """Sine tests (Table 6) and the linearity requirement."""

    amplitude_hz: float
    centre_hz: dict[str, float]
    periods_s: dict[str, tuple[float, ...]]
    stationary_periods: dict[float, int]
    settle_periods: int
    band_hz: dict[str, float]
    linearity_max_rms_ratio: float
    source: str


@dataclass(frozen=True, slots=True)
class PowerSystemModel:
    """One parameter set of the power-system model G(jω) (Table 7)."""

    s_n_mw: float
    kinetic_energy_mws: float

    @property
    def h_s(self) -> float:
        """Inertia constant H = kinetic energy / S_n."""
        return self.kinetic_energy_mws / self.s_n_mw


@dataclass(frozen=True, slots=True)
class LerTestStep:
    """One step of an LER energy-management test (Tables 12/13)."""

    f_hz: float  # FCR-N, or FCR-D up (FCR-D down mirrors around 50 Hz)
    duration_s: float
    nem: bool
    aem: bool
    until: str  # "-" or the objective the step holds for


@dataclass(frozen=True, slots=True)
class PrequalRules:
    """Criteria of the pre-qualification tests (FCR-TR v1.1, FCR-Test v1.1)."""

    log_hz: dict[str, float]
    steady_state_window_s: float
    steps: StepRules
    ramps: RampRules
    sine: SineRules
    f0_hz: float
    k_f_pu_per_hz: float
    volume_mw: dict[str, float]
    stability_model: PowerSystemModel
    performance_model: PowerSystemModel
    stability_radius: float
    stability_margin_factor: float
    k_margin: float
    disturbance_time_constant_s: float
    k_red_dyn_min: dict[str, float]
    frequency_measurement_time_constant_s: float
    ler_fcr_n: tuple[LerTestStep, ...]
    ler_fcr_d: tuple[LerTestStep, ...]
    ler_max_step_s: float
    ler_log_hz: float
    protocol_area: str
    protocol_timezone: str
    source: str
    sources: dict[str, str]

    def family(self, product: Product) -> str:
        """``fcr_n`` or ``fcr_d``: the key of per-family settings."""
        return "fcr_n" if product is Product.FCR_N else "fcr_d"

    def log_hz_of(self, product: Product) -> float:
        """Test logging rate of ``product``."""
        return self.log_hz[self.family(product)]


@dataclass(frozen=True, slots=True)
class VerificationRules:
    """Delivery verification: telemetry interval, measurement accuracy and the financial consequence."""

    telemetry_max_interval_s: float
    power_accuracy: tuple[tuple[float, float], ...]  # (below_mw, fraction)
    repayment_fraction: float
    sanction_fraction: float
    consequence_source: str

    def power_accuracy_fraction(self, rated_mw: float) -> float:
        """Accuracy of the active power measurement of an entity of ``rated_mw``."""
        for below_mw, fraction in self.power_accuracy:
            if rated_mw < below_mw:
                return fraction
        return self.power_accuracy[-1][1]


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
    single_point_of_failure: SinglePointOfFailureRules
    central_control: CentralControlRules
    aggregation: AggregationRules
    ler_classification: LerClassRules
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
                    "nem_max_power_factor",
                    "f0_hz",
                    "band_hz",
                )
            },
            source=str(_req(ler_data, "source", f"{where}.ler")),
            restore_within_min=(
                float(ler_data["restore_within_min"]) if ler_data.get("restore_within_min") is not None else None
            ),
        )
        if ler_data
        else None
    )
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
    ver = _req(data, "verification", "rules")
    spof = _req(data, "single_point_of_failure", "rules")
    central = _req(data, "central_control", "rules")
    ler_class = _req(data, "ler_classification", "rules")

    def per_product(values: dict[str, Any], where: str) -> dict[Product, float]:
        return {Product.parse(str(k)): float(v) for k, v in values.items()} if values else {}

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
        single_point_of_failure=SinglePointOfFailureRules(
            per_product_mw=float(_req(spof, "per_product_mw", "single_point_of_failure")),
            combined_per_direction_mw=float(_req(spof, "combined_per_direction_mw", "single_point_of_failure")),
            source=str(_req(spof, "source", "single_point_of_failure")),
        ),
        central_control=CentralControlRules(
            market_cap_mw=per_product(_req(central, "market_cap_mw", "central_control"), "market_cap_mw"),
            allocation_mw=per_product(_req(central, "allocation_mw", "central_control"), "allocation_mw"),
            availability=float(_req(central, "availability", "central_control")),
            sources={k: str(v) for k, v in central.items() if k.endswith("_source")},
        ),
        aggregation=AggregationRules(
            type_qualification_max_unit_kw=float(_req(agg, "type_qualification_max_unit_kw", "aggregation")),
            extension_fraction=float(_req(agg, "extension_fraction", "aggregation")),
            extension_min_mw=float(_req(agg, "extension_min_mw", "aggregation")),
            extension_max_increment_mw=float(_req(agg, "extension_max_increment_mw", "aggregation")),
            flexible_operation_min_fraction=float(_req(agg, "flexible_operation_min_fraction", "aggregation")),
            source=str(_req(agg, "source", "aggregation")),
        ),
        ler_classification=LerClassRules(
            full_activation_hours=float(_req(ler_class, "full_activation_hours", "ler_classification")),
            rolling_window_s=int(_req(ler_class, "rolling_window_s", "ler_classification")),
            source=str(_req(ler_class, "source", "ler_classification")),
        ),
        prequal=_prequal(_req(data, "prequal", "rules")),
        verification=VerificationRules(
            telemetry_max_interval_s=float(_req(ver, "telemetry_max_interval_s", "verification")),
            power_accuracy=tuple((float(a), float(b)) for a, b in _req(ver, "power_accuracy", "verification")),
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


def _pair(values: Any, where: str) -> tuple[float, float]:
    if not isinstance(values, list) or len(values) != 2:
        msg = f"{where}: expected [low, high]"
        raise RulesError(msg)
    return float(values[0]), float(values[1])


def _ler_steps(rows: Any, where: str) -> tuple[LerTestStep, ...]:
    steps = []
    for i, row in enumerate(rows):
        if len(row) != 5:
            msg = f"{where}[{i}]: expected [f_hz, minutes, nem, aem, until]"
            raise RulesError(msg)
        f_hz, minutes, nem, aem, until = row

        def flag(v: Any, name: str, i: int = i) -> bool:
            text = {True: "on", False: "off"}.get(v, str(v))
            if text not in ("on", "off"):
                msg = f"{where}[{i}].{name}: {v!r} is not on/off"
                raise RulesError(msg)
            return text == "on"

        steps.append(LerTestStep(float(f_hz), float(minutes) * 60.0, flag(nem, "nem"), flag(aem, "aem"), str(until)))
    return tuple(steps)


def _prequal(pq: dict[str, Any]) -> PrequalRules:
    w = "prequal"
    st = _req(pq, "fcr_n_steps", w)
    rp = _req(pq, "fcr_d_ramps", w)
    sn = _req(pq, "sine", w)
    ps = _req(pq, "power_system", w)
    stab = _req(pq, "stability", w)
    perf = _req(pq, "performance", w)
    proto = _req(pq, "protocol", w)
    return PrequalRules(
        log_hz={str(k): float(v) for k, v in _req(pq, "log_hz", w).items()},
        steady_state_window_s=float(_req(pq, "steady_state_window_s", w)),
        steps=StepRules(
            steps=tuple((float(f), float(d), str(n)) for f, d, n in _req(st, "steps", f"{w}.fcr_n_steps")),
            endurance_hold_s=float(_req(st, "endurance_hold_s", f"{w}.fcr_n_steps")),
            steady_state_tolerance=_pair(_req(st, "steady_state_tolerance", f"{w}.fcr_n_steps"), f"{w}.fcr_n_steps"),
            k_red_min=float(_req(st, "k_red_min", f"{w}.fcr_n_steps")),
            source=str(_req(st, "source", f"{w}.fcr_n_steps")),
        ),
        ramps=RampRules(
            stabilise_hz_up=float(_req(rp, "stabilise_hz_up", f"{w}.fcr_d_ramps")),
            stabilise_s=float(_req(rp, "stabilise_s", f"{w}.fcr_d_ramps")),
            ramps=tuple((int(n), float(r), float(f), float(d)) for n, r, f, d in _req(rp, "ramps", f"{w}.fcr_d_ramps")),
            endurance_ramp_3_s=float(_req(rp, "endurance_ramp_3_s", f"{w}.fcr_d_ramps")),
            steady_state_tolerance=_pair(_req(rp, "steady_state_tolerance", f"{w}.fcr_d_ramps"), f"{w}.fcr_d_ramps"),
            power_at_7_5_s_min_fraction=float(_req(rp, "power_at_7_5_s_min_fraction", f"{w}.fcr_d_ramps")),
            energy_7_5_s_min_s=float(_req(rp, "energy_7_5_s_min_s", f"{w}.fcr_d_ramps")),
            deactivation_overshoot_max_s=float(_req(rp, "deactivation_overshoot_max_s", f"{w}.fcr_d_ramps")),
            deactivation_window_s=float(_req(rp, "deactivation_window_s", f"{w}.fcr_d_ramps")),
            deactivation_reference_fraction=float(_req(rp, "deactivation_reference_fraction", f"{w}.fcr_d_ramps")),
            k_red_min=float(_req(rp, "k_red_min", f"{w}.fcr_d_ramps")),
            source=str(_req(rp, "source", f"{w}.fcr_d_ramps")),
        ),
        sine=SineRules(
            amplitude_hz=float(_req(sn, "amplitude_hz", f"{w}.sine")),
            centre_hz={str(k): float(v) for k, v in _req(sn, "centre_hz", f"{w}.sine").items()},
            periods_s={str(k): tuple(float(x) for x in v) for k, v in _req(sn, "periods_s", f"{w}.sine").items()},
            stationary_periods={float(k): int(v) for k, v in _req(sn, "stationary_periods", f"{w}.sine").items()},
            settle_periods=int(_req(sn, "settle_periods", f"{w}.sine")),
            band_hz={str(k): float(v) for k, v in _req(sn, "band_hz", f"{w}.sine").items()},
            linearity_max_rms_ratio=float(_req(sn, "linearity_max_rms_ratio", f"{w}.sine")),
            source=str(_req(sn, "source", f"{w}.sine")),
        ),
        f0_hz=float(_req(ps, "f0_hz", f"{w}.power_system")),
        k_f_pu_per_hz=float(_req(ps, "k_f_pu_per_hz", f"{w}.power_system")),
        volume_mw={str(k): float(v) for k, v in _req(ps, "volume_mw", f"{w}.power_system").items()},
        stability_model=PowerSystemModel(
            s_n_mw=float(_req(ps["stability"], "s_n_mw", f"{w}.power_system.stability")),
            kinetic_energy_mws=float(_req(ps["stability"], "kinetic_energy_mws", f"{w}.power_system.stability")),
        ),
        performance_model=PowerSystemModel(
            s_n_mw=float(_req(ps["performance"], "s_n_mw", f"{w}.power_system.performance")),
            kinetic_energy_mws=float(_req(ps["performance"], "kinetic_energy_mws", f"{w}.power_system.performance")),
        ),
        stability_radius=float(_req(stab, "radius", f"{w}.stability")),
        stability_margin_factor=float(_req(stab, "margin_factor", f"{w}.stability")),
        k_margin=float(_req(perf, "k_margin", f"{w}.performance")),
        disturbance_time_constant_s=float(_req(perf, "disturbance_time_constant_s", f"{w}.performance")),
        k_red_dyn_min={str(k): float(v) for k, v in _req(perf, "k_red_dyn_min", f"{w}.performance").items()},
        frequency_measurement_time_constant_s=float(_req(pq, "frequency_measurement_time_constant_s", w)),
        ler_fcr_n=_ler_steps(_req(pq, "ler_fcr_n", w), f"{w}.ler_fcr_n"),
        ler_fcr_d=_ler_steps(_req(pq, "ler_fcr_d", w), f"{w}.ler_fcr_d"),
        ler_max_step_s=float(_req(pq, "ler_max_step_min", w)) * 60.0,
        ler_log_hz=float(_req(pq, "ler_log_hz", w)),
        protocol_area=str(_req(proto, "area", f"{w}.protocol")),
        protocol_timezone=str(_req(proto, "timezone", f"{w}.protocol")),
        source=str(_req(pq, "source", w)),
        sources={
            **{k: str(v) for k, v in pq.items() if k.endswith("_source")},
            **{
                name: str(_req(sec, "source", f"{w}.{name}"))
                for name, sec in (
                    ("fcr_n_steps", st),
                    ("fcr_d_ramps", rp),
                    ("sine", sn),
                    ("power_system", ps),
                    ("stability", stab),
                    ("performance", perf),
                    ("protocol", proto),
                )
            },
        },
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
