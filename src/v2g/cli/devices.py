"""`v2g charger ...` operator commands, `v2g csms` and `v2g sim chargers ...`."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import typer

from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.fleet_repo import NotFoundError
from v2g.adapters.db.provisioning import PROTOCOLS, provision_simulated, read_credentials, write_credentials
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.bootstrap import bootstrap, platform_ca
from v2g.config import Settings
from v2g.devices import DeviceError, IdTokenRecord, TokenStatus
from v2g.log import configure_logging
from v2g.services.clock import SystemClock
from v2g.services.devices.certificates import REQUESTED_BY_OPERATOR, StationCertificates
from v2g.services.devices.installation import register_charger
from v2g.sim.fleet import start_fleet

charger_app = typer.Typer(help="Chargers: register, inspect, telemetry retention.", no_args_is_help=True)
sim_app = typer.Typer(help="The digital twin: simulated wallboxes with EVs.", no_args_is_help=True)


@contextmanager
def _store() -> Iterator[SqlDeviceStore]:
    platform = bootstrap(Settings())
    try:
        yield platform.devices
    finally:
        platform.engine.dispose()


@charger_app.command("register")
def register(
    site: str = typer.Option(..., help="Site id the wallbox is installed at."),
    protocol: str = typer.Option("2.1", help="1.6, 2.0.1 or 2.1."),
    vendor: str = typer.Option("Generic", help="Vendor."),
    model: str = typer.Option("BiDi", help="Model."),
    max_charge_kw: float = typer.Option(11.0, help="Charging rating, kW."),
    max_discharge_kw: float = typer.Option(11.0, help="Discharging rating, kW (0: charge-only)."),
    security_profile: int = typer.Option(
        2, help="1 basic auth, 2 TLS + basic auth, 3 TLS with a client certificate (then: issue-certificate)."
    ),
    charger_id: str = typer.Option(None, "--id", help="Charger id (generated if omitted)."),
) -> None:
    """Register a wallbox: id, password (shown once; none at profile 3) and V2G site id."""
    if protocol not in PROTOCOLS:
        typer.echo(f"error: protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}", err=True)
        raise typer.Exit(2)
    try:
        with _store() as store:
            reg = register_charger(
                store,
                Argon2Hasher(),
                site_id=site,
                vendor=vendor,
                model=model,
                protocol=PROTOCOLS[protocol],
                max_charge_kw=max_charge_kw,
                max_discharge_kw=max_discharge_kw,
                charger_id=charger_id,
                security_profile=security_profile,
            )
    except (DeviceError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    out = {"charger_id": reg.charger.id, "v2g_site_id": reg.v2g_site_id, "security_profile": reg.security_profile}
    if reg.password:
        out["password"] = reg.password
    else:
        out["next"] = f"v2g charger issue-certificate {reg.charger.id} --csr <the charger's CSR> --out <chain.pem>"
    typer.echo(json.dumps(out))


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@contextmanager
def _certificates() -> Iterator[tuple[StationCertificates, SqlDeviceStore]]:
    platform = bootstrap(Settings())
    try:
        if platform.certificates is None:
            msg = "ocpp_ca_dir: set V2G_OCPP_CA_DIR to the platform CA folder to use security profile 3"
            raise typer.BadParameter(msg)
        yield platform.certificates, platform.devices
    finally:
        platform.engine.dispose()


@charger_app.command("ca")
def ca_certificate() -> None:
    """Print the platform CA certificate (PEM): chargers install it as their CSMS root certificate."""
    settings = Settings()
    try:
        ca = platform_ca(settings)
    except (OSError, ValueError) as exc:
        raise _fail(exc) from exc
    if ca is None:
        raise _fail(ValueError("ocpp_ca_dir: set V2G_OCPP_CA_DIR to the platform CA folder"))
    typer.echo(ca.certificate_pem, nl=False)


CSR_OPTION = typer.Option(..., exists=True, dir_okay=False, help="The charger's certificate signing request, PEM.")
CHAIN_OUT_OPTION = typer.Option(None, help="Write the certificate chain here (else it is printed).")


@charger_app.command("issue-certificate")
def issue_certificate(
    charger_id: str = typer.Argument(..., help="Charger id (the certificate's CN)."),
    csr: Path = CSR_OPTION,
    out: Path | None = CHAIN_OUT_OPTION,
) -> None:
    """Sign a charger's CSR with the platform CA (its first certificate, or a manual renewal)."""
    try:
        with _certificates() as (certificates, store):
            store.charger(charger_id)  # an unknown charger gets no certificate
            issued = certificates.issue(charger_id, csr.read_text(), requested_via=REQUESTED_BY_OPERATOR)
    except (DeviceError, LookupError, ValueError) as exc:
        raise _fail(exc) from exc
    result = {
        "charger_id": charger_id,
        "serial_hex": issued.serial_hex,
        "fingerprint_sha256": issued.fingerprint_sha256,
        "not_after": issued.not_after.isoformat(),
    }
    if out is not None:
        out.write_text(issued.chain_pem)
        result["certificate_chain_file"] = str(out)
    else:
        result["certificate_chain"] = issued.chain_pem
    typer.echo(json.dumps(result))


