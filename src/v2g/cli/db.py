"""`v2g db ...`: schema migrations."""

from __future__ import annotations

import typer

from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.migrate import downgrade as run_downgrade
from v2g.adapters.db.migrate import schema_status
from v2g.adapters.db.migrate import upgrade as run_upgrade
from v2g.config import Settings

app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("heads", help="Target revision; all by default.")) -> None:
    """Apply migrations to the database named by V2G_DATABASE_URL."""
    engine = make_engine(Settings().database_url)
    run_upgrade(engine, revision)
    status = schema_status(engine)
    typer.echo(f"database at {', '.join(sorted(status.current)) or 'base'}")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base.")) -> None:
    """Revert migrations down to REVISION."""
    engine = make_engine(Settings().database_url)
    run_downgrade(engine, revision)
    typer.echo(f"database at {', '.join(sorted(schema_status(engine).current)) or 'base'}")


@app.command()
def current() -> None:
    """Show the database's revision and whether it matches the code."""
    status = schema_status(make_engine(Settings().database_url))
    state = "up to date" if status.up_to_date else "NOT up to date: run `v2g db upgrade`"
    typer.echo(f"current={sorted(status.current)} heads={sorted(status.heads)} ({state})")
