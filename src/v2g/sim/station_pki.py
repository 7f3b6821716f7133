"""A simulated charger's certificate store (security profile 3): its key pair, CSR and client certificate.

As a real charging station does: the key pair is made on the station and never leaves it; a
certificate signing request (CN = the charger id, O = the operator's organisation) goes to the CSMS
with SignCertificate; the chain that comes back with CertificateSigned is installed only if its
leaf certificate is for this charger and for the pending key, and the new certificate is used
from the next connection on. Until then the current key and certificate stay in use.

Files (in the station's folder): ``station.key`` (0600), ``station.pem`` (the chain) and the CSMS
root certificate the station trusts for the server's certificate.
"""

from __future__ import annotations

import os
import ssl
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

KEY_FILE = "station.key"
CHAIN_FILE = "station.pem"
ROOT_FILE = "csms-root.pem"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


class StationKeyStore:
    """Key, CSR and installed client certificate of one simulated charger."""

    def __init__(self, charger_id: str, organisation: str, folder: Path, csms_root_pem: str) -> None:
        self.charger_id = charger_id
        self.organisation = organisation
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ROOT_FILE).write_text(csms_root_pem)
        self._pending: ec.EllipticCurvePrivateKey | None = None
        self.installed: list[str] = []  # serials (upper-case hex) of the certificates installed, oldest first

    # ------------------------------------------------------------------ requests
    def new_csr(self, *, curve: ec.EllipticCurve | None = None, common_name: str | None = None) -> str:
        """A fresh key pair (kept pending) and its CSR in PEM; ``common_name`` overrides the CN (tests)."""
        key = ec.generate_private_key(curve or ec.SECP256R1())
        self._pending = key
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name or self.charger_id),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organisation),
            ]
        )
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    # ------------------------------------------------------------------ CertificateSigned
    def install(self, chain_pem: str, now: datetime) -> tuple[bool, str]:
        """Install a signed chain for the pending key: (accepted, why not)."""
        if self._pending is None:
            return False, "no certificate signing request is pending"
        try:
            chain = x509.load_pem_x509_certificates(chain_pem.encode())
        except ValueError:
            return False, "certificateChain: not PEM certificates"
        leaf = chain[0]
        if leaf.public_key() != self._pending.public_key():
            return False, "certificateChain: the certificate is not for the pending key"
        names = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [self.charger_id]:
            return False, f"certificateChain: CN {names} is not this charger"
        if not leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
            return False, "certificateChain: the certificate is not valid now"
        key_pem = self._pending.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(self.folder / KEY_FILE, key_pem)
        (self.folder / CHAIN_FILE).write_text(chain_pem)
        self._pending = None
        self.installed.append(f"{leaf.serial_number:X}")
        return True, ""

    # ------------------------------------------------------------------ connecting
    @property
    def has_certificate(self) -> bool:
        return (self.folder / CHAIN_FILE).exists() and (self.folder / KEY_FILE).exists()

    @property
    def serial_hex(self) -> str | None:
        """The serial of the certificate in use (None before the first one is installed)."""
        return self.installed[-1] if self.installed else None

    def ssl_context(self) -> ssl.SSLContext:
        """TLS trusting the CSMS root, presenting the installed client certificate (if any)."""
        ctx = ssl.create_default_context(cafile=str(self.folder / ROOT_FILE))
        if self.has_certificate:
            ctx.load_cert_chain(self.folder / CHAIN_FILE, self.folder / KEY_FILE)
        return ctx
