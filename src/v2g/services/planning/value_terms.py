"""The terms of the quick value indication, each a small function of real products and prices.

* **Nights a year**: the nights before a departure in the owner's weekday table (0-7 a week) times
  the weeks of a year times the share of those nights the EV is plugged in (a ranged assumption).
* **Reserve capacity an EV can sell in an hour**: what the EV can move up (discharge, or charge
  less) and down (charge more) around its planned power, within the Nordic FCR rules for limited
  energy reservoirs (FCR-TR v1.1): FCR-N is symmetric, so it sells ``min(up, down) / 1.34`` with
  an hour of energy each way; FCR-D up and down sell their own direction with 20 minutes of energy
  (a charge-only EV cannot restore energy, so it must hold a full activation for 2 hours). The
  hour sells either FCR-N or the two FCR-D products, whichever earns more at the price level.
* **Reserve revenue**: the capacity of each bid hour times the price level of the product times
  the share of offered hours the auction accepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time
from decimal import Decimal

import numpy as np

from v2g.planning.model import Product
from v2g.planning.rules import PlanningRules

DAYS_PER_WEEK = Decimal(7)
DAYS_PER_YEAR = Decimal("365.25")
ONE_DIRECTION_ENDURANCE_H = 2.0  # FCR-TR v1.1: a charge-only unit cannot use NEM: full activation for 2 h


def nights_per_year(departures: Sequence[time | None], plug_in_share: Decimal) -> Decimal:
    """Plugged-in nights a year: the nights before a departure in the weekday table, times the share plugged in."""
    if len(departures) != 7:
        msg = f"departures: {len(departures)} entries; one per weekday (7) is needed"
        raise ValueError(msg)
    if not Decimal(0) <= plug_in_share <= 1:
        msg = f"plug_in_share: {plug_in_share} must lie between 0 and 1"
        raise ValueError(msg)
    per_week = Decimal(sum(1 for d in departures if d is not None))
    return per_week / DAYS_PER_WEEK * DAYS_PER_YEAR * plug_in_share


@dataclass(frozen=True, slots=True)
class HourState:
    """An EV in one bid hour: its planned power (positive charges) and energy, and its limits."""

    p_kw: float
    soc_low_kwh: float  # the least energy in the hour (what up regulation may take)
    soc_high_kwh: float  # the most energy in the hour (what down regulation adds to)
    min_soc_kwh: float
    battery_kwh: float
    max_charge_kw: float
    max_discharge_kw: float  # 0 for an EV or charger that cannot discharge


def sellable_kw(
    state: HourState,
    products: Sequence[Product],
    rules: PlanningRules,
    prices_eur_per_mw_h: Mapping[Product, Decimal],
) -> dict[Product, float]:
    """The capacity (kW) per product the pool can sell for this EV in this hour.

    Up is discharging more or charging less, down is charging more; each is limited by power and by
    the energy the product's endurance needs above the minimum SoC or below a full battery.
    """
    p = state.p_kw
    up_kw = max(0.0, state.max_discharge_kw + p) if state.max_discharge_kw > 0 else max(0.0, p)
    down_kw = max(0.0, state.max_charge_kw - p)
    above_min_kwh = max(0.0, state.soc_low_kwh - state.min_soc_kwh)
    below_full_kwh = max(0.0, state.battery_kwh - state.soc_high_kwh)
    d_endurance_h = rules.fcr_d_endurance_h if state.max_discharge_kw > 0 else ONE_DIRECTION_ENDURANCE_H
    options: list[dict[Product, float]] = []
    if Product.FCR_N in products:
        n_kw = min(up_kw, down_kw) / rules.fcr_n_power_range_factor
        n_kw = min(n_kw, above_min_kwh / rules.fcr_n_endurance_h, below_full_kwh / rules.fcr_n_endurance_h)
        options.append({Product.FCR_N: n_kw})
    d_option: dict[Product, float] = {}
    if Product.FCR_D_UP in products:
        d_option[Product.FCR_D_UP] = min(up_kw, above_min_kwh / d_endurance_h)
    if Product.FCR_D_DOWN in products:
        d_option[Product.FCR_D_DOWN] = min(down_kw, below_full_kwh / d_endurance_h)
    if d_option:
        options.append(d_option)
    if not options:
        return {}

    def worth(option: Mapping[Product, float]) -> float:
        return sum(kw * float(prices_eur_per_mw_h[q]) for q, kw in option.items())

    return max(options, key=worth)


def reserve_eur(
    hours: Sequence[Mapping[Product, float]], prices_eur_per_mw_h: Mapping[Product, Decimal], acceptance: Decimal
) -> Decimal:
    """Expected revenue of the bid hours: capacity (MW) x price level x accepted share."""
    if not Decimal(0) <= acceptance <= 1:
        msg = f"reserve_acceptance: {acceptance} must lie between 0 and 1"
        raise ValueError(msg)
    total = Decimal(0)
    for hour in hours:
        for product, kw in hour.items():
            total += Decimal(repr(round(kw, 6))) / 1000 * prices_eur_per_mw_h[product]
    return total * acceptance


def hourly_states(
    p_kw: np.ndarray,
    soc_kwh: np.ndarray,
    first_quarter: int,
    n_hours: int,
    *,
    min_soc_kwh: float,
    battery_kwh: float,
    max_charge_kw: float,
    max_discharge_kw: float,
) -> list[HourState]:
    """The EV's state in each of ``n_hours`` whole hours from quarter ``first_quarter`` of a plan."""
    out = []
    for h in range(n_hours):
        q = first_quarter + 4 * h
        quarters = p_kw[q : q + 4]
        soc = soc_kwh[q : q + 5]
        soc = soc[~np.isnan(soc)]
        if len(quarters) < 4 or len(soc) == 0:
            break
        out.append(
            HourState(
                p_kw=float(np.mean(quarters)),
                soc_low_kwh=float(np.min(soc)),
                soc_high_kwh=float(np.max(soc)),
                min_soc_kwh=min_soc_kwh,
                battery_kwh=battery_kwh,
                max_charge_kw=max_charge_kw,
                max_discharge_kw=max_discharge_kw,
            )
        )
    return out
