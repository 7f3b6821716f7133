"""Provisioning simulated fleets: register (or re-key) N wallboxes at existing sites, return credentials."""

from __future__ import annotations

import csv
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select

from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.tables.fleet import chargers, sites
from v2g.devices import IdTokenRecord, TokenStatus, new_v2g_site_id
from v2g.fleet.model import Charger, ChargerProtocol
from v2g.services.devices.ports import CredentialHasher
from v2g.sim.fleet import SimCredential
from v2g.sim.ocpp_client import SIM_ID_TOKEN

PROTOCOLS = {"1.6": ChargerProtocol.OCPP16, "2.0.1": ChargerProtocol.OCPP201, "2.1": ChargerProtocol.OCPP21}


def provision_simulated(
    store: SqlDeviceStore,
    n: int,
    protocol: str,
    *,
    hasher: CredentialHasher,
    prefix: str = "SIM",
    site_ids: Sequence[str] | None = None,
    max_charge_kw: float = 11.0,
    max_discharge_kw: float = 11.0,
) -> list[SimCredential]:
    """Chargers ``{prefix}-{protocol}-{i:05d}`` round-robin over ``site_ids`` (default: every site).

    Existing chargers of that name get a fresh password (and are re-activated); ``hasher`` hashes
    the passwords (the cheap simulated-fleet argon2 parameters in practice). The simulated EV
    owners' card (``SIM_ID_TOKEN``) is registered for each charger, so their sessions are authorised.
    """
    if protocol not in PROTOCOLS:
        msg = f"protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}"
        raise ValueError(msg)
    with store.engine.connect() as conn:
        all_sites = site_ids or [r.id for r in conn.execute(select(sites.c.id).order_by(sites.c.id))]
        existing = {r.id for r in conn.execute(select(chargers.c.id).where(chargers.c.id.like(f"{prefix}-%")))}
    if not all_sites:
        msg = "site_ids: no sites in the database (run `v2g demo` or seed a fleet first)"
        raise ValueError(msg)
    tag = protocol.replace(".", "")
    creds = [
        SimCredential(f"{prefix}-{tag}-{i:05d}", secrets.token_urlsafe(18), max_charge_kw, max_discharge_kw)
        for i in range(1, n + 1)
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        hashes = list(pool.map(hasher.hash, [c.password for c in creds]))
    for i, (cred, password_hash) in enumerate(zip(creds, hashes, strict=True)):
        if cred.charger_id in existing:
            store.set_credentials(cred.charger_id, password_hash, 1)
            store.set_active(cred.charger_id, True)
            store.add_id_token(IdTokenRecord(SIM_ID_TOKEN, TokenStatus.ACCEPTED, charger_id=cred.charger_id))
            continue
        site_id = all_sites[i % len(all_sites)]
        charger = Charger(
            cred.charger_id,
            site_id,
            "V2G-Sim",
            "BiDi-11",
            PROTOCOLS[protocol],
            max_charge_kw,
            max_discharge_kw,
            v2g_site_id=new_v2g_site_id(site_id),
        )
        store.add_charger_with_credentials(charger, password_hash, 1)
        store.add_id_token(IdTokenRecord(SIM_ID_TOKEN, TokenStatus.ACCEPTED, charger_id=cred.charger_id))
    return creds


def write_credentials(path: Path, creds: Sequence[SimCredential]) -> None:
    """A CSV (charger_id, password, max_charge_kw, max_discharge_kw) for `v2g sim chargers --credentials`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["charger_id", "password", "max_charge_kw", "max_discharge_kw"])
        for c in creds:
            writer.writerow([c.charger_id, c.password, c.max_charge_kw, c.max_discharge_kw])


def read_credentials(path: Path) -> list[SimCredential]:
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for line, row in enumerate(rows, start=2):
        try:
            out.append(
                SimCredential(
                    row["charger_id"], row["password"], float(row["max_charge_kw"]), float(row["max_discharge_kw"])
                )
            )
        except (KeyError, ValueError) as exc:
            msg = f"{path.name}:{line}: bad credentials row ({exc})"
            raise ValueError(msg) from exc
    return out
