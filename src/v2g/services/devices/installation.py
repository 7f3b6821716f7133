"""Installation and termination hooks of the device layer: register, verify connectivity, deactivate."""

from __future__ import annotations

import secrets

from v2g.devices import (
    Ack,
    ChargerRegistration,
    ConnectivityStatus,
    DeviceError,
    check_security_profile,
    new_v2g_site_id,
)
from v2g.fleet.model import Charger, ChargerProtocol
from v2g.services.devices.ports import CredentialHasher, DeviceRegistry, RemoteDeactivation


def register_charger(
    registry: DeviceRegistry,
    hasher: CredentialHasher,
    *,
    site_id: str,
    vendor: str,
    model: str,
    protocol: ChargerProtocol,
    max_charge_kw: float,
    max_discharge_kw: float,
    charger_id: str | None = None,
    security_profile: int = 2,
) -> ChargerRegistration:
    """Installation stage, "Generate Box Site ID": create the charger's id, credentials and V2G site id.

    At security profile 3 the charger authenticates with a client certificate from the platform CA
    (issued from its CSR with ``StationCertificates.issue``): no password is shown, and the stored
    hash is of a random secret nobody knows.
    """
    check_security_profile(security_profile)
    cid = charger_id or f"CP-{secrets.token_hex(5).upper()}"
    if not cid.isascii() or not all(ch.isalnum() or ch in "-_." for ch in cid) or len(cid) > 48:
        msg = f"charger.id: {cid!r} must be at most 48 ASCII letters, digits, '-', '_' or '.'"
        raise DeviceError(msg)
    v2g_site_id = new_v2g_site_id(site_id)
    charger = Charger(
        cid, site_id, vendor, model, protocol, max_charge_kw, max_discharge_kw, v2g_site_id=v2g_site_id, active=True
    )
    password = secrets.token_urlsafe(24)
    registry.add_charger_with_credentials(charger, hasher.hash(password), security_profile)
    shown = password if security_profile < 3 else ""
    return ChargerRegistration(charger, shown, v2g_site_id, security_profile)


def verify_connectivity(registry: DeviceRegistry, charger_id: str) -> ConnectivityStatus:
    """Installation stage, "Verify connectivity": first boot seen and a test profile accepted."""
    status = registry.connectivity(charger_id)
    problems = list(status.problems)
    if status.booted_at is None:
        problems.append(f"charger[{charger_id}]: no successful BootNotification yet")
    if status.test_profile_accepted_at is None:
        problems.append(f"charger[{charger_id}]: no test charging profile accepted yet")
    return ConnectivityStatus(
        charger_id, status.booted_at, status.test_profile_accepted_at, status.online, tuple(problems)
    )


async def deactivate_charger(registry: DeviceRegistry, gateway: RemoteDeactivation, charger_id: str) -> Ack:
    """Termination: clear profiles and make the charger unavailable remotely, then refuse it at the handshake.

    The charger is marked inactive even when it is offline (it will be refused when it comes
    back); the returned ack says whether the remote part reached it.
    """
    registry.connectivity(charger_id)  # raises for an unknown charger
    ack = await gateway.deactivate(charger_id)
    registry.set_active(charger_id, False)
    return ack
