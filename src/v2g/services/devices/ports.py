"""Ports of the device services: what they need from chargers, storage and credentials.

Adapters implement them (the OCPP server and gateway, the SQL device store, argon2); tests use
fakes. The value types (``Ack``, ``Setpoint`` ...) live in the pure core :mod:`v2g.devices`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from v2g.devices import (
    Ack,
    AckBatch,
    AckStatus,
    CertificateRecord,
    CertificateStatus,
    ChargerAuth,
    ChargerNotice,
    ChargingNeeds,
    CommandResult,
    ConnectivityStatus,
    FrequencyCurvePoint,
    IdTokenRecord,
    IssuedCertificate,
    MeterSample,
    ProfileKind,
    ProfilePlan,
    Setpoint,
    SetpointBatch,
    TelemetryBatchResult,
    TransactionEventIn,
)
from v2g.fleet.model import Charger
from v2g.fleet.schedule import PowerSchedule

__all__ = [
    "Ack",
    "AckBatch",
    "AckStatus",
    "CertificateIssuer",
    "CertificateLink",
    "CertificateStore",
    "ChargerGateway",
    "ChargerLink",
    "ChargerRecords",
    "CredentialHasher",
    "DeviceRecords",
    "DeviceRegistry",
    "DeviceStore",
    "FrequencyCurvePoint",
    "LiveLinks",
    "RemoteDeactivation",
    "Setpoint",
    "SetpointBatch",
    "TelemetryStore",
]


class ChargerGateway(Protocol):
    """Sends commands to chargers, whatever protocol each one speaks."""

    async def send_schedules(self, schedules: Sequence[PowerSchedule]) -> list[Ack]:
        """Install planned schedules (charging profiles) on the chargers named in them."""
        ...

    async def send_setpoints(self, setpoints: Sequence[Setpoint]) -> Sequence[Ack]:
        """Apply immediate setpoints (central control, e.g. frequency response), one answer each in order.

        The dispatcher sends a :class:`SetpointBatch`; a gateway may answer it with an :class:`AckBatch`.
        """
        ...

    async def configure_frequency_curve(
        self, charger_id: str, curve: Sequence[FrequencyCurvePoint], valid_until: datetime | None = None
    ) -> Ack:
        """Configure a charger's own frequency response (local control)."""
        ...

    async def deactivate(self, charger_id: str) -> Ack:
        """Stop V2G at a charger for good (termination): clear profiles, make it unavailable."""
        ...


# ---------------------------------------------------------------------------- installation hooks
class CredentialHasher(Protocol):
    """Hashes charger passwords (argon2 in production)."""

    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...


class DeviceRegistry(Protocol):
    """Persistence the installation hooks need."""

    def add_charger_with_credentials(self, charger: Charger, password_hash: str, security_profile: int) -> None: ...

    def connectivity(self, charger_id: str) -> ConnectivityStatus: ...

    def set_active(self, charger_id: str, active: bool) -> None: ...


class RemoteDeactivation(Protocol):
    """The part of the charger gateway that termination uses."""

    async def deactivate(self, charger_id: str) -> Ack: ...


# ---------------------------------------------------------------------------- the device supervisor
class ChargerLink(Protocol):
    """One live connection to a charger: the commands a protocol session can execute.

    The OCPP sessions of every version implement it; ``discharge_supported`` and ``booted`` are
    what the supervisor learnt about the charger on this connection.
    """

    @property
    def id(self) -> str: ...

    discharge_supported: bool
    booted: bool

    async def read_discharge_support(self) -> bool: ...

    def plan_kind(self) -> ProfileKind: ...

    async def install_plan(self, plan: ProfilePlan, *, profile_id: int, stack_level: int) -> CommandResult: ...

    async def install_default(self, p_kw: float) -> CommandResult: ...

    async def clear_profiles(self, profile_id: int | None = None) -> CommandResult: ...

    async def set_available(self, available: bool) -> CommandResult: ...

    async def disconnect(self, reason: str, code: int = 1000) -> None:
        """Close the connection (1000 normal, 1001 going away)."""
        ...


LiveLinks = Mapping[str, ChargerLink]
"""The live connection of each connected charger, by charger id (owned by the protocol server)."""


class TelemetryStore(Protocol):
    """Durable telemetry: one call stores a batch from many chargers in one transaction."""

    def write_batch(
        self, samples: Sequence[MeterSample], events: Sequence[TransactionEventIn], received_at: datetime
    ) -> TelemetryBatchResult: ...


