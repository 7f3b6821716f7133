"""The platform CA: a key and a self-signed certificate in one folder; it signs charger and CSMS certificates.

Files in the CA folder (created on first use, reused afterwards):

* ``ca.pem``: the CA certificate (public). Chargers install it as their CSMS root certificate and the
  CSMS's profile-3 listener trusts it for client certificates.
* ``ca.key``: the CA private key, PKCS#8 PEM, created with mode 0600 and refused when it is readable
  by anyone else. It is never logged and must never be committed or copied off the CSMS host.
* ``csms.pem`` / ``csms.key``: a server certificate for the profile-3 listener, issued by this CA
  for ``V2G_OCPP_SERVER_NAMES`` when no other server certificate is configured.

Certificate properties (OCPP 2.0.1 part 2, A00 "Certificate properties"):

* CA: ECDSA P-256, ``CN=<organisation> OCPP CA``, ``O=<organisation>``, basicConstraints CA with
  path length 0 (it signs only end-entity certificates), keyUsage keyCertSign + cRLSign, 10 years.
* Charger (``ChargingStationCertificate``): the charger's own key from its CSR (ECDSA P-256/P-384
  or RSA 2048-8192), ``CN=<charger id>``, ``O=<organisation>`` (the subject is set by the CA, not
  copied from the CSR), basicConstraints CA false, keyUsage digitalSignature, extendedKeyUsage
  clientAuth, 1 year by default (``V2G_OCPP_STATION_CERT_DAYS``), never beyond the CA's own expiry.
* CSMS: a P-256 key made here, the configured names as subjectAltName, extendedKeyUsage
  serverAuth, 1 year; re-issued when less than 30 days remain or the names change.

Signatures are ECDSA with SHA-256. Serials are random 159-bit numbers (RFC 5280).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import os
import ssl
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from v2g.devices import CertificateRequestError, CsrRefusal, IssuedCertificate, normalise_serial
from v2g.services.clock import Clock, SystemClock

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
SERVER_CERT_FILE = "csms.pem"
SERVER_KEY_FILE = "csms.key"
CLOCK_SKEW = timedelta(minutes=5)  # certificates start this long before issue, for chargers whose clock lags
SERVER_REISSUE_BEFORE = timedelta(days=30)
EC_CURVES = {"secp256r1", "secp384r1"}
RSA_BITS = (2048, 8192)
SIGNATURE_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)


class CaError(RuntimeError):
    """The CA folder cannot be used as it is (a missing half, loose permissions, a key that does not match)."""


@dataclass(frozen=True, slots=True)
class CaPolicy:
    """Who the CA is and how long what it signs is valid."""

    organisation: str
    ca_validity: timedelta = timedelta(days=3650)
    station_validity: timedelta = timedelta(days=365)
    server_validity: timedelta = timedelta(days=365)

    def __post_init__(self) -> None:
        if not self.organisation.strip() or len(self.organisation) > 64:
            msg = f"ocpp_ca_organisation: {self.organisation!r} must be 1 to 64 characters"
            raise ValueError(msg)
        if self.station_validity <= timedelta(0) or self.server_validity <= timedelta(0):
            msg = "ocpp_station_cert_days: certificates must be valid for a positive time"
            raise ValueError(msg)


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key file readable by its owner only (created 0600, never world-readable)."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    tmp.replace(path)


def _check_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        msg = f"{path.name}: mode {mode:o} lets others read the private key; chmod 600 it"
        raise CaError(msg)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def _load_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    """A PKCS#10 request in PEM (as OCPP sends it), or bare base64 DER (some chargers drop the armour)."""
    text = csr_pem.strip()
    try:
        if "-----BEGIN" in text:
            return x509.load_pem_x509_csr(text.encode())
        return x509.load_der_x509_csr(base64.b64decode("".join(text.split()), validate=True))
    except ValueError as exc:
        raise CertificateRequestError(CsrRefusal.INVALID_CSR, "csr: not a PEM-encoded PKCS#10 request") from exc


