"""Pass/fail criteria of the pre-qualification tests (FCR-TR v1.1 §3, 28 March 2025), on logged test data.

``dp_kw`` is the group's response in grid terms (positive = up-regulation), i.e. its baseline power
minus the measured power, sampled with the test signal. FCR-D down responses are negative; the
criteria work on the magnitude in the product's direction. ``theoretical_kw`` is |ΔPss,theoretical|,
the steady-state response the provider's capacity calculation method gives for full activation
(for a group of identical chargers: the sum of the capacities its units offer).
"""

from __future__ import annotations

import cmath
import itertools
import math
from dataclasses import dataclass

import numpy as np

from v2g.dispatch.pool import FloatArray
from v2g.markets.rules import MarketRules, PowerSystemModel, Product
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


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one test (or test family) found: its requirements and the reduction factors it needs."""

    requirements: list[Requirement]
    k_red_ss: float = 1.0
    k_red_dyn: float = 1.0


def _sign(product: Product) -> float:
    return -1.0 if product is Product.FCR_D_DOWN else 1.0


def steady_power(signal: TestSignal, values: FloatArray, window: tuple[float, float], last_s: float) -> float:
    """Mean of ``values`` over the last ``last_s`` seconds of ``window`` (the steady state of a hold)."""
    start, end = window
    mask = (signal.t_s >= max(start, end - last_s)) & (signal.t_s <= end + 1e-9)
    return float(values[mask].mean())


def _interp(signal: TestSignal, values: FloatArray, t: float) -> float:
    return float(np.interp(t, signal.t_s, values))


def _cumulative(signal: TestSignal, values: FloatArray, t0: float, t1: float) -> tuple[FloatArray, FloatArray]:
    """Times and the running trapezoid integral of ``values`` from ``t0`` to ``t1`` (end points interpolated)."""
    inside = (signal.t_s > t0) & (signal.t_s < t1)
    t = np.concatenate([[t0], signal.t_s[inside], [t1]])
    v = np.interp(t, signal.t_s, values)
    running = np.concatenate([[0.0], np.cumsum((v[1:] + v[:-1]) * np.diff(t) / 2.0)])
    return t, running


def k_red_steady_state(ratio: float, tolerance: tuple[float, float]) -> tuple[float, bool]:
    """The steady-state reduction factor Requirement 1 needs for a measured/theoretical ``ratio``.

    Returns ``(K_red,ss, reachable)``: 1 when the ratio lies within the tolerance; for
    under-delivery the largest K <= 1 with ratio/K - 1 >= the lower tolerance; over-delivery beyond
    the upper tolerance cannot be mended by a factor <= 1 (not reachable).
    """
    lo, hi = tolerance
    if ratio > 1.0 + hi + 1e-12:
        return 1.0, False
    if ratio >= 1.0 + lo - 1e-12:
        return 1.0, True
    return max(ratio, 0.0) / (1.0 + lo), ratio > 0


def _req1(test: str, rid: str, ratio: float, k: float, tolerance: tuple[float, float], direction: str) -> Requirement:
    lo, hi = tolerance
    deviation = ratio / k - 1.0 if k > 0 else -1.0
    ok = lo - 1e-9 <= deviation <= hi + 1e-9
    return Requirement(
        test,
        rid,
        f"{direction} ΔPss vs K_red,ss·|ΔPss,theoretical| (K_red,ss {k:.3f}) within {lo:+.0%}/{hi:+.0%}",
        deviation,
        lo if deviation < lo else hi,
        "",
        ok,
    )


def fcr_d_ramps(signal: TestSignal, dp_kw: FloatArray, theoretical_kw: float, rules: MarketRules) -> Outcome:
    """Requirements 1-4 of the FCR-D ramp sequence (FCR-TR v1.1 §3.1.2).

    * Req. 1: steady state of ramp 3 minus ramp 4 within -5 %/+20 % of K_red,ss·|ΔPss,theoretical|.
    * Req. 2/3 on ramp 5 (to 49.0/51.0 Hz): ΔP(7.5 s) >= 0.86·K_red,dyn·|ΔPss,theo| and
      E(0-7.5 s) >= 3.2 s·K_red,dyn·|ΔPss,theo|, ΔP counted from the power before the ramp.
    * Req. 4 on ramps 1-2: after the nadir (the start of ramp 2), the running integral of
      ΔP - min(|ΔP_nadir|, 0.5·|ΔPss,theo|) stays at most 2.5 s·|ΔPss,theo| for 40 s.
    """
    rr = rules.prequal.ramps
    last = rules.prequal.steady_state_window_s
    theo = theoretical_kw
    dp = dp_kw * _sign(signal.product)
    name = signal.name
    reqs: list[Requirement] = []
    if theo <= 0:
        msg = f"theoretical_kw: {theo} must be > 0"
        raise ValueError(msg)
    # Req. 1
    p3 = steady_power(signal, dp, signal.windows["ramp_3"], last)
    p4 = steady_power(signal, dp, signal.windows["ramp_4"], last)
    ratio = (p3 - p4) / theo
    k_ss, reachable = k_red_steady_state(ratio, rr.steady_state_tolerance)
    req1 = _req1(name, "req1", ratio, k_ss, rr.steady_state_tolerance, "ramp 3 - ramp 4")
    reqs.append(req1)
    if k_ss < rr.k_red_min - 1e-9 or not reachable:
        reqs.append(_k_row(name, "k_red_ss", k_ss, rr.k_red_min, reachable))
    # Req. 2 and 3 on ramp 5
    t5 = signal.markers["ramp_5"]
    base5 = p4
    p75 = _interp(signal, dp, t5 + 7.5) - base5
    _, running = _cumulative(signal, dp - base5, t5, t5 + 7.5)
    e75 = float(running[-1])
    k_dyn = min(1.0, p75 / (rr.power_at_7_5_s_min_fraction * theo), e75 / (rr.energy_7_5_s_min_s * theo))
    k_dyn = max(k_dyn, 0.0)
    k_used = max(k_dyn, rr.k_red_min)
    reqs.append(
        Requirement(
            name,
            "req2",
            f"ramp 5: ΔP(7.5 s) / |ΔPss,theo| ≥ {rr.power_at_7_5_s_min_fraction}·K_red,dyn (K_red,dyn {k_used:.3f})",
            p75 / theo,
            rr.power_at_7_5_s_min_fraction * k_used,
            "",
            p75 / theo >= rr.power_at_7_5_s_min_fraction * k_used - 1e-9,
        )
    )
    reqs.append(
        Requirement(
            name,
            "req3",
            f"ramp 5: E(0-7.5 s) / |ΔPss,theo| ≥ {rr.energy_7_5_s_min_s} s·K_red,dyn (K_red,dyn {k_used:.3f})",
            e75 / theo,
            rr.energy_7_5_s_min_s * k_used,
            "s",
            e75 / theo >= rr.energy_7_5_s_min_s * k_used - 1e-9,
        )
    )
    # Req. 4 on ramps 1-2
    base0 = steady_power(signal, dp, signal.windows["stabilise"], last)
    t_nadir = signal.markers["ramp_2"]
    p_nadir = _interp(signal, dp, t_nadir) - base0
    reference = min(abs(p_nadir), rr.deactivation_reference_fraction * theo)
    _, running = _cumulative(signal, dp - base0 - reference, t_nadir, t_nadir + rr.deactivation_window_s)
    overshoot = float(running.max())
    reqs.append(
        Requirement(
            name,
            "req4",
            f"ramps 1-2: max ∫(ΔP - min(|ΔP_nadir|, {rr.deactivation_reference_fraction}·|ΔPss,theo|)) over "
            f"{rr.deactivation_window_s:.0f} s after the nadir / |ΔPss,theo| ≤ {rr.deactivation_overshoot_max_s} s",
            overshoot / theo,
            rr.deactivation_overshoot_max_s,
            "s",
            overshoot / theo <= rr.deactivation_overshoot_max_s + 1e-9,
        )
    )
    return Outcome(reqs, k_ss, k_dyn)


def _k_row(test: str, rid: str, k: float, k_min: float, reachable: bool = True) -> Requirement:
    what = "capacity reduction factor" if reachable else "over-delivery beyond the tolerance, no factor ≤ 1 mends it"
    return Requirement(test, rid, f"{what} ≥ {k_min}", k, k_min, "", reachable and k >= k_min - 1e-9)


def fcr_n_steps(signal: TestSignal, dp_kw: FloatArray, theoretical_kw: float, rules: MarketRules) -> Outcome:
    """Requirement 1 of the FCR-N step sequence (FCR-TR v1.1 §3.1.1, eq. 1-2), with K_red,ss.

    ΔPss,1 = Pss,1 - (Pss,0 + Pss,3)/2 at 49.9 Hz and ΔPss,2 likewise at 50.1 Hz; each within
    -5 %/+20 % of K_red,ss·|ΔPss,theoretical| in its direction. The svk.se product sheet's activation
    times (63 % within 60 s, 100 % within 3 min) are checked on both steps as well.
    """
    st = rules.prequal.steps
    last = rules.prequal.steady_state_window_s
    theo = theoretical_kw
    if theo <= 0:
        msg = f"theoretical_kw: {theo} must be > 0"
        raise ValueError(msg)
    p = {name: steady_power(signal, dp_kw, signal.windows[name], last) for _, _, name in st.steps[2:]}
    base = (p["step_0"] + p["step_3"]) / 2.0
    ratios = {"up": (p["step_1"] - base) / theo, "down": -(p["step_2"] - base) / theo}
    ks = {d: k_red_steady_state(r, st.steady_state_tolerance) for d, r in ratios.items()}
    k_ss = min(k for k, _ in ks.values())
    reachable = all(ok for _, ok in ks.values())
    reqs = [
        _req1(signal.name, f"req1_{d}", r, k_ss, st.steady_state_tolerance, f"step {1 if d == 'up' else 2} ({d})")
        for d, r in ratios.items()
    ]
    if not reachable:
        reqs.append(_k_row(signal.name, "k_red_ss", k_ss, st.k_red_min, reachable))
    reqs += _activation_times(signal, dp_kw, theo, base, rules)
    return Outcome(reqs, k_ss, 1.0)


def _activation_times(
    signal: TestSignal, dp_kw: FloatArray, theo: float, base: float, rules: MarketRules
) -> list[Requirement]:
    pr = rules[Product.FCR_N]
    reqs = []
    for marker, sign in (("step_1", 1.0), ("step_2", -1.0)):
        t0 = signal.markers[marker]
        mask = signal.t_s >= t0
        t, v = signal.t_s[mask] - t0, (dp_kw[mask] - base) * sign
        start = (_interp(signal, dp_kw, t0) - base) * sign
        span = theo - start
        for fraction, limit_s, label in (
            (pr.activation_fraction_1, pr.activation_within_s_1, "t63"),
            (0.95, pr.activation_within_s_2, "t100"),
        ):
            reached = np.nonzero(v - start >= fraction * span)[0]
            t_reach = float(t[reached[0]]) if len(reached) else float("inf")
            reqs.append(
                Requirement(
                    signal.name,
                    f"{marker}_{label}",
                    f"svk.se: {fraction:.0%} of the step response within {limit_s:.0f} s",
                    t_reach,
                    limit_s,
                    "s",
                    t_reach <= limit_s,
                )
            )
    return reqs


@dataclass(frozen=True, slots=True)
class SineResult:
    """Measured transfer function F(jω) at one period (FCR-TR v1.1 eq. 7-9)."""

    period_s: float
    gain: float  # |F|: (A_P / A_f)·(Δf_band / |ΔPss,theoretical|)
    phase_deg: float  # response lag against the frequency control error (negative = lagging)
    linearity: float  # Requirement 10: RMS of the residual over the std of the fitted sine

    @property
    def omega(self) -> float:
        """Angular frequency 2π/T."""
        return 2 * math.pi / self.period_s

    @property
    def f(self) -> complex:
        """F(jω) as measured."""
        return cmath.rect(self.gain, math.radians(self.phase_deg))


def sine_fit(signal: TestSignal, dp_kw: FloatArray, theoretical_kw: float, rules: MarketRules) -> SineResult:
    """Fit a sine at the test period to the response over the stationary periods.

    The gain is normalised by the product's one-sided band (0.1 Hz FCR-N, 0.4 Hz FCR-D) over
    |ΔPss,theoretical| (eq. 7), so an ideal proportional response has |F| = 1 for every product.
    """
    if signal.period_s is None:
        msg = f"signal {signal.name}: not a sine test"
        raise ValueError(msg)
    band = rules.prequal.sine.band_hz[rules.prequal.family(signal.product)]
    start, end = signal.windows["analysis"]
    mask = (signal.t_s >= start) & (signal.t_s <= end)
    t, y = signal.t_s[mask], dp_kw[mask]
    w = 2 * math.pi / signal.period_s
    basis = np.column_stack([np.sin(w * t), np.cos(w * t), np.ones_like(t)])
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    fitted = basis @ coef
    amp = math.hypot(coef[0], coef[1])
    # input: f - centre = A sin(wt); the control error f_ref - f is -A sin(wt), so its phase is 180°
    phase = math.degrees(math.atan2(coef[1], coef[0])) - 180.0
    phase = (phase + 180.0) % 360.0 - 180.0
    residual = y - fitted
    spread = float(np.std(fitted - coef[2]))
    linearity = float(np.sqrt(np.mean(residual**2)) / spread) if spread > 0 else float("inf")
    a_hz = float(np.max(np.abs(signal.f_hz[mask] - np.mean(signal.f_hz[mask]))))
    gain = (amp / a_hz) * (band / theoretical_kw) if theoretical_kw > 0 and a_hz > 0 else 0.0
    return SineResult(signal.period_s, gain, phase, linearity)


def power_system(omega: float, product: Product, model: PowerSystemModel, rules: MarketRules) -> complex:
    """G(jω) = ΔP_FCR-X/Δf_FCR-X · f0/S_n · 1/(2H·jω + K_f·f0) in p.u. (FCR-TR v1.1 eq. 11, Table 7)."""
    pq = rules.prequal
    family = pq.family(product)
    strength = pq.volume_mw[family] / pq.sine.band_hz[family]
    return strength * pq.f0_hz / model.s_n_mw / complex(pq.k_f_pu_per_hz * pq.f0_hz, 2.0 * model.h_s * omega)


def evaluated_f(result: SineResult, rules: MarketRules, *, internal_signal: bool) -> complex:
    """F(jω) for the frequency-domain requirements: an internally generated test signal is multiplied
    by the frequency measurement model 1/(T_FME·jω + 1) (FCR-TR v1.1 §4.4, eq. 33)."""
    f = result.f
    if internal_signal:
        f /= complex(1.0, rules.prequal.frequency_measurement_time_constant_s * result.omega)
    return f


@dataclass(frozen=True, slots=True)
class Stability:
    """Requirement 8 on the interpolated Nyquist curve of the open loop F·G."""

    margin: float  # smallest distance of the curve from -1
    passes_right: bool  # False when the curve crosses the negative real axis left of -1 (encircles it)
    crossing: float | None  # the crossing of the negative real axis nearest to -1, if any

    @property
    def signed_margin(self) -> float:
        """The margin, negative when the curve passes on the wrong (left) side of -1."""
        return self.margin if self.passes_right else -self.margin


def _segment_distance(a: complex, b: complex, p: complex) -> float:
    d = b - a
    if abs(d) < 1e-15:
        return abs(p - a)
    u = max(0.0, min(1.0, ((p - a) * d.conjugate()).real / abs(d) ** 2))
    return abs(a + u * d - p)


def stability(
    results: list[SineResult], product: Product, rules: MarketRules, *, internal_signal: bool = True
) -> Stability:
    """Nyquist curve of G0 = F·G (F from the frequency control error, G with the stability parameters).

    The curve between the measured points is interpolated linearly in the complex plane. It must pass
    on the right side of -1: a crossing of the negative real axis left of -1 means the loop encircles
    -1 however far from it the curve stays.
    """
    if not results:
        msg = "sine results: none to evaluate"
        raise ValueError(msg)
    model = rules.prequal.stability_model
    ordered = sorted(results, key=lambda r: r.omega)
    points = [
        evaluated_f(r, rules, internal_signal=internal_signal) * power_system(r.omega, product, model, rules)
        for r in ordered
    ]
    minus_one = complex(-1.0, 0.0)
    margin = min(abs(p - minus_one) for p in points)
    right = True
    crossing: float | None = None
    for a, b in itertools.pairwise(points):
        margin = min(margin, _segment_distance(a, b, minus_one))
        if (a.imag > 0) != (b.imag > 0) and a.imag != b.imag:
            x = a.real + (b.real - a.real) * (-a.imag) / (b.imag - a.imag)
            if x < 0:
                if crossing is None or abs(x + 1) < abs(crossing + 1):
                    crossing = x
                if x < -1.0:
                    right = False
    return Stability(margin, right, crossing)


def stability_requirement(result: Stability, rules: MarketRules) -> Requirement:
    """Requirement 8: right of -1 and outside the circle of radius 0.43 (accepted down to 0.43·0.95)."""
    pq = rules.prequal
    limit = pq.stability_radius * pq.stability_margin_factor
    side = "" if result.passes_right else f" (crosses the negative real axis at {result.crossing:.2f}, left of -1)"
    return Requirement(
        "sine",
        "req8",
        f"Nyquist curve of F·G passes right of -1 outside radius {pq.stability_radius}·{pq.stability_margin_factor}"
        + side,
        result.signed_margin,
        limit,
        "",
        result.passes_right and result.margin >= limit - 1e-9,
    )


def performance(
    results: list[SineResult], product: Product, rules: MarketRules, *, internal_signal: bool = True
) -> Outcome:
    """Requirement 9 with K_red,dyn (FCR-TR v1.1 §3.3).

    K_margin·|G/(1 + F/K_red,dyn·G)| < |1/D(jω)| at every tested period, D(s) = 1/(70 s + 1), G with
    the performance parameters. K_red,dyn is the largest factor in [minimum, 1] that meets it.
    """
    pq = rules.prequal
    k_min = pq.k_red_dyn_min[pq.family(product)]
    model = pq.performance_model
    rows = [
        (
            r,
            evaluated_f(r, rules, internal_signal=internal_signal),
            power_system(r.omega, product, model, rules),
            abs(complex(1.0, pq.disturbance_time_constant_s * r.omega)),
        )
        for r in results
    ]

    def worst(k: float) -> tuple[float, SineResult | None]:
        ratio, at = 0.0, None
        for r, f, g, bound in rows:
            gc = pq.k_margin * abs(g / (1 + f / k * g))
            if gc / bound > ratio:
                ratio, at = gc / bound, r
        return ratio, at

    k = 1.0
    ratio, at = worst(k)
    while ratio >= 1.0 and k > k_min + 1e-9:
        k = max(k_min, round(k - 0.005, 3))
        ratio, at = worst(k)
    passed = ratio < 1.0
    where = f" (worst at {at.period_s:.0f} s)" if at is not None else ""
    reqs = [
        Requirement(
            "sine",
            "req9",
            f"K_margin·|G/(1+F/K_red,dyn·G)| / |1/D| < 1 with K_red,dyn {k:.3f}{where}",
            ratio,
            1.0,
            "",
            passed,
        ),
        Requirement("sine", "k_red_dyn", f"dynamic reduction factor ≥ {k_min}", k, k_min, "", passed),
    ]
    return Outcome(reqs, 1.0, k if passed else k_min)
