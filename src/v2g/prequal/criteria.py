"""Pass/fail criteria of the pre-qualification tests (FCR-Test v1.1), on logged test data.

``dp_kw`` is the group's response in grid terms (positive = up-regulation), i.e. its baseline power
minus the measured power, sampled with the test signal. FCR-D down responses are negative; the
criteria work on the magnitude in the product's direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from v2g.dispatch.pool import FloatArray
from v2g.markets.rules import MarketRules, Product
from v2g.prequal.sequences import TestSignal


@dataclass(frozen=True, slots=True)
class Requirement:
    """One checked requirement: measured value against its limit."""

    test: str
    id: str
    description: str
    measured: float
    limit: float
    unit: str
    passed: bool

    def text(self) -> str:
        """Human-readable one-liner."""
        verdict = "PASS" if self.passed else "FAIL"
        value = f"{self.measured:.3f} {self.unit}".strip()
        return f"{self.test} {self.id}: {self.description}: {value} (limit {self.limit:.3f}) {verdict}"


def _window_mean(signal: TestSignal, values: FloatArray, window: tuple[float, float], last_s: float) -> float:
    start, end = window
    mask = (signal.t_s >= max(start, end - last_s)) & (signal.t_s <= end)
    return float(values[mask].mean())


def _interp(signal: TestSignal, values: FloatArray, t: float) -> float:
    return float(np.interp(t, signal.t_s, values))


def _integral(signal: TestSignal, values: FloatArray, t0: float, t1: float) -> float:
    mask = (signal.t_s >= t0) & (signal.t_s <= t1)
    t, v = signal.t_s[mask], values[mask]
    if len(t) < 2:
        return 0.0
    return float(np.sum((v[1:] + v[:-1]) * np.diff(t)) / 2.0)


def fcr_d_ramp(signal: TestSignal, dp_kw: FloatArray, rules: MarketRules) -> tuple[float, list[Requirement]]:
    """Req. 2-4 of an FCR-D ramp test; returns the steady-state response ΔPss (kW) and the requirements."""
    pq = rules.prequal
    sign = 1.0 if signal.product is Product.FCR_D_UP else -1.0
    dp = dp_kw * sign
    pss = _window_mean(signal, dp, signal.windows["steady_state"], 60.0)
    t0 = signal.markers["activation"]
    p75 = _interp(signal, dp, t0 + 7.5)
    e75 = _integral(signal, dp, t0, t0 + 7.5)
    # Deactivation: energy delivered above the static response the frequency asks for.
    td = signal.markers["deactivation"]
    _, td_end = signal.windows["deactivation"]
    static = np.array([rules[signal.product].response_fraction(float(f)) * sign for f in signal.f_hz]) * pss
    overshoot = _integral(signal, np.maximum(dp - static, 0.0), td, td_end)
    safe = pss if pss > 1e-9 else float("nan")
    reqs = [
        Requirement(
            signal.name,
            "req2",
            f"ΔP(7.5 s) / ΔPss ≥ {pq.fcr_d_power_at_7_5_s_min_fraction}",
            p75 / safe,
            pq.fcr_d_power_at_7_5_s_min_fraction,
            "",
            p75 / safe >= pq.fcr_d_power_at_7_5_s_min_fraction,
        ),
        Requirement(
            signal.name,
            "req3",
            f"energy in first 7.5 s / ΔPss ≥ {pq.fcr_d_energy_7_5_s_min_s} s",
            e75 / safe,
            pq.fcr_d_energy_7_5_s_min_s,
            "s",
            e75 / safe >= pq.fcr_d_energy_7_5_s_min_s,
        ),
        Requirement(
            signal.name,
            "req4",
            f"deactivation overshoot energy / ΔPss ≤ {pq.fcr_d_deactivation_overshoot_max_s} s",
            overshoot / safe,
            pq.fcr_d_deactivation_overshoot_max_s,
            "s",
            overshoot / safe <= pq.fcr_d_deactivation_overshoot_max_s,
        ),
    ]
    return pss, [r if not math.isnan(r.measured) else _failed(r) for r in reqs]


def _failed(r: Requirement) -> Requirement:
    return Requirement(r.test, r.id, r.description + " (no steady-state response)", 0.0, r.limit, r.unit, False)


def fcr_n_steps(
    signal: TestSignal, dp_kw: FloatArray, capacity_kw: float, rules: MarketRules
) -> tuple[float, list[Requirement]]:
    """Steady-state response at 49.9 and 50.1 Hz within tolerance of the capacity, and the activation times."""
    lo, hi = rules.prequal.fcr_n_steady_state_tolerance
    pr = rules[Product.FCR_N]
    reqs: list[Requirement] = []
    pss_values = []
    for marker, sign in (("step_up", 1.0), ("step_down", -1.0)):
        window = signal.windows[marker]
        pss = _window_mean(signal, dp_kw * sign, window, 60.0)
        pss_values.append(pss)
        ratio = pss / capacity_kw - 1.0
        reqs.append(
            Requirement(
                signal.name,
                f"{marker}_steady_state",
                f"ΔPss deviation from capacity within {lo:+.0%}/{hi:+.0%}",
                ratio,
                lo if ratio < lo else hi,
                "",
                lo <= ratio <= hi,
            )
        )
        t0 = signal.markers[marker]
        mask = signal.t_s >= t0
        t, v = signal.t_s[mask] - t0, dp_kw[mask] * sign
        # from the previous plateau (0 or the opposite direction) to the expected response (the capacity)
        start = _interp(signal, dp_kw * sign, t0)
        span = capacity_kw - start
        for fraction, limit_s, name in (
            (pr.activation_fraction_1, pr.activation_within_s_1, "t63"),
            (0.95, pr.activation_within_s_2, "t100"),
        ):
            reached = np.nonzero(v - start >= fraction * span)[0]
            t_reach = float(t[reached[0]]) if len(reached) else float("inf")
            reqs.append(
                Requirement(
                    signal.name,
                    f"{marker}_{name}",
                    f"{fraction:.0%} of the step response within {limit_s:.0f} s",
                    t_reach,
                    limit_s,
                    "s",
                    t_reach <= limit_s,
                )
            )
    return min(pss_values), reqs


@dataclass(frozen=True, slots=True)
class SineResult:
    """Measured transfer function at one period."""

    period_s: float
    gain: float  # normalised: (ΔP/C) / (Δf/0.1 Hz)
    phase_deg: float  # response lag (negative = lagging)
    linearity: float  # RMS of the residual over the std of the fitted sine


def sine_fit(signal: TestSignal, dp_kw: FloatArray, capacity_kw: float) -> SineResult:
    """Fit a sine at the test period to the response over the analysis window."""
    assert signal.period_s is not None
    start, end = signal.windows["analysis"]
    mask = (signal.t_s >= start) & (signal.t_s <= end)
    t, y = signal.t_s[mask], dp_kw[mask]
    w = 2 * math.pi / signal.period_s
    basis = np.column_stack([np.sin(w * t), np.cos(w * t), np.ones_like(t)])
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    fitted = basis @ coef
    amp = math.hypot(coef[0], coef[1])
    # input: Δf = A sin(wt); the ideal response to Δf < 0 is positive (up), so the reference is -sin
    phase = math.degrees(math.atan2(coef[1], coef[0])) - 180.0
    phase = (phase + 180.0) % 360.0 - 180.0
    residual = y - fitted
    spread = float(np.std(fitted - coef[2]))
    linearity = float(np.sqrt(np.mean(residual**2)) / spread) if spread > 0 else float("inf")
    a_hz = float(np.max(np.abs(signal.f_hz - np.mean(signal.f_hz))))
    gain = (amp / capacity_kw) / (a_hz / 0.1) if capacity_kw > 0 and a_hz > 0 else 0.0
    return SineResult(signal.period_s, gain, phase, linearity)


def stability_margin(results: list[SineResult], product: Product) -> float:
    """Smallest distance of the open loop (FCR x power-system model) from -1 over the tested periods.

    Power-system model (FCR-Test v1.1, stability set): S_n 23 000 MW, H 5.22 s, K_f 0.01, and
    600 MW per 0.1 Hz (FCR-N) or 1 450 MW per 0.4 Hz (FCR-D); a 95 % margin factor scales the loop.
    """
    f0, s_n, h, k_f, k_margin = 50.0, 23000.0, 5.22, 0.01, 0.95
    mw_per_hz = 600.0 / 0.1 if product is Product.FCR_N else 1450.0 / 0.4
    distance = float("inf")
    for r in results:
        w = 2 * math.pi / r.period_s
        fcr = r.gain * complex(math.cos(math.radians(r.phase_deg)), math.sin(math.radians(r.phase_deg)))
        system = f0 / (s_n * complex(k_f, 2 * h * w))
        loop = fcr * mw_per_hz * system / k_margin
        distance = min(distance, abs(1 + loop))
    return distance


STABILITY_RADIUS = 0.43
