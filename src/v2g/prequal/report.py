"""The test protocol a TSO receives: CSV logs per test plus a standalone HTML report.

The HTML has inline SVG plots (no external assets, no scripts) and pass/fail per requirement.
"""

from __future__ import annotations

import csv
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
    p_min_mw: float = 0.0  # the group's power limits in injection terms (Table 18 Pmin/Pmax)
    p_max_mw: float = 0.0

    @property
    def passed(self) -> bool:
        """True when every requirement passed."""
        return all(r.passed for r in self.requirements)

    def failed(self) -> list[Requirement]:
        """Requirements that failed."""
        return [r for r in self.requirements if not r.passed]


_SERVICE = {Product.FCR_N: "Fcrn", Product.FCR_D_UP: "FcrdUp", Product.FCR_D_DOWN: "FcrdDo"}


def table_18_service(product: Product) -> str:
    """The [Service] of a file name and the suffix of the per-product headers (Table 18)."""
    return _SERVICE[product]


def _stamp(at: datetime) -> str:
    return at.strftime("%Y%m%dT%H%M%S.") + f"{at.microsecond // 1000:03d}"


def protocol_file_name(result: PrequalResult, log: TestLog, start: datetime, area: str, timezone: str) -> str:
    """[Resource]_[Service]_[TestType]_[Area]_[Timezone]_[Interval]_[SamplingRate]_[Date].csv (FCR-TR v1.1 §6.2.1)."""
    end = start + timedelta(seconds=float(log.signal.t_s[-1]))
    interval = f"{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}"
    rate = f"{round(log.signal.dt_s * 1000)}ms"
    parts = [result.group_id, table_18_service(result.product), log.signal.test_type or log.signal.name, area]
    return "_".join([*parts, timezone, interval, rate, f"{start:%Y%m%d}"]) + ".csv"


def table_18_rows(result: PrequalResult, log: TestLog, start: datetime) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one test's log with the Table 18 test signals (MW, injection positive).

    Grid frequency is left blank: the test applies its own frequency signal. Sine logs carry the
    period in every header (DateTime40, InsAcPow40 ...).
    """
    service = table_18_service(result.product)
    suffix = f"{int(log.signal.period_s)}" if log.signal.period_s is not None else ""
    baseline = log.baseline_kw if log.baseline_kw is not None else log.p_kw + log.dp_kw
    cap_mw = result.tested_capacity_kw / 1000.0
    columns: list[tuple[str, list[str]]] = [
        ("InsAcPow", [f"{-p / 1000.0:.6f}" for p in log.p_kw]),
        ("GridFreq", ["" for _ in log.p_kw]),
        ("ApplFreqSig", [f"{f:.4f}" for f in log.signal.f_hz]),
        ("CalcBaseline", [f"{-b / 1000.0:.6f}" for b in baseline]),
    ]
    for product, name in _SERVICE.items():
        tested = product is result.product
        columns.append((f"ContMode_{name}", [result.control_mode if tested else "" for _ in log.p_kw]))
        columns.append((f"Cap_{name}", [f"{cap_mw:.6f}" if tested else "0" for _ in log.p_kw]))
        columns.append((f"ContStatus_{name}", ["1" if tested else "0" for _ in log.p_kw]))
    columns += [
        ("Pmin", [f"{result.p_min_mw:.6f}" for _ in log.p_kw]),
        ("Pmax", [f"{result.p_max_mw:.6f}" for _ in log.p_kw]),
        ("ContSetP", [f"{-b / 1000.0:.6f}" for b in baseline]),
    ]
    for name in (f"ResSize_{service}", f"NEM_MW_{service}", f"NEM_{service}", f"AEM_{service}", "SOC"):
        if name in log.signals:
            fmt = "{:.0f}" if name.startswith(("NEM_F", "AEM_")) else "{:.6f}"
            columns.append((name, [fmt.format(v) for v in log.signals[name]]))
    times = [_stamp(start + timedelta(seconds=float(t))) for t in log.signal.t_s]
    header = [f"DateTime{suffix}", *(f"{name}{suffix}" for name, _ in columns)]
    rows = [[times[i], *(values[i] for _, values in columns)] for i in range(len(times))]
    return header, rows


def write_csv_logs(result: PrequalResult, out_dir: Path, *, area: str = "SE3", timezone: str = "UTC") -> list[Path]:
    """One CSV per test, named and laid out as FCR-TR v1.1 §6.2.1 asks (comma, point, CRLF, ASCII)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    start = result.started_at.astimezone(UTC)
    for log in result.logs:
        path = out_dir / protocol_file_name(result, log, start, area, timezone)
        header, rows = table_18_rows(result, log, start)
        with path.open("w", newline="", encoding="ascii", errors="replace") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(header)
            writer.writerows(rows)
        paths.append(path)
        start += timedelta(seconds=float(log.signal.t_s[-1]) + log.signal.dt_s)
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
            f"<p>Nyquist curve of F·G: signed distance from -1 {margin} (negative: passes left of -1; "
            "must be at least 0.43·0.95 on the right side).</p>"
        )
    plots = "".join(f"<h3>{e(log.signal.name)}</h3>{_svg_plot(log)}" for log in result.logs)
    title = f"FCR pre-qualification {e(result.product.value)} {e(result.group_id)}"
    ler_text = "yes (energy-management test)" if result.ler else "no (endurance holds)"
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
<tr><th>reduction factor min(K_red,ss, K_red,dyn)</th><td>{result.k_red:.3f}</td></tr>
<tr><th>qualified capacity</th><td>{result.qualified_capacity_kw:.1f} kW</td></tr>
<tr><th>limited energy reservoir</th><td>{ler_text}</td></tr>
<tr><th>extension without retest up to</th><td>{result.max_without_retest_mw:.3f} MW</td></tr>
</table>
<h2>Requirements</h2>
<table><tr><th>test</th><th>id</th><th>requirement</th><th>measured</th><th>limit</th><th>result</th></tr>{rows}</table>
{sine}
<h2>Plots</h2>
{plots}
<p>Criteria: FCR-TR v1.1 and FCR-Test v1.1 (28 March 2025). Logs: one CSV per test next to this report,
with the Table 18 signals, named as §6.2.1 asks.</p>
</body></html>
"""


def write_protocol(result: PrequalResult, out_dir: Path, *, area: str = "SE3", timezone: str = "UTC") -> Path:
    """Write the CSV logs and the HTML report; returns the report's path."""
    write_csv_logs(result, out_dir, area=area, timezone=timezone)
    path = out_dir / f"{result.group_id}_{result.product.value}_report.html"
    path.write_text(render_html(result), encoding="utf-8")
    return path