class PlatformCa:
    """Creates or loads the CA, checks charger CSRs and issues charger and CSMS certificates."""

    def __init__(
        self,
        folder: Path,
        key: ec.EllipticCurvePrivateKey,
        certificate: x509.Certificate,
        policy: CaPolicy,
        clock: Clock | None = None,
    ) -> None:
        self.folder = folder
        self._key = key
        self.certificate = certificate
        self.policy = policy
        self.clock: Clock = clock or SystemClock()

    def __repr__(self) -> str:  # never the key
        return f"PlatformCa(folder={str(self.folder)!r}, subject={self.certificate.subject.rfc4514_string()!r})"

    # ------------------------------------------------------------------ files
    @classmethod
    def load_or_create(cls, folder: Path, policy: CaPolicy, clock: Clock | None = None) -> PlatformCa:
        """The CA in ``folder``: loaded when both files are there, created when neither is."""
        clock = clock or SystemClock()
        cert_path, key_path = folder / CA_CERT_FILE, folder / CA_KEY_FILE
        if cert_path.exists() or key_path.exists():
            return cls.load(folder, policy, clock)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        now = clock.now()
        subject = _name(f"{policy.organisation} OCPP CA", policy.organisation)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + policy.ca_validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(key_path, key_pem)
        cert_path.write_text(_pem(certificate))
        return cls(folder, key, certificate, policy, clock)

    @classmethod
    def load(cls, folder: Path, policy: CaPolicy, clock: Clock | None = None) -> PlatformCa:
        """The existing CA in ``folder``; a clear error when it is incomplete or unsafe."""
        cert_path, key_path = folder / CA_CERT_FILE, folder / CA_KEY_FILE
        missing = [p.name for p in (cert_path, key_path) if not p.exists()]
        if missing:
            msg = f"ocpp_ca_dir: {', '.join(missing)} missing in the CA folder (restore it, or start a new CA folder)"
            raise CaError(msg)
        _check_private(key_path)
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            msg = f"{CA_KEY_FILE}: the CA key must be an ECDSA key"
            raise CaError(msg)
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if certificate.public_key() != key.public_key():
            msg = f"{CA_CERT_FILE}: the certificate does not belong to {CA_KEY_FILE}"
            raise CaError(msg)
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not constraints.ca:
            msg = f"{CA_CERT_FILE}: not a CA certificate"
            raise CaError(msg)
        return cls(folder, key, certificate, policy, clock)

    @property
    def ca_file(self) -> Path:
        return self.folder / CA_CERT_FILE

    @property
    def certificate_pem(self) -> str:
        return _pem(self.certificate)

    @property
    def organisation(self) -> str:
        return self.policy.organisation

    @property
    def fingerprint_sha256(self) -> str:
        return _fingerprint(self.certificate)

    # ------------------------------------------------------------------ charger certificates
    def check_station_csr(self, charger_id: str, csr_pem: str) -> None:
        """Refuse a CSR the platform will not sign (raises :class:`CertificateRequestError`)."""
        self._checked_csr(charger_id, csr_pem)

    def _checked_csr(self, charger_id: str, csr_pem: str) -> x509.CertificateSigningRequest:
        csr = _load_csr(csr_pem)
        try:
            signature_ok = csr.is_signature_valid
        except (InvalidSignature, ValueError, TypeError):  # pragma: no cover - unusual key types
            signature_ok = False
        if not signature_ok:
            raise CertificateRequestError(CsrRefusal.INVALID_CSR, "csr: its signature does not verify")
        algorithm = csr.signature_hash_algorithm
        if not isinstance(algorithm, SIGNATURE_HASHES):
            name = algorithm.name if algorithm is not None else "none"
            msg = f"csr: signed with {name}; SHA-256, SHA-384 or SHA-512 required"
            raise CertificateRequestError(CsrRefusal.SIGNATURE, msg)
        names = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [charger_id]:
            shown = ", ".join(repr(n) for n in names) or "none"
            msg = f"csr.subject.CN: {shown} must be the charger id {charger_id!r}"
            raise CertificateRequestError(CsrRefusal.COMMON_NAME, msg)
        orgs = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        if orgs and orgs != [self.organisation]:
            msg = f"csr.subject.O: {', '.join(repr(o) for o in orgs)} must be the operator {self.organisation!r}"
            raise CertificateRequestError(CsrRefusal.ORGANISATION, msg)
        key = csr.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in EC_CURVES:
                msg = f"csr.publicKey: curve {key.curve.name} not accepted (secp256r1 or secp384r1)"
                raise CertificateRequestError(CsrRefusal.KEY, msg)
        elif isinstance(key, rsa.RSAPublicKey):
            if not RSA_BITS[0] <= key.key_size <= RSA_BITS[1]:
                msg = f"csr.publicKey: RSA {key.key_size} bits not accepted ({RSA_BITS[0]} to {RSA_BITS[1]})"
                raise CertificateRequestError(CsrRefusal.KEY, msg)
        else:
            msg = f"csr.publicKey: {type(key).__name__.lstrip('_')} not accepted (ECDSA P-256/P-384 or RSA)"
            raise CertificateRequestError(CsrRefusal.KEY, msg)
        return csr

    def issue_station_certificate(self, charger_id: str, csr_pem: str) -> IssuedCertificate:
        """Check the CSR and sign a TLS client certificate for the charger (CN = its id, O = the operator)."""
        csr = self._checked_csr(charger_id, csr_pem)
        now = self.clock.now()
        not_after = min(now + self.policy.station_validity, self.certificate.not_valid_after_utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(charger_id, self.organisation))
            .issuer_name(self.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_end_entity_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
            .add_extension(self._authority_key_id(), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return self._issued(charger_id, certificate)

    def _issued(self, charger_id: str, certificate: x509.Certificate) -> IssuedCertificate:
        leaf = _pem(certificate)
        return IssuedCertificate(
            charger_id=charger_id,
            serial_hex=normalise_serial(certificate.serial_number),
            fingerprint_sha256=_fingerprint(certificate),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            certificate_pem=leaf,
            chain_pem=leaf + self.certificate_pem,
        )

    def _authority_key_id(self) -> x509.AuthorityKeyIdentifier:
        ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)

    # ------------------------------------------------------------------ the CSMS's own certificate
    def issue_server_certificate(self, names: Sequence[str]) -> tuple[str, str]:
        """A TLS server certificate (chain PEM) and its new private key (PEM) for these host names / IPs."""
        if not names:
            msg = "ocpp_server_names: at least one host name or IP address is needed"
            raise ValueError(msg)
        key = ec.generate_private_key(ec.SECP256R1())
        now = self.clock.now()
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0], self.organisation))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(min(now + self.policy.server_validity, self.certificate.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_end_entity_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(self._authority_key_id(), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return _pem(certificate) + self.certificate_pem, key_pem

    def ensure_server_files(self, names: Sequence[str]) -> tuple[Path, Path]:
        """``csms.pem`` / ``csms.key`` in the CA folder, (re-)issued when missing, expiring or for other names."""
        cert_path, key_path = self.folder / SERVER_CERT_FILE, self.folder / SERVER_KEY_FILE
        if cert_path.exists() and key_path.exists() and not self._server_stale(cert_path, names):
            _check_private(key_path)
            return cert_path, key_path
        chain, key_pem = self.issue_server_certificate(names)
        _write_private(key_path, key_pem.encode())
        cert_path.write_text(chain)
        return cert_path, key_path

    def _server_stale(self, cert_path: Path, names: Sequence[str]) -> bool:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if certificate.issuer != self.certificate.subject:
            return True
        if certificate.not_valid_after_utc - self.clock.now() < SERVER_REISSUE_BEFORE:
            return True
        try:
            alt = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return True
        present = {str(v) for v in alt.get_values_for_type(x509.IPAddress)} | set(alt.get_values_for_type(x509.DNSName))
        return present != set(names)


def _end_entity_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def mtls_server_context(ca_file: Path, cert_file: Path, key_file: Path | None) -> ssl.SSLContext:
    """TLS for the profile-3 listener: a client certificate issued by the platform CA is required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.load_verify_locations(cafile=str(ca_file))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
