"""The `v2g` command line (Typer). Each capability adds its own sub-app here."""

from __future__ import annotations

import typer

from v2g.cli import blueprint as blueprint_cli
from v2g.cli import db as db_cli
from v2g.cli import devices as devices_cli
from v2g.cli import dispatch as dispatch_cli
from v2g.cli import journey as journey_cli
from v2g.cli import markets as markets_cli
from v2g.cli import ops as ops_cli
from v2g.cli import plan as plan_cli
from v2g.cli import prequal as prequal_cli
from v2g.cli import server as server_cli
from v2g.cli import settle as settle_cli
from v2g.cli import twin as twin_cli

app = typer.Typer(
    name="v2g",
    help="V2G service platform: blueprint, journeys, planning, devices, markets, operations, settlement.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db_cli.app, name="db")
app.add_typer(prequal_cli.app, name="prequal")
app.add_typer(dispatch_cli.app, name="dispatch")
app.add_typer(markets_cli.app, name="markets")
app.add_typer(plan_cli.app, name="plan")
app.add_typer(ops_cli.app, name="ops")
app.add_typer(twin_cli.app, name="twin")
app.add_typer(journey_cli.app, name="journey")
app.add_typer(blueprint_cli.app, name="blueprint")
app.add_typer(settle_cli.app, name="settle")
app.command("serve")(server_cli.serve)
app.command("demo")(server_cli.demo)
app.add_typer(devices_cli.charger_app, name="charger")
app.add_typer(devices_cli.sim_app, name="sim")
app.command("csms")(devices_cli.csms)


def main() -> None:
    """Console-script entry point."""
    app()
