"""`v2g ops status`: the operator's view of the operating day on the console."""

from __future__ import annotations

import json

import typer

from v2g.adapters.db.migrate import SchemaNotCurrentError
from v2g.bootstrap import bootstrap
from v2g.services.operations.view import Audience, status_for

app = typer.Typer(help="Operating-day operations: the operator's status.", no_args_is_help=True)


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="The full status as JSON.")) -> None:
    """Plan, bids, commitments, delivery, dispatch, offline chargers and departures at risk, now."""
    try:
        platform = bootstrap()
    except SchemaNotCurrentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    try:
        if platform.operations is None:  # pragma: no cover - bootstrap always builds it
            typer.echo("error: the platform has no operations view", err=True)
            raise typer.Exit(code=2)
        current = platform.operations.current()
    finally:
        platform.engine.dispose()
    if as_json:
        typer.echo(json.dumps(status_for(current, Audience.OPERATOR), indent=2))
        return
    for line in current.summary_lines():
        typer.echo(line)
