"""`v2g plan ...`: plan a fleet from files, and re-check a plan.

``v2g plan --fleet FLEET.json --prices PRICES.csv [--reserve-prices FCR.csv] --strategy S --out PLAN.json``
plans (``v2g plan run ...`` is the same); ``v2g plan check PLAN.json --fleet FLEET.json --prices ...``
re-verifies every invariant of a plan.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from v2g.adapters.feeds.planner_prices import read_planner_day_ahead_csv, read_planner_reserve_csv
from v2g.planning import PlannerOptions, PlanningInputError, Strategy, check_schedule, load_rules
from v2g.planning import plan as run_plan
from v2g.planning.files import load_problem, plan_from_json, plan_to_json
from v2g.planning.model import PlanningProblem
from v2g.planning.rules import PlanningRules

app = typer.Typer(
    help="Fleet planner: day-ahead energy and FCR reserves for plugged-in EVs.",
    invoke_without_command=True,
    no_args_is_help=False,
)

FLEET = typer.Option(None, "--fleet", help="Fleet JSON (EVs, sites, grid areas).")
PRICES = typer.Option(None, "--prices", help="Day-ahead prices CSV: start_at,SE1..SE4 (15-min or hourly).")
RESERVE = typer.Option(None, "--reserve-prices", help="FCR prices CSV: hour_start_at,fcr_n,fcr_d_up,fcr_d_down.")
STRATEGY = typer.Option(Strategy.V2G_RESERVES, "--strategy", help="Planning strategy.")
OUT = typer.Option(None, "--out", help="Where to write PLAN.json.")
WORKERS = typer.Option(2, "--workers", min=1, help="Local worker processes.")
FLEET_REQ = typer.Option(..., "--fleet", help="Fleet JSON (EVs, sites, grid areas).")
PRICES_REQ = typer.Option(..., "--prices", help="Day-ahead prices CSV.")
OUT_REQ = typer.Option(..., "--out", help="Where to write PLAN.json.")
PLAN_ARG = typer.Argument(..., help="PLAN.json written by `v2g plan`.")


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"error: {what} {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc


def _load(fleet: Path, prices: Path, reserve_prices: Path | None, rules: PlanningRules) -> PlanningProblem:
    """The planning problem: the fleet file, with the price files read by the price feeds."""
    prices_text = _read(prices, "prices")
    reserve_text = _read(reserve_prices, "reserve prices") if reserve_prices else None
    return load_problem(
        _read(fleet, "fleet"),
        lambda start, n: read_planner_day_ahead_csv(prices_text, start, n),
        (lambda start, hours: read_planner_reserve_csv(reserve_text, start, hours)) if reserve_text else None,
        rules,
    )


def _do_plan(
    fleet: Path, prices: Path, reserve_prices: Path | None, strategy: Strategy, out: Path, workers: int
) -> None:
    try:
        problem = _load(fleet, prices, reserve_prices, load_rules())
        result = run_plan(problem, strategy, PlannerOptions(workers=workers, keep_state=False))
    except PlanningInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    violations = check_schedule(problem, result)
    out.write_text(json.dumps(plan_to_json(result), indent=1) + "\n", encoding="utf-8")
    typer.echo(
        f"{result.strategy}: {len(result.ev_plans)} EVs, objective {result.objective_eur:.2f} EUR "
        f"(energy {result.energy_cost_eur:.2f}, reserves -{result.reserve_revenue_eur:.2f}, "
        f"wear {result.wear_cost_eur:.2f}), {len(result.bids)} bids, {len(result.shortfalls)} shortfalls, "
        f"{len(violations)} violations -> {out}"
    )
    for s in result.shortfalls[:20]:
        typer.echo(f"shortfall: ev[{s.ev_id}]: {s.planned_soc_kwh:.2f} of {s.target_soc_kwh:.2f} kWh ({s.reason})")
    if violations:
        for v in violations[:20]:
            typer.echo(f"violation: {v}", err=True)
        raise typer.Exit(1)


@app.callback()
def main(
    ctx: typer.Context,
    fleet: Path | None = FLEET,
    prices: Path | None = PRICES,
    reserve_prices: Path | None = RESERVE,
    strategy: Strategy = STRATEGY,
    out: Path | None = OUT,
    workers: int = WORKERS,
) -> None:
    """Plan a fleet (the default) or, with a sub-command, check a plan."""
    if ctx.invoked_subcommand is not None:
        return
    if fleet is None or prices is None or out is None:
        typer.echo("error: --fleet, --prices and --out are required to plan", err=True)
        raise typer.Exit(2)
    _do_plan(fleet, prices, reserve_prices, strategy, out, workers)


@app.command("run")
def run(
    fleet: Path = FLEET_REQ,
    prices: Path = PRICES_REQ,
    reserve_prices: Path | None = RESERVE,
    strategy: Strategy = STRATEGY,
    out: Path = OUT_REQ,
    workers: int = WORKERS,
) -> None:
    """Plan a fleet and write PLAN.json (same as `v2g plan --fleet ...`)."""
    _do_plan(fleet, prices, reserve_prices, strategy, out, workers)


@app.command("check")
def check(
    plan_file: Path = PLAN_ARG,
    fleet: Path = FLEET_REQ,
    prices: Path = PRICES_REQ,
    reserve_prices: Path | None = RESERVE,
) -> None:
    """Re-verify every invariant of a plan against its fleet; exit 1 on any violation."""
    try:
        problem = _load(fleet, prices, reserve_prices, load_rules())
        result = plan_from_json(_read(plan_file, "plan"))
    except PlanningInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    violations = check_schedule(problem, result)
    for v in violations[:50]:
        typer.echo(f"violation: {v}")
    typer.echo(f"{len(violations)} violations in {plan_file}")
    if violations:
        raise typer.Exit(1)
