"""Charging-station certificates (OCPP security profile 3): the values and rules the platform uses.

Pure: no X.509 parsing and no keys here. The platform's certificate authority (``v2g.adapters.pki``)
checks signing requests and issues certificates; the CSMS reads the client certificate a charger
presented from its TLS handshake and hands it over as a :class:`PresentedCertificate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from v2g.devices.profiles import DeviceError

STATION_CERTIFICATE = "ChargingStationCertificate"
"""The OCPP certificate type of a charger's TLS client certificate (2.0.1/2.1 ``certificateType``)."""

SECURITY_PROFILES = (1, 2, 3)


class CsrRefusal(StrEnum):
    """Why a certificate signing request was refused (an OCPP ``reasonCode``: at most 20 characters)."""

    NO_CA = "NoCAConfigured"
    INVALID_CSR = "InvalidCSR"
    COMMON_NAME = "InvalidCommonName"
    ORGANISATION = "InvalidOrganization"
    KEY = "UnsupportedKey"
    SIGNATURE = "WeakSignature"
    CERTIFICATE_TYPE = "UnsupportedCertType"
    TOO_MANY = "TooManyRequests"


class CertificateRequestError(DeviceError):
    """A signing request the platform will not sign: the reason code and a sentence naming the field."""

    def __init__(self, reason: CsrRefusal, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class CertificateStatus(StrEnum):
    """Where an issued certificate stands."""

    ISSUED = "issued"  # signed and recorded (handed to the installer, or on its way to the charger)
    ACCEPTED = "accepted"  # the charger answered CertificateSigned with Accepted
    REJECTED = "rejected"  # the charger refused the chain it was sent
    FAILED = "failed"  # the chain did not reach the charger (timeout, closed connection, CALLERROR)
    REVOKED = "revoked"  # the operator revoked it: the CSMS refuses it at the handshake


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A charger certificate the platform CA signed; ``chain_pem`` is what CertificateSigned carries."""

    charger_id: str
    serial_hex: str
    fingerprint_sha256: str
    not_before: datetime
    not_after: datetime
    certificate_pem: str
    chain_pem: str


@dataclass(frozen=True, slots=True)
class PresentedCertificate:
    """The client certificate a charger presented in its TLS handshake (verified against the platform CA)."""

    common_name: str | None
    serial_hex: str
    fingerprint_sha256: str
    not_after: datetime


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """An issued certificate as the platform keeps it (the certificate itself is public)."""

    serial_hex: str
    charger_id: str
    fingerprint_sha256: str
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    requested_via: str  # "operator" (a CSR handed in by the installer) or "station" (SignCertificate)
    status: CertificateStatus
    status_detail: str | None = None
    status_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def normalise_serial(serial: str | int) -> str:
    """A certificate serial as upper-case hex without leading zeros (how it is stored and compared)."""
    value = serial if isinstance(serial, int) else int(serial.replace(":", "").strip(), 16)
    return f"{value:X}"


def renewal_due(not_after: datetime, now: datetime, renew_before: timedelta) -> bool:
    """Whether a certificate expiring at ``not_after`` should be renewed now."""
    return not_after - now <= renew_before


def check_security_profile(profile: int, *, current: int | None = None) -> None:
    """A security profile the platform supports; with ``current``, only an upgrade or the same one.

    OCPP does not let a charger go back to a lower security profile: a charger registered at
    profile 3 has to be registered again (new credentials) to connect with less.
    """
    if profile not in SECURITY_PROFILES:
        msg = (
            f"charger.security_profile: {profile} is not supported "
            "(1 basic auth, 2 TLS + basic auth, 3 TLS with a client certificate)"
        )
        raise DeviceError(msg)
    if current is not None and profile < current:
        msg = f"charger.security_profile: {current} -> {profile} is a downgrade; register the charger again instead"
        raise DeviceError(msg)
