"""The test protocol a TSO receives: CSV logs per test plus a standalone HTML report.

The HTML has inline SVG plots (no external assets, no scripts) and pass/fail per requirement.
"""

from __future__ import annotations

import csv
import html
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from v2g.dispatch.pool import FloatArray
from v2g.markets.rules import Product
from v2g.prequal.criteria import Requirement, SineResult
from v2g.prequal.sequences import TestSignal


@dataclass(frozen=True, slots=True)
class TestLog:
    """One executed test: the signal and what the group did."""

    __test__ = False  # not a pytest test class

    signal: TestSignal
    p_kw: FloatArray  # measured group power (EV sign)
    dp_kw: FloatArray  # response, grid-positive
    required_kw: FloatArray  # static response the frequency asks for
    baseline_kw: FloatArray | None = None  # the group's power baseline (EV sign)
    signals: dict[str, FloatArray] = field(default_factory=dict)  # Table 18 headers -> values (LER signals)


@dataclass(frozen=True, slots=True)
class PrequalResult:
    """Outcome of a pre-qualification run."""

    product: Product
    group_id: str
    units: int
    unit_type: str
    control_mode: str
    tested_capacity_kw: float
    qualified_capacity_kw: float
    started_at: datetime
    requirements: tuple[Requirement, ...]
    logs: tuple[TestLog, ...] = field(repr=False)
    sine_results: tuple[SineResult, ...] = ()
    stability_margin: float | None = None
    max_without_retest_mw: float = 0.0
    k_red: float = 1.0  # min(K_red,ss, K_red,dyn)
    ler: bool = False  # tested as a limited energy reservoir

    @property
    def passed(self) -> bool:
        """True when every requirement passed."""
        return all(r.passed for r in self.requirements)

    def failed(self) -> list[Requirement]:
        """Requirements that failed."""
        return [r for r in self.requirements if not r.passed]