class DeviceStore(TelemetryStore, Protocol):
    """What the device runtime reads and writes about chargers (the SQL device store in production).

    Called from worker threads: every method is synchronous and does its own transaction.
    """

    def auth(self, charger_id: str) -> ChargerAuth | None: ...

    def charger(self, charger_id: str) -> Charger: ...

    def connectivity(self, charger_id: str) -> ConnectivityStatus: ...

    def inactive_among(self, charger_ids: Sequence[str]) -> list[str]: ...

    def mark_connected(self, charger_id: str, protocol: str, at: datetime) -> None: ...

    def mark_disconnected(self, charger_id: str, at: datetime) -> None: ...

    def mark_booted(self, charger_id: str, at: datetime, firmware_version: str | None) -> None: ...

    def mark_offline_if_silent(self, before: datetime, at: datetime) -> list[str]: ...

    def touch_many(self, last_seen: dict[str, datetime]) -> None: ...

    def set_discharge_supported(self, charger_id: str, supported: bool) -> None: ...

    def set_ev_connected(self, charger_id: str, connected: bool) -> None: ...

    def save_needs(self, needs: ChargingNeeds) -> None: ...

    def record_notice(self, notice: ChargerNotice, received_at: datetime) -> None:
        """Keep what a charger reported (security events, firmware and log status, reports)."""
        ...

    def set_charging_limit(self, charger_id: str, limit_kw: float | None, source: str | None, at: datetime) -> None:
        """The limit the charger applies on its own now (None: no limit); the planning side reads it."""
        ...

    def id_token_records(self, id_token: str) -> list[IdTokenRecord]:
        """Every registration of an idToken (none: unknown)."""
        ...

    def customer_of(self, charger_id: str) -> str | None:
        """The customer whose site the charger is at."""
        ...

    def stored_needs(self, charger_id: str) -> list[ChargingNeeds]:
        """The last needs each EVSE of the charger reported (kept across reconnects)."""
        ...

    def record_profile(
        self,
        charger_id: str,
        *,
        profile_id: int,
        purpose: str,
        sent_at: datetime,
        valid_to: datetime | None,
        status: str,
        detail: str = "",
        test_profile: bool = False,
    ) -> None: ...


class ChargerRecords(Protocol):
    """What people read about chargers: latest state, telemetry history, sessions, who is offline."""

    def state(self, charger_id: str) -> dict[str, Any]: ...

    def telemetry(
        self,
        charger_id: str,
        *,
        measurand: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10_000,
    ) -> list[MeterSample]: ...

    def transactions(self, charger_id: str) -> list[dict[str, Any]]: ...

    def offline_chargers(self) -> list[str]:
        """Ids of the active chargers not connected now."""
        ...


class DeviceRecords(DeviceStore, ChargerRecords, Protocol):
    """The device store with its read side (the SQL device store implements both)."""


# ---------------------------------------------------------------------------- security profile 3
class CertificateIssuer(Protocol):
    """The platform CA: checks charger CSRs and signs charger certificates (``v2g.adapters.pki``)."""

    @property
    def organisation(self) -> str:
        """The operator's organisation: the O of every charger certificate."""
        ...

    def check_station_csr(self, charger_id: str, csr_pem: str) -> None:
        """Raise :class:`~v2g.devices.CertificateRequestError` for a CSR that will not be signed."""
        ...

    def issue_station_certificate(self, charger_id: str, csr_pem: str) -> IssuedCertificate: ...


class CertificateStore(Protocol):
    """Issued charger certificates (the SQL device store in production); called from worker threads."""

    def record_certificate(
        self, certificate: IssuedCertificate, *, issued_at: datetime, requested_via: str
    ) -> None: ...

    def set_certificate_status(
        self, serial_hex: str, status: CertificateStatus, detail: str | None, at: datetime
    ) -> None: ...

    def certificate_by_fingerprint(self, fingerprint_sha256: str) -> CertificateRecord | None: ...

    def certificates(self, charger_id: str) -> list[CertificateRecord]:
        """A charger's certificates, newest first."""
        ...

    def certificates_issued_since(self, charger_id: str, since: datetime) -> int: ...

    def mark_certificate_used(self, fingerprint_sha256: str, at: datetime) -> None: ...


class CertificateLink(Protocol):
    """The certificate commands of a live charger connection (OCPP 2.0.1/2.1, and 1.6 with its security extension)."""

    @property
    def id(self) -> str: ...

    async def install_certificate(self, chain_pem: str) -> CommandResult:
        """CertificateSigned: hand the charger its new certificate chain."""
        ...

    async def request_certificate(self) -> CommandResult:
        """Ask the charger to send a SignCertificate for a new key (TriggerMessage / ExtendedTriggerMessage)."""
        ...
