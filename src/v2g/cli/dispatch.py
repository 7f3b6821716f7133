"""`v2g dispatch replay`: a simulated fleet holding reserves follows a recorded frequency day."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated

import typer

from v2g.adapters.feeds.frequency import FrequencyRecording
from v2g.adapters.feeds.prices import FeedError
from v2g.markets.rules import default_rules
from v2g.sim.replay import make_fleet, replay
from v2g.units import parse_utc

app = typer.Typer(help="Real-time dispatch: replays and studies on the digital twin.", no_args_is_help=True)


@app.command("replay")
def replay_cmd(
    frequency: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Frequency file (utc,f_hz; 1 s; .csv or .csv.gz).")
    ],
    evs: Annotated[int, typer.Option(min=1, help="Number of simulated EVs.")] = 1000,
    speed: Annotated[
        float, typer.Option(min=0.0, max=1000.0, help="Replay speed vs real time (1-1000); 0 = as fast as possible.")
    ] = 0.0,
    hours: Annotated[float, typer.Option(min=1 / 3600, help="Length of the window to replay.")] = 24.0,
    start: Annotated[str, typer.Option(help="UTC start (ISO 8601); default the file's first sample.")] = "",
    seed: Annotated[int, typer.Option(help="Random seed of the simulated fleet.")] = 7,
) -> None:
    """Replay the frequency on the twin, then print the delivery report (one line per hour and product)."""
    rules = default_rules()
    seconds = round(hours * 3600)
    try:
        recording = FrequencyRecording(
            frequency, parse_utc(start, field="--start") if start else None, seconds, speed=speed
        )
        window = recording.window()  # validates the whole window before the fleet starts
    except (FeedError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--frequency") from exc
    n_seconds = len(window.f_hz)
    began = time.perf_counter()
    summary = asyncio.run(replay(recording, window.start_at, n_seconds, make_fleet(evs, n_seconds, seed=seed), rules))
    elapsed = time.perf_counter() - began
    for r in summary.records:
        typer.echo(
            f"{r.hour_start_at:%Y-%m-%d %H:%M}Z {r.product.value:10s} committed {r.committed_mw:5.1f} MW "
            f"required {r.required_mwh:8.4f} MWh delivered {r.delivered_mwh:8.4f} MWh "
            f"availability {r.availability:6.2%} repayment {r.repayment_eur} EUR"
        )
    figures = {
        "evs": evs,
        "seconds": n_seconds,
        "filled_samples": window.filled,
        "required_mwh": round(summary.required_mwh, 4),
        "delivered_mwh": round(summary.delivered_mwh, 4),
        "delivered_vs_required": round(summary.delivered_ratio, 6),
        "departures": summary.departures,
        "charger_failures": summary.failures,
        "telemetry_messages": len(summary.telemetry),
        "telemetry_gaps": summary.telemetry_gaps,
        "telemetry_nem_active": sum(t.nem_active for t in summary.telemetry),
        "telemetry_aem_active": sum(t.aem_active for t in summary.telemetry),
        "missed_departure_targets": len(summary.missed_targets),
        "evs_below_min_soc": len(summary.below_min_soc),
        "repayment_eur": str(summary.repayment_eur),
        "run_s": round(elapsed, 1),
        "speed_x": round(n_seconds / elapsed, 1) if elapsed > 0 else None,
    }
    typer.echo(json.dumps(figures))
