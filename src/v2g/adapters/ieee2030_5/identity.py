"""Device identifiers of IEEE 2030.5 (§6.3.4): the LFDI and SFDI of a certificate.

The certificate fingerprint is the SHA-256 of the DER-encoded certificate. The LFDI is the fingerprint
left-truncated to 160 bits (40 hex digits); the SFDI is the fingerprint left-truncated to 36 bits as a
decimal number followed by a check digit that makes the sum of all its digits a multiple of 10.

The aggregator registers one EndDevice per grid area it serves (the area's fleet as one DER). Those
have no certificate of their own; their fingerprint is the SHA-256 of the aggregator's fingerprint
followed by the area id (UTF-8), and their LFDI and SFDI follow from it by the same rules, so they stay
the same for the same certificate and area.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes


def certificate_fingerprint(pem: bytes) -> bytes:
    """SHA-256 over the DER form of the (first) PEM certificate."""
    cert = x509.load_pem_x509_certificate(pem)
    return cert.fingerprint(hashes.SHA256())


def lfdi(fingerprint: bytes) -> str:
    if len(fingerprint) < 20:
        msg = f"fingerprint: {len(fingerprint)} bytes, an LFDI needs at least 20"
        raise ValueError(msg)
    return fingerprint[:20].hex().upper()


def sfdi(fingerprint: bytes) -> int:
    if len(fingerprint) < 5:
        msg = f"fingerprint: {len(fingerprint)} bytes, an SFDI needs at least 5"
        raise ValueError(msg)
    n = int.from_bytes(fingerprint[:5], "big") >> 4  # the leftmost 36 bits
    check = (10 - sum(int(d) for d in str(n)) % 10) % 10
    return n * 10 + check


@dataclass(frozen=True, slots=True)
class DeviceId:
    lfdi: str
    sfdi: int


def certificate_identity(cert_file: Path) -> tuple[bytes, DeviceId]:
    """The fingerprint and identity of the client certificate in ``cert_file`` (PEM)."""
    try:
        pem = cert_file.read_bytes()
    except OSError as exc:
        msg = f"ieee2030_5_cert_file: cannot read {cert_file}: {exc.strerror}"
        raise ValueError(msg) from exc
    try:
        fp = certificate_fingerprint(pem)
    except ValueError as exc:
        msg = f"ieee2030_5_cert_file: {cert_file} holds no PEM certificate ({exc})"
        raise ValueError(msg) from exc
    return fp, DeviceId(lfdi(fp), sfdi(fp))


def area_identity(aggregator_fingerprint: bytes, area_id: str) -> DeviceId:
    fp = hashlib.sha256(aggregator_fingerprint + area_id.encode()).digest()
    return DeviceId(lfdi(fp), sfdi(fp))
