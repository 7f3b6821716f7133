"""`v2g serve` and `v2g demo`: bootstrap the platform and hand it to the runtime."""

from __future__ import annotations

import asyncio
from datetime import UTC

import typer
from sqlalchemy import text

from v2g.adapters.clock import AcceleratedClock
from v2g.adapters.db.demo_seed import demo_batteries, seed_demo, seed_demo_households
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.journey_repo import sql_unit_of_work
from v2g.adapters.db.migrate import SchemaNotCurrentError, upgrade
from v2g.bootstrap import Platform, bootstrap
from v2g.config import Settings
from v2g.log import configure_logging
from v2g.runtime import Runtime
from v2g.runtime.app import build_app
from v2g.runtime.demo import qualify_bidding_groups, start_demo_fleet
from v2g.services.journey.demo import DEMO_ORGANISATIONS, seed_demo_journeys
from v2g.units import to_local, utc_now


def serve(
    host: str = typer.Option(None, help="Bind address (default V2G_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default V2G_PORT or 8000)."),
) -> None:
    """Serve the platform: API (docs at /docs), CSMS and the operating day's jobs. Refuses an unmigrated database."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        platform = bootstrap(settings)
    except SchemaNotCurrentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    asyncio.run(serve_platform(platform, host or settings.host, port or settings.port, demo=False))


def demo(
    host: str = typer.Option(None, help="Bind address (default V2G_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default V2G_PORT or 8000)."),
) -> None:
    """Migrate the embedded database, seed demo households and run the whole platform at accelerated time."""
    settings = Settings()
    if not settings.frequency_source:
        settings = settings.model_copy(update={"frequency_source": "recorded"})
    configure_logging(settings.log_level, json=settings.log_json)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    added = seed_demo(engine)
    sites = seed_demo_households(engine, settings.demo_chargers)
    batteries = demo_batteries(engine)
    engine.dispose()
    typer.echo(f"database {engine.url.render_as_string(hide_password=True)} migrated; {added} demo customers added")
    start_at = utc_now().replace(tzinfo=UTC)
    platform = bootstrap(settings, clock=AcceleratedClock(settings.demo_speed, start_at))
    logins: list[tuple[str, str, str]] = []
    if platform.journeys is not None:
        with platform.engine.connect() as conn:
            customer_ids = list(
                conn.execute(text("SELECT id FROM customers WHERE id NOT LIKE 'hh-%' ORDER BY id")).scalars()
            )
        credentials = seed_demo_journeys(sql_unit_of_work(platform.engine), platform.journeys, customer_ids)
        typer.echo("demo logins (demo database only): " + ", ".join(f"{u} / {p}" for u, p in credentials[:11]))
        typer.echo(f"  ... and owner-<customer id> / {credentials[-1][1]} for each demo owner")
        roles = {username: role for _, _, role, username in DEMO_ORGANISATIONS}
        logins = [(u, p, roles.get(u, "owner")) for u, p in credentials]
    asyncio.run(
        serve_platform(
            platform,
            host or settings.host,
            port or settings.port,
            demo=True,
            sites=sites,
            batteries=batteries,
            demo_logins=logins,
        )
    )


async def serve_platform(
    platform: Platform,
    host: str,
    port: int,
    *,
    demo: bool,
    sites: dict[str, list[str]] | None = None,
    batteries: dict[str, float] | None = None,
    demo_logins: list[tuple[str, str, str]] | None = None,
) -> None:
    runtime = Runtime(platform, build_app(platform, demo_logins=demo_logins or ()), echo=typer.echo)
    fleet = None
    try:
        ocpp_port = await runtime.start_csms(host)
        scheme = "wss" if platform.settings.ocpp_tls_cert else "ws"
        typer.echo(f"V2G platform serving on http://{host}:{port}  (portal: /, API docs: /docs)")
        typer.echo(f"CSMS (OCPP 1.6 / 2.0.1 / 2.1) on {scheme}://{host}:{ocpp_port}/ocpp/{{charger_id}}")
        if runtime.mtls_port is not None:
            typer.echo(
                f"CSMS security profile 3 (client certificates) on wss://{host}:{runtime.mtls_port}/ocpp/{{charger_id}}"
            )
        for what, source in platform.provenance.items():
            typer.echo(f"{what}: {source}")
        if demo and sites:
            speed = platform.settings.demo_speed
            typer.echo(f"demo time starts {to_local(platform.clock.now()):%a %Y-%m-%d %H:%M} (Sweden), {speed:g}x")
            fleet = await start_demo_fleet(
                platform, sites, f"{scheme}://{host}:{ocpp_port}/ocpp", battery_by_site=batteries
            )
            typer.echo(f"demo: simulated wallboxes connected {fleet.connected} ({fleet.failed} failed)")
            runtime.spawn(qualify_bidding_groups(platform, typer.echo))
        await runtime.start_operating_day()
        await runtime.serve_http(host, port)  # until interrupted (uvicorn handles SIGINT/SIGTERM)
    finally:
        if fleet is not None:
            await fleet.stop()
        await runtime.stop()
