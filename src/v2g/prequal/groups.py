"""Providing groups and the aggregation rules (FCR-TR v1.1 flexible pre-qualification)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from v2g.markets.rules import MarketRules


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
    """Largest capacity a tested group may grow to without new tests: +25 % or +1 MW, whichever larger, up to 3 MW."""
    agg = rules.aggregation
    grown = tested_mw + max(tested_mw * agg.extension_fraction, agg.extension_min_mw)
    return max(tested_mw, min(grown, agg.extension_cap_mw))


def extension_needs_retest(tested_mw: float, new_mw: float, rules: MarketRules) -> bool:
    """True when growing the group from ``tested_mw`` to ``new_mw`` needs a new test."""
    return new_mw > max_without_retest_mw(tested_mw, rules) + 1e-9


def within_flexible_operation(tested_mw: float, operating_mw: float, rules: MarketRules) -> bool:
    """Flexible operation: 80-100 % of the tested configuration."""
    return rules.aggregation.flexible_operation_min_fraction * tested_mw - 1e-9 <= operating_mw <= tested_mw + 1e-9
