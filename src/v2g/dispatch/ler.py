"""Energy management for limited-energy reservoirs (LER): NEM and AEM per EV, vectorised (FCR-TR v1.1 §3.5).

Each EV's reservoir is managed on its own; within a providing group the NEM powers add up to at
most the group's NEM reservation. The values live in the market rules.

* Thresholds (Table 11) are remaining endurances at full activation of the EV's capacity C (FCR-N
  counts only the energy left after the FCR-D reservation in the same direction, so FCR-N never
  depletes FCR-D):
  FCR-N NEM on below 30 min and off at 57.5 min, FCR-D NEM on below 20 min and off at 20 min, AEM on
  below 5 min and off at 10 min. FCR-N looks at both directions, FCR-D up at the upward and FCR-D
  down at the downward endurance.
* NEM (eq. 14-17): NEM_allowed is -1 (restore by charging) or +1 (by discharging) only while
  49.9 < f < 50.1 Hz, else 0 (leaving the band also ends the NEM state); NEM_current is the rolling
  mean of NEM_allowed over 5 minutes at 1 s, and the setpoint moves by factor·C·NEM_current
  (0.34 FCR-N, 0.20 FCR-D).
* AEM (eq. 18-23): the frequency reference of the product is the 5-minute rolling mean of f_AEM,
  which is f0 (50.0 / 49.9 / 50.1 Hz) while AEM is off and the saturated measured frequency while
  on, so the response winds down over 5 minutes instead of stopping at once.
* FCR-D must be back at full endurance within 120 min of the allowed start of recovery; the time
  in the normal band with a deficit is counted and reported as overdue beyond that.

:meth:`LerManager.update` is called once per second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from v2g.dispatch.pool import BoolArray, FloatArray, ReservePool
from v2g.markets.rules import FCR_PRODUCTS, LerRules, MarketRules, Product

_INF = 1e9


@dataclass(frozen=True, slots=True)
class EnergyState:
    """Energy window of each EV in the pool (kWh), with charge/discharge efficiencies."""

    soc_kwh: FloatArray
    soc_min_kwh: FloatArray
    soc_max_kwh: FloatArray
    eta_charge: float = 0.95
    eta_discharge: float = 0.95

    def deliverable_up_kwh(self) -> FloatArray:
        """Energy each EV can still give the grid (discharging to its floor)."""
        return np.maximum(self.soc_kwh - self.soc_min_kwh, 0.0) * self.eta_discharge

    def absorbable_down_kwh(self) -> FloatArray:
        """Energy each EV can still take from the grid (charging to its ceiling)."""
        return np.maximum(self.soc_max_kwh - self.soc_kwh, 0.0) / self.eta_charge


def _minutes(energy_kwh: FloatArray, drain_kw: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(drain_kw > 1e-9, energy_kwh / np.maximum(drain_kw, 1e-9) * 60.0, _INF)


def endurance_min(
    pool: ReservePool, energy: EnergyState, shift_kw: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """Remaining endurance (minutes) up and down at full activation of every reserve each EV holds,
    from its current setpoint (baseline plus energy-management shift) (FCR-TR v1.1 eq. 27-28)."""
    setpoint = pool.baseline_p_kw + (shift_kw if shift_kw is not None else 0.0)  # EV sign: + charges
    up_kw = pool.reserve_kw[Product.FCR_N] + pool.reserve_kw[Product.FCR_D_UP]
    down_kw = pool.reserve_kw[Product.FCR_N] + pool.reserve_kw[Product.FCR_D_DOWN]
    up = np.where(up_kw > 1e-9, _minutes(energy.deliverable_up_kwh(), up_kw - setpoint), _INF)
    down = np.where(down_kw > 1e-9, _minutes(energy.absorbable_down_kwh(), down_kw + setpoint), _INF)
    return up, down


def endurance_by_product(
    pool: ReservePool,
    energy: EnergyState,
    shift_kw: FloatArray | None = None,
    aem: dict[Product, BoolArray] | None = None,
) -> dict[Product, FloatArray]:
    """Remaining endurance per product and EV (minutes), eq. 27-28 with the setpoint: FCR-N is the
    smaller of up and down, FCR-D up the upward and FCR-D down the downward endurance; an EV in AEM
    reports 0 for that product."""
    setpoint = pool.baseline_p_kw + (shift_kw if shift_kw is not None else 0.0)
    up_e, down_e = energy.deliverable_up_kwh(), energy.absorbable_down_kwh()
    out: dict[Product, FloatArray] = {}
    for product in FCR_PRODUCTS:
        c = pool.reserve_kw[product]
        up = _minutes(up_e, c - setpoint) if product is not Product.FCR_D_DOWN else np.full(len(c), _INF)
        down = _minutes(down_e, c + setpoint) if product is not Product.FCR_D_UP else np.full(len(c), _INF)
        value = np.where(c > 1e-9, np.minimum(up, down), _INF)
        if aem is not None:
            value = np.where(aem[product], 0.0, value)
        out[product] = value
    return out


def _rules(rules: MarketRules, product: Product) -> LerRules:
    ler = rules[product].ler
    if ler is None:  # pragma: no cover - the packaged rules define LER for every FCR product
        msg = f"rules.products.{product.value}.ler: missing"
        raise ValueError(msg)
    return ler


def _energy_for(
    product: Product, up_kwh: FloatArray, down_kwh: FloatArray, pool: ReservePool, rules: MarketRules
) -> tuple[FloatArray, FloatArray]:
    """The energy each product's thresholds see: the reservations are per product (Table 10, summed
    when several are held) and FCR-N must never deplete FCR-D, so FCR-N sees what is left after
    FCR-D's reservation in the same direction; FCR-D sees the whole reservoir."""
    if product is not Product.FCR_N:
        return up_kwh, down_kwh
    d = _rules(rules, Product.FCR_D_UP).endurance_min / 60.0
    up = np.maximum(up_kwh - pool.reserve_kw[Product.FCR_D_UP] * d, 0.0)
    down = np.maximum(down_kwh - pool.reserve_kw[Product.FCR_D_DOWN] * d, 0.0)
    return up, down


