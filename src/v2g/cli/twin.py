"""`v2g twin run`: the whole platform against simulated households, in simulated time."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from v2g.adapters.db.demo_seed import demo_households, seed_demo, seed_demo_households
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.migrate import upgrade
from v2g.adapters.db.operations_repo import SqlFleetState, SqlPlanStore
from v2g.adapters.feeds.frequency import RecordedFrequencyDay
from v2g.bootstrap import bootstrap
from v2g.config import Settings
from v2g.fleet.model import ChargerProtocol, PriceArea
from v2g.log import configure_logging
from v2g.runtime.demo import GroupUnit, qualify_bidding_groups
from v2g.runtime.simulation import run_simulated
from v2g.sim.clock import SimulatedClock
from v2g.sim.operating_twin import TwinEv
from v2g.sim.scenario import ScenarioError, TwinScenario, build_twin, load_scenario

app = typer.Typer(help="The digital twin: the platform against simulated households.", no_args_is_help=True)


def households_from_records(rows: list[dict[str, Any]]) -> list[TwinEv]:
    """The twin's households from the platform's records (one EV and one charger each)."""
    out = []
    for r in rows:
        protocol = ChargerProtocol(r["protocol"])
        discharge = min(float(r["ev_discharge_kw"]), float(r["charger_discharge_kw"]))
        out.append(
            TwinEv(
                r["ev_id"],
                r["customer_id"],
                r["charger_id"],
                r["site_id"],
                r["grid_area_id"],
                PriceArea(r["price_area"]),
                protocol,
                float(r["battery_kwh"]),
                min(float(r["ev_charge_kw"]), float(r["charger_charge_kw"])),
                0.0 if protocol is ChargerProtocol.OCPP16 else discharge,
            )
        )
    return out


async def run_twin(scenario: TwinScenario, database_url: str, *, echo: Any = None) -> dict[str, Any]:
    """Run ``scenario`` on a fresh database: seed households, build the platform on the twin, run."""
    say = echo or (lambda _line: None)
    engine = make_engine(database_url)
    upgrade(engine)
    seed_demo(engine)
    seed_demo_households(engine, scenario.households, evs_per_area=scenario.evs_per_area)
    households = households_from_records(demo_households(engine))[: scenario.households]
    areas = SqlFleetState(engine).area_limits(sorted({h.grid_area_id for h in households}))
    twin = build_twin(scenario, households, areas)
    settings = Settings(
        database_url=database_url,
        planning_strategy=scenario.strategy,
        frequency_source="",
        replan_check_s=scenario.replan_check_s,
    )
    platform = bootstrap(
        settings,
        engine=engine,
        clock=SimulatedClock(scenario.start),
        fleet_state=twin,
        gateway=twin.gateway,
        dispatched=twin.dispatched,
        online_chargers=twin.online_charger_ids,
        frequency=RecordedFrequencyDay() if scenario.frequency else None,
    )
    units = [GroupUnit(h.ev_id, h.charger_id, h.price_area) for h in households if h.max_discharge_kw > 0]
    await qualify_bidding_groups(platform, say, units=units, max_test_units=20)
    started = time.perf_counter()
    run = await run_simulated(platform, twin, scenario.start, scenario.end, step=scenario_step(scenario))
    wall_s = time.perf_counter() - started
    with platform.market_tx() as store:
        group_ids = store.group_ids_of(settings.bsp_org_id)
        bids = [b for gid in group_ids for b in store.bids(gid)]
        commitments = [c for gid in group_ids for c in store.commitments(gid, scenario.start, scenario.end)]
    reports = platform.dispatch.reports if platform.dispatch is not None else []
    plans_made = SqlPlanStore(engine).plans_between(scenario.start, scenario.end)
    missed = [d for d in twin.departures if not d.met]
    engine.dispose()
    return {
        "households": len(households),
        "days": scenario.days,
        "strategy": scenario.strategy,
        "wall_s": round(wall_s, 2),
        "steps": run.steps,
        "plans": plans_made,
        "departures": len(twin.departures),
        "departures_missed": len(missed),
        "energy_in_kwh": round(twin.energy_in_kwh, 3),
        "energy_out_kwh": round(twin.energy_out_kwh, 3),
        "bids": len(bids),
        "bids_accepted": sum(1 for b in bids if b.status.value == "accepted"),
        "commitments": len(commitments),
        "committed_mw_h": round(sum(c.mw * (c.end_at - c.start_at).total_seconds() / 3600 for c in commitments), 3),
        "dispatch_hours": len(reports),
        "required_mwh": round(sum(r.required_mwh for r in reports), 4),
        "delivered_mwh": round(sum(r.delivered_mwh for r in reports), 4),
        "repayment_eur": str(sum((r.repayment_eur for r in reports), start=0)),
        "prices": platform.provenance,
        "failed_jobs": [line for line in run.lines if ": failed:" in line][:5],
    }


def scenario_step(scenario: TwinScenario) -> timedelta:
    return timedelta(minutes=scenario.step_minutes)


@app.command("run")
def run(
    scenario_file: Annotated[Path, typer.Option("--scenario", help="Scenario YAML (households, days, start, seed).")],
    out: Annotated[Path | None, typer.Option(help="Write the run's figures here (JSON).")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Database for the run (default: a fresh SQLite file in a temporary folder).")
    ] = None,
) -> None:
    """Run a scenario: the platform's own planning, market calendar and dispatch against twin households."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        scenario = load_scenario(scenario_file)
    except ScenarioError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    with tempfile.TemporaryDirectory(prefix="v2g-twin-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'twin.db'}"
        figures = asyncio.run(run_twin(scenario, url, echo=typer.echo))
    text = json.dumps(figures, default=str)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)
