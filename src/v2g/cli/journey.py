"""`v2g journey list|show|advance`: the operator's view of customer journeys."""

from __future__ import annotations

import json

import typer

from v2g.bootstrap import bootstrap
from v2g.journey.model import GateRefusedError, JourneyError
from v2g.services.actors.ports import NotFoundError, Principal
from v2g.services.journey.export import to_jsonable
from v2g.services.journey.service import JourneyService

app = typer.Typer(help="Customer journeys through the service blueprint.", no_args_is_help=True)
OPERATOR = Principal("cli-operator", "platform", "system", display_name="operator command line")


def _service() -> JourneyService:
    platform = bootstrap()
    if platform.journeys is None:
        typer.echo(f"error: no blueprint at {platform.settings.blueprint_path} (set V2G_BLUEPRINT_PATH)", err=True)
        raise typer.Exit(code=2)
    return platform.journeys


@app.command("list")
def list_journeys(stage: str = typer.Option(None, help="Only journeys in this stage.")) -> None:
    """Every journey: id, customer, stage, status, SLA state."""
    service = _service()
    rows = [j for j in service.list_journeys(OPERATOR) if stage is None or j.stage_id == stage]
    typer.echo(f"{'journey':<22} {'customer':<16} {'stage':<26} {'status':<12} sla")
    for j in rows:
        sla = service.tracker(OPERATOR, j.id).sla.state.value
        typer.echo(f"{j.id:<22} {j.customer_id:<16} {j.stage_id:<26} {j.status.value:<12} {sla}")
    typer.echo(f"{len(rows)} journeys")


@app.command()
def show(journey_id: str, as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """A journey's status tracker and tasks."""
    service = _service()
    try:
        view = service.get(OPERATOR, journey_id)
        tracker = service.tracker(OPERATOR, journey_id)
    except NotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if as_json:
        typer.echo(json.dumps({"tracker": to_jsonable(tracker), "tasks": to_jsonable(view.tasks)}, indent=2))
        return
    typer.echo(f"{view.journey.id} ({view.journey.customer_id}) {tracker.stage_name} [{tracker.status.value}]")
    typer.echo(
        f"  SLA: {tracker.sla.state.value}" + (f", due {tracker.sla.due_at:%Y-%m-%d}" if tracker.sla.due_at else "")
    )
    if tracker.dso_queue_position is not None:
        typer.echo(f"  DSO queue position: {tracker.dso_queue_position}")
    if tracker.go_live.expected_at is not None:
        typer.echo(f"  go-live: {tracker.go_live.expected_at:%Y-%m-%d} ± {tracker.go_live.uncertainty_days} days")
    typer.echo(f"  waiting on: {', '.join(tracker.waiting_on) or 'nobody'}")
    for task in view.tasks:
        mark = {"completed": "x", "waiting": "~", "open": " "}[task.status.value]
        extra = f"  ({task.waiting_reason})" if task.waiting_reason else ""
        typer.echo(f"  [{mark}] {task.stage_id:<24} {task.role:<20} {task.title}{extra}")


@app.command()
def advance(
    journey_id: str, to_stage: str = typer.Option(None, "--to", help="Expected next stage (refused if not next).")
) -> None:
    """Move a journey to its next stage if the gates allow it; otherwise list the unmet conditions."""
    service = _service()
    try:
        view = service.advance(OPERATOR, journey_id, to_stage)
    except GateRefusedError as exc:
        typer.echo("refused: unmet conditions:", err=True)
        for condition in exc.unmet:
            typer.echo(f"  - {condition}", err=True)
        raise typer.Exit(code=3) from exc
    except (NotFoundError, JourneyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"{view.journey.id} is now at {view.journey.stage_id}")


@app.command("sla-sweep")
def sla_sweep() -> None:
    """Announce stages that reached their SLA warning or breach (run it periodically, e.g. hourly)."""
    announced = _service().sla_sweep()
    for journey_id, stage_id, state in announced:
        typer.echo(f"{journey_id} {stage_id} {state}")
    typer.echo(f"{len(announced)} SLA notifications")