@charger_app.command("certificates")
def certificates_list(charger_id: str = typer.Argument(..., help="Charger id.")) -> None:
    """The certificates issued to a charger, newest first."""
    try:
        with _store() as store:
            records = store.certificates(charger_id)
    except LookupError as exc:
        raise _fail(exc) from exc
    typer.echo(json.dumps([asdict(r) for r in records], default=str, indent=2))


@charger_app.command("revoke-certificate")
def revoke_certificate(
    charger_id: str = typer.Argument(..., help="Charger id."),
    serial: str = typer.Argument(..., help="Serial of the certificate (hex, as `certificates` shows it)."),
) -> None:
    """Revoke a charger certificate: the CSMS refuses it from the next handshake on."""
    try:
        with _store() as store:
            record = store.revoke_certificate(charger_id, serial, SystemClock().now())
    except (LookupError, ValueError) as exc:
        raise _fail(exc) from exc
    typer.echo(f"{charger_id}: certificate {record.serial_hex} revoked")


@charger_app.command("security-profile")
def security_profile(
    charger_id: str = typer.Argument(..., help="Charger id."),
    profile: int = typer.Option(..., "--profile", help="2 or 3; a charger's profile is only ever raised."),
) -> None:
    """Raise a charger's OCPP security profile (at 3 it must connect with its client certificate)."""
    try:
        with _store() as store:
            before = store.set_security_profile(charger_id, profile)
    except (DeviceError, LookupError) as exc:
        raise _fail(exc) from exc
    typer.echo(f"{charger_id}: security profile {before} -> {profile}")


@charger_app.command("token")
def token(
    id_token: str = typer.Argument(..., help="The idToken (RFID card uid, app token)."),
    charger_id: str = typer.Option(None, "--charger", help="Valid at this charger only."),
    customer_id: str = typer.Option(None, "--customer", help="Valid at every charger of this customer."),
    status: str = typer.Option("Accepted", help="Accepted, Blocked or Expired."),
) -> None:
    """Register an idToken (or change its status); unknown tokens are refused as Invalid."""
    try:
        record = IdTokenRecord(id_token, TokenStatus(status), charger_id, customer_id)
        with _store() as store:
            store.add_id_token(record)
    except (NotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    scope = f"charger {charger_id}" if charger_id else f"customer {customer_id}"
    typer.echo(f"idToken registered for {scope}: {status}")


PROTOCOLS_OPTION = typer.Option(None, "--protocol", help="1.6, 2.0.1 or 2.1 (repeat; none: only its own).")


@charger_app.command("allow-protocol")
def allow_protocol(
    charger_id: str = typer.Argument(..., help="Charger id."),
    protocol: list[str] | None = PROTOCOLS_OPTION,
) -> None:
    """Let a charger also connect with other OCPP versions than the one it is registered for."""
    protocol = protocol or []
    unknown = [p for p in protocol if p not in PROTOCOLS]
    if unknown:
        typer.echo(f"error: protocol: {unknown[0]!r} is not one of {', '.join(PROTOCOLS)}", err=True)
        raise typer.Exit(2)
    try:
        with _store() as store:
            store.allow_protocols(charger_id, [PROTOCOLS[p] for p in protocol])
    except NotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{charger_id}: also allowed: {', '.join(protocol) or 'none'}")


@charger_app.command("state")
def state(charger_id: str = typer.Argument(..., help="Charger id.")) -> None:
    """Latest state of a charger and the EV behind it."""
    try:
        with _store() as store:
            data = store.state(charger_id)
    except LookupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(data, default=str, indent=2))


