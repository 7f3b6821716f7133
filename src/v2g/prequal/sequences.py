"""Official test sequences as frequency signals (FCR-Test v1.1), sampled at the logging rate.

A sequence is a list of segments: ramps at a given rate towards a target frequency, then holds.
Markers name the instants the criteria refer to (the start of the performance ramp, the start of
deactivation, the steady-state window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from v2g.dispatch.pool import FloatArray
from v2g.markets.rules import MarketRules, Product


@dataclass(frozen=True, slots=True)
class Segment:
    """Ramp from the current frequency to ``target_hz`` at ``rate_hz_per_s`` (0 = step), then hold ``hold_s``."""

    target_hz: float
    hold_s: float
    rate_hz_per_s: float = 0.0
    marker: str | None = None  # marks the start of this segment's ramp


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


def sample_segments(name: str, product: Product, start_hz: float, segments: list[Segment], log_hz: float) -> TestSignal:
    """Sample a segment list at ``log_hz``; markers and hold windows are recorded."""
    dt = 1.0 / log_hz
    times: list[float] = [0.0]
    freqs: list[float] = [start_hz]
    markers: dict[str, float] = {}
    windows: dict[str, tuple[float, float]] = {}
    t, f = 0.0, start_hz
    for seg in segments:
        if seg.marker:
            markers[seg.marker] = t
        if seg.rate_hz_per_s > 0:
            duration = abs(seg.target_hz - f) / seg.rate_hz_per_s
            steps = max(1, round(duration / dt))
            direction = math.copysign(1.0, seg.target_hz - f)
            for k in range(1, steps + 1):
                t_k = t + k * dt
                f_k = f + direction * min(seg.rate_hz_per_s * k * dt, abs(seg.target_hz - f))
                times.append(t_k)
                freqs.append(f_k)
            t += steps * dt
        f = seg.target_hz
        hold_start = t
        steps = round(seg.hold_s / dt)
        for k in range(1, steps + 1):
            times.append(t + k * dt)
            freqs.append(f)
        t += steps * dt
        if seg.marker:
            windows[seg.marker] = (hold_start, t)
    return TestSignal(name, product, dt, np.array(times), np.array(freqs), markers, windows)


def fcr_d_ramp_test(product: Product, rate_hz_per_s: float, rules: MarketRules) -> TestSignal:
    """FCR-D ramp test: the FCR-Test v1.1 up sequence (49.45, 49.9, 49.5 held, 49.0, 50.0, 49.7, 49.89 Hz).

    FCR-D down mirrors every frequency around 50 Hz.
    """
    hz = rules.prequal.fcr_d_log_hz

    def m(f: float) -> float:
        return f if product is Product.FCR_D_UP else 100.0 - f

    r = rate_hz_per_s
    segments = [
        Segment(m(49.45), 60, r),
        Segment(m(49.90), 60, r),
        Segment(m(49.50), 300, r, marker="steady_state"),
        Segment(m(49.90), 120, r),
        Segment(m(49.00), 60, r, marker="activation"),
        Segment(m(50.00), 60, r, marker="deactivation"),
        Segment(m(49.70), 60, r),
        Segment(m(49.89), 60, r),
        Segment(50.0, 30, r),
    ]
    name = f"{product.value}_ramp_{rate_hz_per_s:.2f}".replace(".", "_")
    return sample_segments(name, product, 50.0, [Segment(50.0, 30), *segments], hz)


def fcr_n_step_test(rules: MarketRules, hold_s: float = 300.0) -> TestSignal:
    """FCR-N step sequence: 50.00 -> 49.95 (pre-step) -> 50.00 -> 49.90 (held) -> 50.10 (held) -> 50.00 Hz."""
    segments = [
        Segment(50.0, 30),
        Segment(49.95, 30),
        Segment(50.0, 30),
        Segment(49.90, hold_s, marker="step_up"),
        Segment(50.10, hold_s, marker="step_down"),
        Segment(50.0, 60, marker="step_back"),
    ]
    return sample_segments("fcr_n_steps", Product.FCR_N, 50.0, segments, rules.prequal.fcr_n_log_hz)


def sine_test(product: Product, period_s: float, rules: MarketRules, cycles: int = 3) -> TestSignal:
    """Sine test: ±amplitude around the product's centre frequency, after one settling cycle."""
    pq = rules.prequal
    centre = 50.0 if product is Product.FCR_N else pq.fcr_d_sine_centre_hz[product.value]
    log_hz = pq.fcr_n_log_hz if product is Product.FCR_N else pq.fcr_d_log_hz
    dt = 1.0 / log_hz
    settle = period_s
    total = settle + cycles * period_s
    t = np.arange(0.0, total + dt / 2, dt)
    f = centre + pq.fcr_n_sine_amplitude_hz * np.sin(2 * math.pi * t / period_s)
    name = f"{product.value}_sine_{int(period_s)}s"
    return TestSignal(name, product, dt, t, f, {"analysis": settle}, {"analysis": (settle, total)}, period_s)
