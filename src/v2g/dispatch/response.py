"""Frequency -> required response per committed product.

Response is in grid terms: positive = up-regulation (the EV imports less or exports more), which
lowers the EV's power ``p_kw`` by the same amount.
"""

from __future__ import annotations

from collections.abc import Mapping

from v2g.markets.rules import FCR_PRODUCTS, MarketRules, Product


def required_response_kw(
    committed_kw: Mapping[Product, float], f_hz: float, rules: MarketRules
) -> dict[Product, float]:
    """Required response (kW, grid-positive up) of each frequency product at ``f_hz``."""
    return {p: committed_kw.get(p, 0.0) * rules[p].response_fraction(f_hz) for p in FCR_PRODUCTS}


def curve_breakpoints_hz(rules: MarketRules) -> list[float]:
    """Every frequency at which some FCR product's curve bends (sorted)."""
    return sorted({f for p in FCR_PRODUCTS for f, _ in rules[p].curve_hz_fraction})


def mfrr_required_kw(activated_kw: float, elapsed_s: float, rules: MarketRules) -> float:
    """mFRR activation: a linear ramp to the activated volume within the full activation time (12.5 min)."""
    full_s = rules[Product.MFRR].activation_within_s_1
    if elapsed_s <= 0:
        return 0.0
    return activated_kw * min(1.0, elapsed_s / full_s)
