"""What the device layer knows about a charger's registration, credentials and connectivity."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from v2g.fleet.model import Charger, ChargerProtocol


@dataclass(frozen=True, slots=True)
class ChargerRegistration:
    """What registering a charger produced; the password is shown once and stored only as a hash."""

    charger: Charger
    password: str
    v2g_site_id: str
    security_profile: int


@dataclass(frozen=True, slots=True)
class ChargerAuth:
    """What the handshake needs to admit a charger."""

    charger_id: str
    password_hash: str
    security_profile: int
    active: bool
    protocol: ChargerProtocol
    also_allowed: frozenset[ChargerProtocol] = frozenset()

    @property
    def allowed_protocols(self) -> frozenset[ChargerProtocol]:
        """The OCPP versions the charger may connect with: its registered one and any its record allows."""
        return self.also_allowed | {self.protocol}


@dataclass(frozen=True, slots=True)
class TelemetryBatchResult:
    """Rows a telemetry batch stored, and duplicates it recognised by their natural keys."""

    samples_stored: int
    samples_duplicate: int
    events_stored: int
    events_duplicate: int


@dataclass(frozen=True, slots=True)
class ConnectivityStatus:
    """How far a charger got in the connectivity check of the installation stage."""

    charger_id: str
    booted_at: datetime | None
    test_profile_accepted_at: datetime | None
    online: bool
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def verified(self) -> bool:
        """First boot seen and a test profile accepted."""
        return self.booted_at is not None and self.test_profile_accepted_at is not None


def new_v2g_site_id(site_id: str) -> str:
    """A V2G site id: the platform's unique, non-guessable id of a V2G connection point."""
    stem = "".join(ch for ch in site_id.upper() if ch.isalnum())[:12] or "SITE"
    return f"SE-V2G-{stem}-{secrets.token_hex(4).upper()}"
