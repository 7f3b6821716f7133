"""The platform CA: its files, the certificates it issues and the signing requests it refuses."""

from __future__ import annotations

import base64
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from v2g.adapters.pki import CaPolicy, PlatformCa
from v2g.adapters.pki.ca import CA_KEY_FILE, CaError
from v2g.devices import CertificateRequestError, CsrRefusal, DeviceError, check_security_profile, normalise_serial
from v2g.sim.station_pki import StationKeyStore
from v2g.units import utc_now

ORG = "Test Operator AB"


def csr_pem(key: object, *names: tuple[object, str], algorithm: hashes.HashAlgorithm | None = None) -> str:
    subject = x509.Name([x509.NameAttribute(oid, value) for oid, value in names])  # type: ignore[arg-type]
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    signed = builder.sign(key, algorithm if algorithm is not None else hashes.SHA256())  # type: ignore[arg-type]
    return signed.public_bytes(serialization.Encoding.PEM).decode()


def ec_csr(common_name: str, organisation: str | None = ORG, curve: ec.EllipticCurve | None = None) -> str:
    names: list[tuple[object, str]] = [(NameOID.COMMON_NAME, common_name)]
    if organisation is not None:
        names.append((NameOID.ORGANIZATION_NAME, organisation))
    return csr_pem(ec.generate_private_key(curve or ec.SECP256R1()), *names)


@pytest.fixture
def ca(tmp_path: Path) -> PlatformCa:
    return PlatformCa.load_or_create(tmp_path / "ca", CaPolicy(ORG, station_validity=timedelta(days=90)))


