"""Providing groups and the aggregation rules (FCR-TR v1.1 flexible pre-qualification)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from v2g.markets.rules import MarketRules, Product


@dataclass(frozen=True, slots=True)
class GroupUnit:
    """One unit of a providing group (a charger with its type)."""

    charger_id: str
    ev_id: str
    unit_type: str  # vendor/model/firmware: identical units share it
    capacity_kw: float


class AggregationError(ValueError):
    """A group breaks an aggregation rule; the message names it."""


def check_type_qualification(units: Sequence[GroupUnit], rules: MarketRules) -> str:
    """A type-qualified group holds identical units of at most the rule's unit size; returns the type."""
    if not units:
        msg = "group.units: empty group"
        raise AggregationError(msg)
    types = {u.unit_type for u in units}
    if len(types) != 1:
        msg = f"group.units: type qualification needs identical units, found {sorted(types)}"
        raise AggregationError(msg)
    limit = rules.aggregation.type_qualification_max_unit_kw
    big = [u.charger_id for u in units if u.capacity_kw > limit]
    if big:
        msg = f"group.units[{big[0]}].capacity_kw: above the {limit:.0f} kW type-qualification limit"
        raise AggregationError(msg)
    seen: set[str] = set()
    for u in units:
        if u.charger_id in seen:
            msg = f"group.units[{u.charger_id}]: listed twice"
            raise AggregationError(msg)
        seen.add(u.charger_id)
    return types.pop()


def max_without_retest_mw(tested_mw: float, rules: MarketRules) -> float:
    """Largest capacity a type-qualified group may grow to without new tests (FCR-TR v1.1 §3.11.1):
    by 25 % of the initial prequalification or 1 MW, whichever is higher, the extension at most 3 MW."""
    agg = rules.aggregation
    increment = min(max(tested_mw * agg.extension_fraction, agg.extension_min_mw), agg.extension_max_increment_mw)
    return tested_mw + increment


def extension_needs_retest(tested_mw: float, new_mw: float, rules: MarketRules) -> bool:
    """True when growing the group from ``tested_mw`` to ``new_mw`` needs a new test."""
    return new_mw > max_without_retest_mw(tested_mw, rules) + 1e-9


def within_flexible_operation(tested_mw: float, operating_mw: float, rules: MarketRules) -> bool:
    """Flexible operation: 80-100 % of the tested configuration."""
    return rules.aggregation.flexible_operation_min_fraction * tested_mw - 1e-9 <= operating_mw <= tested_mw + 1e-9


def is_ler(up_kwh: float, down_kwh: float, capacity_kw: float, product: Product, rules: MarketRules) -> bool:
    """A limited energy reservoir: less than two hours of continuous full activation of ``capacity_kw``
    in the product's direction (FCR-N: the smaller of both) (FCR-TR v1.1 §3.5)."""
    energy = {Product.FCR_N: min(up_kwh, down_kwh), Product.FCR_D_UP: up_kwh, Product.FCR_D_DOWN: down_kwh}[product]
    return energy < rules.ler_classification.full_activation_hours * capacity_kw - 1e-9


def check_one_directional(
    up_kwh: float, down_kwh: float, capacity_kw: float, product: Product, rules: MarketRules
) -> None:
    """One-directional chargers cannot restore energy with NEM, so the pool must hold full activation
    for at least two hours (FCR-TR v1.1 §3.5); raises naming the shortfall otherwise."""
    if is_ler(up_kwh, down_kwh, capacity_kw, product, rules):
        hours = rules.ler_classification.full_activation_hours
        msg = (
            f"group.units: one-directional chargers need {hours:.0f} h of full activation "
            f"({hours * capacity_kw:.1f} kWh) for {product.value}; the pool holds less"
        )
        raise AggregationError(msg)
