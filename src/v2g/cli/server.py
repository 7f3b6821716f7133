"""`v2g serve` and `v2g demo`."""

from __future__ import annotations

import typer
from fastapi import FastAPI
from sqlalchemy import text

from v2g.adapters.db.demo_seed import seed_demo
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.journey_repo import sql_unit_of_work
from v2g.adapters.db.migrate import SchemaNotCurrentError, upgrade
from v2g.api.app import create_app
from v2g.bootstrap import bootstrap
from v2g.cli.runtime import run_platform
from v2g.config import Settings
from v2g.log import configure_logging
from v2g.services.journey.demo import seed_demo_journeys


def serve(
    host: str = typer.Option(None, help="Bind address (default V2G_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default V2G_PORT or 8000)."),
) -> None:
    """Serve the platform (API, OpenAPI docs at /docs). Refuses an unmigrated database."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        platform = bootstrap(settings)
    except SchemaNotCurrentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    _run(platform.settings, create_app(platform), host, port)


def demo(
    host: str = typer.Option(None, help="Bind address (default V2G_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default V2G_PORT or 8000)."),
) -> None:
    """Migrate the embedded database, seed the demo fleet and serve the platform."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    added = seed_demo(engine)
    typer.echo(f"database {engine.url.render_as_string(hide_password=True)} migrated; {added} demo customers added")
    platform = bootstrap(settings)
    if platform.journeys is not None:
        with platform.engine.connect() as conn:
            customer_ids = list(conn.execute(text("SELECT id FROM customers ORDER BY id")).scalars())
        credentials = seed_demo_journeys(sql_unit_of_work(platform.engine), platform.journeys, customer_ids)
        typer.echo("demo logins (demo database only): " + ", ".join(f"{u} / {p}" for u, p in credentials[:11]))
        typer.echo(f"  ... and owner-<customer id> / {credentials[-1][1]} for each demo owner")
    _run(settings, create_app(platform), host, port, demo=True)


def _run(settings: Settings, app: FastAPI, host: str | None, port: int | None, *, demo: bool = False) -> None:
    run_platform(settings, app, host, port, demo=demo)