def saturated_hz(product: Product, f_hz: float, rules: MarketRules) -> float:
    """The measured frequency as the product sees it (eq. 20-22)."""
    f0 = _rules(rules, product).f0_hz
    if product is Product.FCR_N:
        return min(max(f_hz, 49.9), 50.1)
    if product is Product.FCR_D_UP:
        return min(f_hz, f0)
    return max(f_hz, f0)


class _Rolling:
    """Rolling mean over the last ``window`` samples of a per-EV value, starting filled with ``initial``."""

    def __init__(self, window: int, initial: FloatArray) -> None:
        self.buffer = np.tile(initial, (window, 1)).astype(float)
        self.total = self.buffer.sum(axis=0)
        self.k = 0

    def push(self, value: FloatArray) -> FloatArray:
        self.total += value - self.buffer[self.k]
        self.buffer[self.k] = value
        self.k = (self.k + 1) % len(self.buffer)
        mean: FloatArray = self.total / len(self.buffer)
        return mean


@dataclass
class LerManager:
    """NEM/AEM state per EV and product, updated once per second."""

    rules: MarketRules
    size: int
    nem_low: dict[Product, BoolArray] = field(init=False)  # restore by charging (upward side low)
    nem_high: dict[Product, BoolArray] = field(init=False)  # restore by discharging (downward side low)
    nem_current: dict[Product, FloatArray] = field(init=False)
    aem: dict[Product, BoolArray] = field(init=False)
    ref_shift_hz: dict[Product, FloatArray] = field(init=False)  # f_ref - f0 per EV
    recovering_s: dict[Product, FloatArray] = field(init=False)  # FCR-D: in-band seconds with a deficit
    _nem: dict[Product, _Rolling] = field(init=False)
    _ref: dict[Product, _Rolling] = field(init=False)

    def __post_init__(self) -> None:
        n, window = self.size, self.rules.ler_classification.rolling_window_s
        self.nem_low = {p: np.zeros(n, dtype=bool) for p in FCR_PRODUCTS}
        self.nem_high = {p: np.zeros(n, dtype=bool) for p in FCR_PRODUCTS}
        self.nem_current = {p: np.zeros(n) for p in FCR_PRODUCTS}
        self.aem = {p: np.zeros(n, dtype=bool) for p in FCR_PRODUCTS}
        self.ref_shift_hz = {p: np.zeros(n) for p in FCR_PRODUCTS}
        self.recovering_s = {p: np.zeros(n) for p in FCR_PRODUCTS}
        self._nem = {p: _Rolling(window, np.zeros(n)) for p in FCR_PRODUCTS}
        self._ref = {p: _Rolling(window, np.full(n, _rules(self.rules, p).f0_hz)) for p in FCR_PRODUCTS}

    @property
    def nem_active(self) -> BoolArray:
        """EVs whose setpoint NEM moves now (any product)."""
        active: BoolArray = np.any([np.abs(v) > 1e-12 for v in self.nem_current.values()], axis=0)
        return active

    @property
    def aem_active(self) -> BoolArray:
        """EVs in AEM for any product."""
        active: BoolArray = np.any(list(self.aem.values()), axis=0)
        return active

    def recovery_overdue(self, product: Product) -> BoolArray:
        """FCR-D EVs not back at full endurance within the allowed recovery time."""
        limit = _rules(self.rules, product).restore_within_min
        if limit is None:
            return np.zeros(self.size, dtype=bool)
        return self.recovering_s[product] > limit * 60.0

    def update(
        self, pool: ReservePool, energy: EnergyState, f_hz: float
    ) -> tuple[FloatArray, dict[Product, FloatArray]]:
        """Advance one second; return the setpoint shift (kW, EV sign) and the AEM reference shift
        (Hz, f_ref - f0) per product."""
        in_band = 49.9 < f_hz < 50.1
        up_all, down_all = energy.deliverable_up_kwh(), energy.absorbable_down_kwh()
        shift = np.zeros(self.size)
        for product in FCR_PRODUCTS:
            r = _rules(self.rules, product)
            c = pool.reserve_kw[product]
            up_e, down_e = _energy_for(product, up_all, down_all, pool, self.rules)
            has = c > 1e-9
            low_min = np.where(has, _minutes(up_e, c), _INF) if product is not Product.FCR_D_DOWN else None
            high_min = np.where(has, _minutes(down_e, c), _INF) if product is not Product.FCR_D_UP else None
            allowed = np.zeros(self.size)
            aem = np.zeros(self.size, dtype=bool)
            for side, minutes, sign in (("low", low_min, -1.0), ("high", high_min, 1.0)):
                if minutes is None:
                    continue
                state = self.nem_low if side == "low" else self.nem_high
                latched = np.where(state[product], minutes < r.nem_off_above_min, minutes < r.nem_on_below_min)
                state[product] = has & latched & in_band
                allowed += np.where(state[product], sign, 0.0)
                was = self.aem[product]
                aem |= has & np.where(was, minutes < r.aem_off_above_min, minutes < r.aem_on_below_min)
                if r.restore_within_min is not None:
                    deficit = has & (minutes < r.endurance_min - 1e-6)
                    self.recovering_s[product] = np.where(
                        deficit, self.recovering_s[product] + (1.0 if in_band else 0.0), 0.0
                    )
            self.aem[product] = aem
            self.nem_current[product] = self._nem[product].push(allowed)
            # P_NEM = factor·C·NEM_current (injection); the EV-sign setpoint moves the other way
            shift -= r.nem_power_factor * c * self.nem_current[product]
            f_aem = np.where(aem, saturated_hz(product, f_hz, self.rules), r.f0_hz)
            self.ref_shift_hz[product] = self._ref[product].push(f_aem) - r.f0_hz
        return shift, dict(self.ref_shift_hz)
