"""Official test sequences as frequency signals (FCR-TR v1.1 §3, FCR-Test v1.1), sampled at the logging rate.

A sequence is a list of segments: ramps at a given rate towards a target frequency, then holds.
Markers name the instants the criteria refer to (the start of each ramp or step) and windows the
holds after them. Every frequency, rate and duration comes from the market rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from v2g.dispatch.pool import FloatArray
from v2g.markets.rules import MarketRules, Product


@dataclass(frozen=True, slots=True)
class Segment:
    """Go from the current frequency to ``target_hz`` (a step, or a ramp at ``rate_hz_per_s``) and stay
    there until ``duration_s`` after the segment's start (the ramp's time included)."""

    target_hz: float
    duration_s: float
    rate_hz_per_s: float = 0.0
    marker: str | None = None  # names the segment's start (``windows`` gets its hold)


@dataclass(frozen=True, slots=True)
class TestSignal:
    """A sampled test frequency with named instants (seconds from the start)."""

    __test__ = False  # not a pytest test class

    name: str
    product: Product
    dt_s: float
    t_s: FloatArray
    f_hz: FloatArray
    markers: dict[str, float] = field(default_factory=dict)
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)
    period_s: float | None = None  # for sine tests
    test_type: str = ""  # the test id in the protocol's file names


def sample_segments(name: str, product: Product, start_hz: float, segments: list[Segment], log_hz: float) -> TestSignal:
    """Sample a segment list at ``log_hz``; markers and hold windows (end of ramp to end of segment) are recorded."""
    dt = 1.0 / log_hz
    times: list[float] = [0.0]
    freqs: list[float] = [start_hz]
    markers: dict[str, float] = {}
    windows: dict[str, tuple[float, float]] = {}
    t, f = 0.0, start_hz
    for seg in segments:
        start = t
        if seg.marker:
            markers[seg.marker] = start
        ramp_s = abs(seg.target_hz - f) / seg.rate_hz_per_s if seg.rate_hz_per_s > 0 else 0.0
        if ramp_s > seg.duration_s + 1e-9:
            msg = (
                f"segment {seg.marker or seg.target_hz}: the ramp takes {ramp_s:.2f} s, longer than {seg.duration_s} s"
            )
            raise ValueError(msg)
        steps = round(seg.duration_s / dt)
        direction = math.copysign(1.0, seg.target_hz - f)
        for k in range(1, steps + 1):
            elapsed = k * dt
            if seg.rate_hz_per_s > 0:
                f_k = f + direction * min(seg.rate_hz_per_s * elapsed, abs(seg.target_hz - f))
            else:
                f_k = seg.target_hz
            times.append(start + elapsed)
            freqs.append(f_k)
        t = start + steps * dt
        if seg.marker:
            windows[seg.marker] = (start + ramp_s, t)
        f = seg.target_hz
    return TestSignal(name, product, dt, np.array(times), np.array(freqs), markers, windows)


def mirror_hz(product: Product, f_hz: float) -> float:
    """FCR-D down tests mirror the FCR-D up frequencies around 50 Hz."""
    return 100.0 - f_hz if product is Product.FCR_D_DOWN else f_hz


def fcr_d_ramp_test(product: Product, rules: MarketRules, *, endurance: bool = False) -> TestSignal:
    """The FCR-D fast ramp test as one sequence (FCR-TR v1.1 Table 4).

    Stabilise at 49.9 Hz (50.1 Hz down), then ramp 1 at 0.14 Hz/s to 49.45 Hz, ramp 2 back at
    0.09 Hz/s (deactivation), ramps 3-8 at 0.24 Hz/s, each held to its start-to-start duration; the
    hold after ramp 3 lasts 900 s in the non-LER endurance test. Markers ``ramp_1`` ... ``ramp_8``.
    """
    rr = rules.prequal.ramps
    segments = []
    for number, rate, target_up, duration in rr.ramps:
        if number == 3 and endurance:
            duration = rr.endurance_ramp_3_s
        segments.append(Segment(mirror_hz(product, target_up), duration, rate, marker=f"ramp_{number}"))
    start = mirror_hz(product, rr.stabilise_hz_up)
    name = f"{product.value}_ramps" + ("_endurance" if endurance else "")
    signal = sample_segments(
        name,
        product,
        start,
        [Segment(start, rr.stabilise_s, marker="stabilise"), *segments],
        rules.prequal.log_hz_of(product),
    )
    return _with_type(signal, "RampEndurance" if endurance else "Ramp")


def fcr_n_step_test(rules: MarketRules, *, endurance: bool = False) -> TestSignal:
    """FCR-N step sequence (FCR-TR v1.1 Table 3): 50.0 -> 49.95 (pre-step) -> 50.0 -> 49.9 -> 50.1 -> 50.0 Hz.

    Steps 1 and 2 are held 5 minutes, 15 minutes in the non-LER endurance test. Markers name the steps.
    """
    st = rules.prequal.steps
    segments = []
    for f_hz, duration, name in st.steps:
        if endurance and name in ("step_1", "step_2"):
            duration = st.endurance_hold_s
        segments.append(Segment(f_hz, duration, marker=name))
    first = st.steps[0][0]
    signal = sample_segments(
        "fcr_n_steps" + ("_endurance" if endurance else ""),
        Product.FCR_N,
        first,
        segments,
        rules.prequal.log_hz_of(Product.FCR_N),
    )
    return _with_type(signal, "StepEndurance" if endurance else "Step")


def sine_periods(product: Product, rules: MarketRules) -> tuple[float, ...]:
    """The sine periods tested for ``product`` (FCR-D: 90-300 s only with mode shifting, not used here)."""
    return rules.prequal.sine.periods_s[rules.prequal.family(product)]


def sine_test(product: Product, period_s: float, rules: MarketRules) -> TestSignal:
    """Sine test: ±amplitude around the product's centre frequency; settling periods, then the
    stationary periods Table 6 asks for (the ``analysis`` window)."""
    sn = rules.prequal.sine
    centre = sn.centre_hz[product.value]
    dt = 1.0 / rules.prequal.log_hz_of(product)
    settle = sn.settle_periods * period_s
    stationary = sn.stationary_periods.get(period_s, 5)
    total = settle + stationary * period_s
    t = np.arange(0.0, total + dt / 2, dt)
    f = centre + sn.amplitude_hz * np.sin(2 * math.pi * t / period_s)
    name = f"{product.value}_sine_{int(period_s)}s"
    return TestSignal(
        name, product, dt, t, f, {"analysis": settle}, {"analysis": (settle, total)}, period_s, f"Sine{int(period_s)}"
    )


def _with_type(signal: TestSignal, test_type: str) -> TestSignal:
    return TestSignal(
        signal.name,
        signal.product,
        signal.dt_s,
        signal.t_s,
        signal.f_hz,
        signal.markers,
        signal.windows,
        signal.period_s,
        test_type,
    )