def write_csv_logs(result: PrequalResult, out_dir: Path) -> list[Path]:
    """One CSV per test: time, frequency, measured power, response and required response."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for log in result.logs:
        path = out_dir / f"{result.group_id}_{log.signal.name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["t_s", "f_hz", "p_kw", "response_kw", "required_kw"])
            for row in zip(log.signal.t_s, log.signal.f_hz, log.p_kw, log.dp_kw, log.required_kw, strict=True):
                writer.writerow([f"{row[0]:.2f}", f"{row[1]:.4f}", f"{row[2]:.3f}", f"{row[3]:.3f}", f"{row[4]:.3f}"])
        paths.append(path)
    return paths


def _polyline(
    x: FloatArray,
    y: FloatArray,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    box: tuple[int, int, int, int],
) -> str:
    left, top, width, height = box
    x0, x1 = x_range
    y0, y1 = y_range
    if len(x) > 1500:  # keep the file small: thin to at most ~1500 points
        step = int(np.ceil(len(x) / 1500))
        x, y = x[::step], y[::step]
    sx = left + (x - x0) / max(x1 - x0, 1e-9) * width
    sy = top + height - (y - y0) / max(y1 - y0, 1e-9) * height
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(sx, sy, strict=True))


def _svg_plot(log: TestLog) -> str:
    w, h = 760, 300
    box_f = (60, 20, 640, 100)
    box_p = (60, 150, 640, 120)
    t = log.signal.t_s
    tr = (float(t[0]), float(t[-1]))
    f = log.signal.f_hz
    fr = (float(f.min()) - 0.02, float(f.max()) + 0.02)
    p_all = np.concatenate([log.dp_kw, log.required_kw])
    pr = (float(p_all.min()) - 0.5, float(p_all.max()) + 0.5)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">',
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="#fff"/>',
    ]
    for (left, top, bw, bh), label, rng in ((box_f, "f [Hz]", fr), (box_p, "response [kW]", pr)):
        parts.append(f'<rect x="{left}" y="{top}" width="{bw}" height="{bh}" fill="none" stroke="#999"/>')
        parts.append(f'<text x="4" y="{top + 12}" font-size="11">{label}</text>')
        parts.append(f'<text x="4" y="{top + bh}" font-size="10">{rng[0]:.2f}</text>')
        parts.append(f'<text x="4" y="{top + 26}" font-size="10">{rng[1]:.2f}</text>')
    parts.append(
        f'<polyline fill="none" stroke="#1f5fa8" stroke-width="1.2" points="{_polyline(t, f, tr, fr, box_f)}"/>'
    )
    parts.append(
        f'<polyline fill="none" stroke="#999" stroke-dasharray="4 3" stroke-width="1.2" '
        f'points="{_polyline(t, log.required_kw, tr, pr, box_p)}"/>'
    )
    parts.append(
        f'<polyline fill="none" stroke="#c0392b" stroke-width="1.4" points="{_polyline(t, log.dp_kw, tr, pr, box_p)}"/>'
    )
    parts.append(f'<text x="60" y="{h - 8}" font-size="10">0 s</text>')
    parts.append(f'<text x="{60 + 640 - 40}" y="{h - 8}" font-size="10">{tr[1]:.0f} s</text>')
    parts.append(
        f'<text x="300" y="{h - 8}" font-size="10"><tspan fill="#c0392b">— delivered</tspan> '
        '<tspan fill="#777">- - required (static)</tspan></text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def render_html(result: PrequalResult) -> str:
    """The standalone HTML report."""
    e = html.escape
    verdict = "PASSED" if result.passed else "FAILED"
    rows = "".join(
        f'<tr class="{"ok" if r.passed else "bad"}"><td>{e(r.test)}</td><td>{e(r.id)}</td><td>{e(r.description)}</td>'
        f"<td>{r.measured:.3f} {e(r.unit)}</td><td>{r.limit:.3f}</td><td>{'PASS' if r.passed else 'FAIL'}</td></tr>"
        for r in result.requirements
    )
    sine = ""
    if result.sine_results:
        sine_rows = "".join(
            f"<tr><td>{s.period_s:.0f}</td><td>{s.gain:.3f}</td><td>{s.phase_deg:.1f}</td><td>{s.linearity:.3f}</td></tr>"
            for s in result.sine_results
        )
        margin = f"{result.stability_margin:.3f}" if result.stability_margin is not None else "n/a"
        sine = (
            "<h2>Sine tests</h2><table><tr><th>period [s]</th><th>gain [p.u.]</th><th>phase [deg]</th>"
            f"<th>linearity</th></tr>{sine_rows}</table>"
            f"<p>Smallest distance of the open loop from -1: {margin} (must be at least 0.43).</p>"
        )
    plots = "".join(f"<h3>{e(log.signal.name)}</h3>{_svg_plot(log)}" for log in result.logs)
    title = f"FCR pre-qualification {e(result.product.value)} {e(result.group_id)}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; font-size: 13px; text-align: left; }}
tr.ok td:last-child {{ color: #1e7d32; font-weight: bold; }}
tr.bad td:last-child {{ color: #b71c1c; font-weight: bold; }}
.verdict {{ font-size: 1.4em; font-weight: bold; color: {"#1e7d32" if result.passed else "#b71c1c"}; }}
</style></head><body>
<h1>FCR pre-qualification test protocol</h1>
<p class="verdict">{verdict}</p>
<table>
<tr><th>product</th><td>{e(result.product.value)}</td></tr>
<tr><th>providing group</th><td>{e(result.group_id)}</td></tr>
<tr><th>units</th><td>{result.units} x {e(result.unit_type)}</td></tr>
<tr><th>control</th><td>{e(result.control_mode)}</td></tr>
<tr><th>test started</th><td>{e(result.started_at.isoformat())}</td></tr>
<tr><th>tested capacity</th><td>{result.tested_capacity_kw:.1f} kW</td></tr>
<tr><th>qualified capacity (measured)</th><td>{result.qualified_capacity_kw:.1f} kW</td></tr>
<tr><th>extension without retest up to</th><td>{result.max_without_retest_mw:.3f} MW</td></tr>
</table>
<h2>Requirements</h2>
<table><tr><th>test</th><th>id</th><th>requirement</th><th>measured</th><th>limit</th><th>result</th></tr>{rows}</table>
{sine}
<h2>Plots</h2>
{plots}
<p>Criteria: FCR-Test v1.1 (28 March 2025). Logs: one CSV per test next to this report.</p>
</body></html>
"""


def write_protocol(result: PrequalResult, out_dir: Path) -> Path:
    """Write the CSV logs and the HTML report; returns the report's path."""
    write_csv_logs(result, out_dir)
    path = out_dir / f"{result.group_id}_{result.product.value}_report.html"
    path.write_text(render_html(result), encoding="utf-8")
    return path