def test_ca_files_are_created_private_and_reloaded(ca: PlatformCa, tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    assert stat.S_IMODE((folder / CA_KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert "PRIVATE KEY" not in ca.certificate_pem
    assert CA_KEY_FILE not in repr(ca)
    assert "BEGIN" not in repr(ca)
    again = PlatformCa.load_or_create(folder, CaPolicy(ORG))
    assert again.certificate == ca.certificate  # the same CA, not a new one
    cert = ca.certificate
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ORG


def test_unsafe_or_incomplete_ca_folders_are_refused(ca: PlatformCa, tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    (folder / CA_KEY_FILE).chmod(0o644)
    with pytest.raises(CaError, match="chmod 600"):
        PlatformCa.load_or_create(folder, CaPolicy(ORG))
    (folder / CA_KEY_FILE).chmod(0o600)
    other = PlatformCa.load_or_create(tmp_path / "other", CaPolicy(ORG))
    (folder / "ca.pem").write_text(other.certificate_pem)
    with pytest.raises(CaError, match="does not belong"):
        PlatformCa.load(folder, CaPolicy(ORG))
    (folder / "ca.pem").unlink()
    with pytest.raises(CaError, match=r"ca\.pem missing"):
        PlatformCa.load_or_create(folder, CaPolicy(ORG))
    with pytest.raises(ValueError, match="ocpp_ca_organisation"):
        CaPolicy("")


def test_station_certificate_properties(ca: PlatformCa) -> None:
    issued = ca.issue_station_certificate("CP-1", ec_csr("CP-1", organisation=None))
    chain = x509.load_pem_x509_certificates(issued.chain_pem.encode())
    leaf = chain[0]
    assert chain[1] == ca.certificate
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-1"
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ORG  # set by the CA
    assert leaf.issuer == ca.certificate.subject
    leaf.verify_directly_issued_by(ca.certificate)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert timedelta(days=90) <= lifetime <= timedelta(days=90, minutes=10)
    assert leaf.not_valid_before_utc <= utc_now() < leaf.not_valid_after_utc
    assert issued.serial_hex == normalise_serial(leaf.serial_number)
    assert issued.not_after == leaf.not_valid_after_utc
    assert len(issued.fingerprint_sha256) == 64


def test_server_certificate_names_and_reissue(ca: PlatformCa, tmp_path: Path) -> None:
    cert_path, key_path = ca.ensure_server_files(["localhost", "127.0.0.1"])
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    leaf = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    alt = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in alt.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert ca.ensure_server_files(["localhost", "127.0.0.1"]) == (cert_path, key_path)
    assert cert_path.read_bytes() == ca.ensure_server_files(["127.0.0.1", "localhost"])[0].read_bytes()
    ca.ensure_server_files(["csms.example.se"])  # other names: a new certificate
    leaf = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["csms.example.se"]


REFUSALS = [
    pytest.param(lambda: "not a CSR at all", CsrRefusal.INVALID_CSR, id="garbage"),
    pytest.param(lambda: ec_csr("CP-2"), CsrRefusal.COMMON_NAME, id="other-cn"),
    pytest.param(lambda: ec_csr("cp-1"), CsrRefusal.COMMON_NAME, id="cn-case"),
    pytest.param(
        lambda: csr_pem(ec.generate_private_key(ec.SECP256R1()), (NameOID.ORGANIZATION_NAME, ORG)),
        CsrRefusal.COMMON_NAME,
        id="no-cn",
    ),
    pytest.param(
        lambda: csr_pem(
            ec.generate_private_key(ec.SECP256R1()), (NameOID.COMMON_NAME, "CP-1"), (NameOID.COMMON_NAME, "CP-2")
        ),
        CsrRefusal.COMMON_NAME,
        id="two-cns",
    ),
    pytest.param(lambda: ec_csr("CP-1", organisation="Someone Else"), CsrRefusal.ORGANISATION, id="other-o"),
    pytest.param(lambda: ec_csr("CP-1", curve=ec.SECP521R1()), CsrRefusal.KEY, id="p521"),
    pytest.param(
        lambda: csr_pem(rsa.generate_private_key(65537, 1024), (NameOID.COMMON_NAME, "CP-1")),
        CsrRefusal.KEY,
        id="rsa-1024",
    ),
]


@pytest.mark.parametrize(("make", "reason"), REFUSALS)
def test_signing_requests_are_refused_with_the_reason(ca: PlatformCa, make: object, reason: CsrRefusal) -> None:
    with pytest.raises(CertificateRequestError) as info:
        ca.issue_station_certificate("CP-1", make())  # type: ignore[operator]
    assert info.value.reason is reason
    assert len(reason.value) <= 20  # OCPP reasonCode
    assert "csr" in info.value.detail


def test_ed25519_and_tampered_requests_are_refused(ca: PlatformCa) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CP-1")])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, None)
    with pytest.raises(CertificateRequestError) as info:
        ca.check_station_csr("CP-1", request.public_bytes(serialization.Encoding.PEM).decode())
    assert info.value.reason in (CsrRefusal.KEY, CsrRefusal.SIGNATURE)
    # a request whose signature no longer matches its content
    der = bytearray(x509.load_pem_x509_csr(ec_csr("CP-1").encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF
    tampered = base64.b64encode(bytes(der)).decode()
    with pytest.raises(CertificateRequestError) as info:
        ca.check_station_csr("CP-1", tampered)
    assert info.value.reason is CsrRefusal.INVALID_CSR


def test_accepted_keys_and_bare_der(ca: PlatformCa) -> None:
    ca.check_station_csr("CP-1", ec_csr("CP-1", curve=ec.SECP384R1()))
    ca.check_station_csr("CP-1", csr_pem(rsa.generate_private_key(65537, 2048), (NameOID.COMMON_NAME, "CP-1")))
    pem = ec_csr("CP-1")
    der = x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER)
    ca.check_station_csr("CP-1", base64.b64encode(der).decode())  # some chargers drop the PEM armour


def test_security_profiles_only_go_up() -> None:
    check_security_profile(3)
    check_security_profile(3, current=2)
    with pytest.raises(DeviceError, match="not supported"):
        check_security_profile(4)
    with pytest.raises(DeviceError, match="downgrade"):
        check_security_profile(2, current=3)
    assert normalise_serial("00:0a:FF") == normalise_serial(0xAFF) == "AFF"


def test_simulated_station_installs_only_its_own_certificate(ca: PlatformCa, tmp_path: Path) -> None:
    station = StationKeyStore("CP-1", ORG, tmp_path / "station", ca.certificate_pem)
    foreign = ca.issue_station_certificate("CP-1", ec_csr("CP-1")).chain_pem
    assert station.install(foreign, utc_now()) == (False, "no certificate signing request is pending")
    station.new_csr()
    accepted, why = station.install(foreign, utc_now())
    assert not accepted
    assert "pending key" in why
    issued = ca.issue_station_certificate("CP-1", station.new_csr())
    assert station.install(issued.chain_pem, utc_now()) == (True, "")
    assert station.serial_hex == issued.serial_hex
    assert stat.S_IMODE((tmp_path / "station" / "station.key").stat().st_mode) == 0o600
