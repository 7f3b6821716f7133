"""Energy management for limited-energy reservoirs (LER): NEM and AEM, per EV, vectorised.

Rules (FCR-TR v1.1, values in the market rules): an EV's remaining endurance in a direction is the
energy it can still deliver that way divided by the reserve it holds in that direction.

* FCR-N NEM: switched on when the endurance in either direction falls below ``nem_on_below_min``
  (30 min) and off again at ``nem_off_above_min`` (57.5 min); while on, the EV moves its baseline by
  up to ``nem_power_factor`` x C (0.34 C) towards the middle of its energy window.
* FCR-D NEM: while the frequency's rolling 5-min mean is in the normal band (49.9-50.1 Hz), an EV
  whose FCR-D endurance is below its full ``endurance_min`` (20 min) restores energy at 0.20 C.
* AEM: when the endurance in a direction falls below ``aem_on_below_min`` (5 min), the EV stops
  offering FCR-N in that direction and restores energy at the NEM power until the endurance is
  back above ``aem_off_above_min`` (10 min). The TSO telemetry reports both flags.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from v2g.dispatch.pool import BoolArray, FloatArray, ReservePool
from v2g.markets.rules import LerRules, MarketRules, Product

_INF = 1e9
NORMAL_BAND_HZ = (49.9, 50.1)


@dataclass(frozen=True, slots=True)
class EnergyState:
    """Energy window of each EV in the pool (kWh), with charge/discharge efficiencies."""

    soc_kwh: FloatArray
    soc_min_kwh: FloatArray
    soc_max_kwh: FloatArray
    eta_charge: float = 0.95
    eta_discharge: float = 0.95


def endurance_min(pool: ReservePool, energy: EnergyState) -> tuple[FloatArray, FloatArray]:
    """Remaining endurance (minutes) up and down at full activation of the reserves each EV holds."""
    up_kw = pool.reserve_kw[Product.FCR_N] + pool.reserve_kw[Product.FCR_D_UP]
    down_kw = pool.reserve_kw[Product.FCR_N] + pool.reserve_kw[Product.FCR_D_DOWN]
    e_up = np.maximum(energy.soc_kwh - energy.soc_min_kwh, 0.0) * energy.eta_discharge
    e_down = np.maximum(energy.soc_max_kwh - energy.soc_kwh, 0.0) / energy.eta_charge
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(up_kw > 1e-9, e_up / np.maximum(up_kw, 1e-9) * 60.0, _INF)
        down = np.where(down_kw > 1e-9, e_down / np.maximum(down_kw, 1e-9) * 60.0, _INF)
    return up, down


@dataclass
class LerManager:
    """NEM/AEM state per EV, updated once per frequency sample."""

    rules: MarketRules
    size: int
    nem_n: BoolArray = field(init=False)
    nem_d: BoolArray = field(init=False)
    aem_up: BoolArray = field(init=False)
    aem_down: BoolArray = field(init=False)
    _window: deque[float] = field(default_factory=lambda: deque(maxlen=300), init=False)
    _window_sum: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.nem_n = np.zeros(self.size, dtype=bool)
        self.nem_d = np.zeros(self.size, dtype=bool)
        self.aem_up = np.zeros(self.size, dtype=bool)
        self.aem_down = np.zeros(self.size, dtype=bool)

    def _ler(self, product: Product) -> LerRules:
        ler = self.rules[product].ler
        if ler is None:  # pragma: no cover - the packaged rules define LER for every FCR product
            msg = f"rules.products.{product.value}.ler: missing"
            raise ValueError(msg)
        return ler

    def rolling_mean_hz(self, f_hz: float) -> float:
        """Add one 1 s sample to the 5-min (300 sample) window and return its mean."""
        if len(self._window) == self._window.maxlen:
            self._window_sum -= self._window[0]
        self._window.append(f_hz)
        self._window_sum += f_hz
        return self._window_sum / len(self._window)

    def update(
        self, pool: ReservePool, energy: EnergyState, f_hz: float
    ) -> tuple[FloatArray, dict[Product, FloatArray]]:
        """Advance the state machines; return the baseline shift (kW, EV sign) and effective reserves per product."""
        mean_hz = self.rolling_mean_hz(f_hz)
        normal = NORMAL_BAND_HZ[0] <= mean_hz <= NORMAL_BAND_HZ[1]
        up, down = endurance_min(pool, energy)
        low = np.minimum(up, down)
        rn, rd = self._ler(Product.FCR_N), self._ler(Product.FCR_D_UP)
        c_n = pool.reserve_kw[Product.FCR_N]
        c_dup, c_ddown = pool.reserve_kw[Product.FCR_D_UP], pool.reserve_kw[Product.FCR_D_DOWN]
        has_n = c_n > 0
        self.nem_n = has_n & np.where(self.nem_n, low < rn.nem_off_above_min, low < rn.nem_on_below_min)
        self.aem_up = np.where(self.aem_up, up < rn.aem_off_above_min, up < rn.aem_on_below_min)
        self.aem_down = np.where(self.aem_down, down < rn.aem_off_above_min, down < rn.aem_on_below_min)
        direction = np.where(up < down, 1.0, -1.0)  # +1: restore by charging, -1: by discharging
        shift = np.where(self.nem_n | self.aem_up | self.aem_down, direction * rn.nem_power_factor * c_n, 0.0)
        # FCR-D NEM: restore at 0.2 C while the frequency is in the normal state.
        d_up_low = (c_dup > 0) & (up < rd.endurance_min)
        d_down_low = (c_ddown > 0) & (down < rd.endurance_min)
        self.nem_d = (d_up_low | d_down_low) & normal
        shift = shift + np.where(self.nem_d & d_up_low, rd.nem_power_factor * c_dup, 0.0)
        shift = shift - np.where(self.nem_d & d_down_low, rd.nem_power_factor * c_ddown, 0.0)
        effective = dict(pool.reserve_kw)
        effective[Product.FCR_N] = np.where(self.aem_up | self.aem_down, 0.0, c_n)
        effective[Product.FCR_D_UP] = np.where(self.aem_up, 0.0, c_dup)
        effective[Product.FCR_D_DOWN] = np.where(self.aem_down, 0.0, c_ddown)
        return shift, effective