@charger_app.command("purge-telemetry")
def purge_telemetry(
    days: float = typer.Option(None, help="Keep this many days (default V2G_TELEMETRY_RETENTION_DAYS, 14)."),
) -> None:
    """Retention job: delete telemetry older than the retention window."""
    keep = days if days is not None else Settings().telemetry_retention_days
    with _store() as store:
        deleted = store.purge_telemetry(SystemClock().now() - timedelta(days=keep))
    typer.echo(f"deleted {deleted} telemetry rows older than {keep:g} days")


def csms(
    host: str = typer.Option(None, help="Bind address (default V2G_HOST)."),
    port: int = typer.Option(None, help="Port (default V2G_OCPP_PORT)."),
    workers: int = typer.Option(None, min=1, max=64, help="Worker processes (default V2G_OCPP_WORKERS, 1)."),
) -> None:
    """Run the CSMS alone: the OCPP endpoint /ocpp/{charger_id} for 1.6, 2.0.1 and 2.1."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    n_workers = workers if workers is not None else settings.ocpp_workers
    if n_workers > 1:
        _csms_pool(settings, host or settings.host, port if port is not None else settings.ocpp_port, n_workers)
        return

    async def main() -> None:
        server = bootstrap(settings).csms
        assert server is not None  # the platform's own CSMS (no gateway was swapped in)
        bound = await server.start(
            host or settings.host, port if port is not None else settings.ocpp_port, mtls_port=settings.ocpp_mtls_port
        )
        scheme = "wss" if server.ssl_context else "ws"
        typer.echo(f"CSMS listening on {scheme}://{host or settings.host}:{bound}/ocpp/{{charger_id}}")
        if server.mtls_port is not None:
            where = f"wss://{host or settings.host}:{server.mtls_port}/ocpp/{{charger_id}}"
            typer.echo(f"CSMS security profile 3 (client certificates) on {where}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(main())


def _csms_pool(settings: Settings, host: str, port: int, n_workers: int) -> None:
    """Several worker processes on one port; commands reach them over NATS (``settings.nats_url``)."""
    from v2g.runtime.workers import WorkerPool, free_port, worker_spec

    bound = port or free_port(host)
    pool = WorkerPool([worker_spec(settings, i, host, bound) for i in range(n_workers)])
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    pool.start()
    scheme = "wss" if settings.ocpp_tls_cert else "ws"
    typer.echo(f"CSMS: {n_workers} workers on {scheme}://{host}:{bound}/ocpp/{{charger_id}}, routing over NATS")
    try:
        while not stop:
            time.sleep(0.5)
            pool.check()
    finally:
        pool.stop()


@sim_app.command("chargers")
def sim_chargers(
    n: int = typer.Option(10, "--n", min=1, help="Number of simulated wallboxes."),
    url: str = typer.Option(None, help="CSMS base URL, e.g. ws://127.0.0.1:8180/ocpp."),
    protocol: str = typer.Option("2.1", help="1.6, 2.0.1 or 2.1."),
    credentials: str | None = typer.Option(None, help="CSV of charger_id,password,... (else provision in the DB)."),
    save_credentials: str | None = typer.Option(None, help="Write the provisioned credentials to this CSV."),
    duration: float = typer.Option(0.0, help="Seconds to run (0: until interrupted)."),
    meter_interval: float = typer.Option(10.0, help="Seconds between meter values."),
    seed: int = typer.Option(0, help="Random seed of the EV behaviour."),
) -> None:
    """Run N simulated bidirectional wallboxes with EVs against a CSMS."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    if protocol not in PROTOCOLS:
        typer.echo(f"error: protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}", err=True)
        raise typer.Exit(2)
    base_url = url or f"ws://{settings.host}:{settings.ocpp_port}/ocpp"
    if credentials is not None:
        creds = read_credentials(Path(credentials))[:n]
    else:
        with _store() as store:
            creds = provision_simulated(store, n, protocol, hasher=Argon2Hasher(simulated=True))
        if save_credentials is not None:
            write_credentials(Path(save_credentials), creds)

    async def main() -> None:
        run = await start_fleet(creds, base_url, protocol, seed=seed, meter_interval_s=meter_interval)
        typer.echo(json.dumps({"started": len(run.chargers), "failed": len(run.failed), **run.summary()}))
        for charger_id, reason in run.failed[:5]:
            typer.echo(f"  failed: {charger_id}: {reason}", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if duration > 0:
            loop.call_later(duration, stop.set)
        await stop.wait()
        typer.echo(json.dumps(run.summary()))
        await run.stop()

    asyncio.run(main())
