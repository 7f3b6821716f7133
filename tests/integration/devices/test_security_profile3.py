"""Security profile 3 over real TLS sockets: client certificates from the platform CA, renewal, refusals."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import ocpp.v21
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from tests.integration.devices.conftest import SITE_ID, TEST_CONFIG, Platform, settle, wait_for
from tests.integration.devices.test_frames_and_handshake import basic, handshake_status
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.adapters.ocpp.gateway import OcppChargerGateway
from v2g.adapters.ocpp.server import CsmsServer
from v2g.adapters.pki import CaPolicy, PlatformCa, mtls_server_context
from v2g.bootstrap import bootstrap
from v2g.cli import app as cli_app
from v2g.config import Settings
from v2g.devices import AckStatus, CertificateStatus, ChargerRegistration, DeviceError
from v2g.fleet.model import ChargerProtocol
from v2g.runtime import Runtime
from v2g.services.devices.certificates import REQUESTED_BY_OPERATOR, StationCertificates
from v2g.services.devices.installation import register_charger
from v2g.sim.ocpp_client import SimCharger
from v2g.sim.station_pki import StationKeyStore
from v2g.sim.wallbox import Wallbox
from v2g.units import utc_now

ORG = "Test Operator AB"


@dataclass
class Pki:
    """A CSMS with a TLS listener for profiles 1-2 and a client-certificate listener for profile 3."""

    platform: Platform
    ca: PlatformCa
    certificates: StationCertificates
    server: CsmsServer
    tls_port: int
    folder: Path

    @property
    def mtls_url(self) -> str:
        return f"wss://127.0.0.1:{self.server.mtls_port}/ocpp"

    @property
    def tls_url(self) -> str:
        return f"wss://127.0.0.1:{self.tls_port}/ocpp"

    def register(self, protocol: str, charger_id: str) -> ChargerRegistration:
        return self.platform.register(protocol, charger_id=charger_id, security_profile=3)

    def keystore(self, charger_id: str) -> StationKeyStore:
        return StationKeyStore(charger_id, ORG, self.folder / "stations" / charger_id, self.ca.certificate_pem)

    def enrol(self, charger_id: str) -> StationKeyStore:
        """The installer's path: the charger makes a key and CSR, the operator has it signed, it installs it."""
        keystore = self.keystore(charger_id)
        issued = self.certificates.issue(charger_id, keystore.new_csr(), requested_via=REQUESTED_BY_OPERATOR)
        accepted, why = keystore.install(issued.chain_pem, utc_now())
        assert accepted, why
        return keystore

    def sim(self, reg: ChargerRegistration, protocol: str, keystore: StationKeyStore) -> SimCharger:
        wallbox = Wallbox(reg.charger.id, 11.0, 11.0)
        return SimCharger(
            reg.charger.id,
            reg.password,
            self.mtls_url,
            protocol,
            wallbox,
            response_timeout_s=5.0,
            keystore=keystore,
        )


def _pki_server(platform: Platform, folder: Path, certificates: StationCertificates, ca: PlatformCa) -> CsmsServer:
    cert, key = ca.ensure_server_files(["127.0.0.1"])
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    return CsmsServer(
        platform.store,
        TEST_CONFIG,
        ssl_context=tls,
        mtls_context=mtls_server_context(ca.ca_file, cert, key),
        certificates=certificates,
    )


@pytest.fixture
async def pki(platform: Platform, tmp_path: Path) -> AsyncIterator[Pki]:
    ca = PlatformCa.load_or_create(tmp_path / "ca", CaPolicy(ORG))
    certificates = StationCertificates(ca, platform.store)
    server = _pki_server(platform, tmp_path, certificates, ca)
    port = await server.start("127.0.0.1", 0, mtls_port=0)
    try:
        yield Pki(platform, ca, certificates, server, port, tmp_path)
    finally:
        await server.stop()


def client_context(keystore: StationKeyStore) -> ssl.SSLContext:
    return keystore.ssl_context()


async def mtls_handshake(url: str, context: ssl.SSLContext, protocol: str = "ocpp2.0.1") -> int:
    """101 when the WebSocket opened, the HTTP status of a refusal; TLS refusals raise."""
    try:
        async with connect(url, subprotocols=[protocol], ssl=context, open_timeout=5):  # type: ignore[list-item]
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_profile3_connects_with_its_client_certificate(pki: Pki) -> None:
    reg = pki.register("2.0.1", "CP-P3-A")
    assert reg.password == ""  # profile 3 has no password to hand out
    sim = pki.sim(reg, "2.0.1", pki.enrol("CP-P3-A"))
    await sim.start()
    try:
        await settle(pki.platform, "CP-P3-A")
        session = pki.server.sessions["CP-P3-A"]
        assert session.client_certificate is not None
        assert session.client_certificate.common_name == "CP-P3-A"
        state = pki.platform.store.state("CP-P3-A")
        assert state["online"] is True
        assert state["security_profile"] == 3
        [record] = state["certificates"]
        assert record["serial_hex"] == session.client_certificate.serial_hex == sim.keystore.serial_hex  # type: ignore[union-attr]
        assert record["last_used_at"] is not None
        assert record["requested_via"] == "operator"
    finally:
        await sim.stop()
    assert pki.server.stats["connections"] == 1


async def test_wrong_common_name_is_refused(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    pki.register("2.0.1", "CP-P3-A")
    pki.register("2.0.1", "CP-P3-B")
    other = pki.enrol("CP-P3-B")
    with caplog.at_level(logging.WARNING, logger="v2g.ocpp"):
        status = await mtls_handshake(f"{pki.mtls_url}/CP-P3-A", client_context(other))
    assert status == 403
    assert pki.server.stats["refused_certificate"] == 1
    assert "CP-P3-A" not in pki.server.sessions
    assert any(
        "charger[CP-P3-A]: refused at the TLS client check" in r.getMessage() and "'CP-P3-B'" in r.getMessage()
        for r in caplog.records
    )
    # the same certificate opens its own charger's connection
    assert await mtls_handshake(f"{pki.mtls_url}/CP-P3-B", client_context(other)) == 101


async def test_certificate_from_another_ca_is_refused(pki: Pki, tmp_path: Path) -> None:
    pki.register("2.0.1", "CP-P3-A")
    rogue = PlatformCa.load_or_create(tmp_path / "rogue-ca", CaPolicy(ORG))  # same names, another key
    keystore = pki.keystore("CP-P3-A")
    chain = rogue.issue_station_certificate("CP-P3-A", keystore.new_csr()).chain_pem
    assert keystore.install(chain, utc_now())[0]
    with pytest.raises((OSError, InvalidMessage)):  # the TLS handshake fails: the server closes, no HTTP status
        await mtls_handshake(f"{pki.mtls_url}/CP-P3-A", client_context(keystore))
    assert pki.server.stats["connections"] == 0
    assert pki.platform.store.state("CP-P3-A")["online"] is False


async def test_no_client_certificate_is_refused(pki: Pki) -> None:
    pki.register("2.0.1", "CP-P3-A")
    keystore = pki.keystore("CP-P3-A")  # trusts the CSMS, has no certificate of its own
    assert not keystore.has_certificate
    with pytest.raises((OSError, InvalidMessage)):
        await mtls_handshake(f"{pki.mtls_url}/CP-P3-A", client_context(keystore))
    assert pki.server.stats["connections"] == 0


async def test_profile3_charger_may_not_downgrade(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    # profile 2 keeps working as before: TLS without a client certificate, basic auth
    reg = pki.platform.register("2.1", charger_id="CP-UP", security_profile=2)
    trust = pki.keystore("CP-UP").ssl_context()
    headers = basic("CP-UP", reg.password)

    async def over_tls() -> int:
        try:
            async with connect(
                f"{pki.tls_url}/CP-UP",
                subprotocols=["ocpp2.1"],  # type: ignore[list-item]
                additional_headers=headers,
                ssl=trust,
            ):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert await over_tls() == 101
    assert pki.platform.store.set_security_profile("CP-UP", 3) == 2
    with caplog.at_level(logging.WARNING, logger="v2g.ocpp"):
        assert await over_tls() == 403  # the right password on the profile-2 listener no longer does
        assert await handshake_status(f"{pki.platform.url}/CP-UP", headers, "ocpp2.1") == 403  # nor plain ws
    assert pki.server.stats["refused_downgrade"] == 1
    assert pki.platform.server.stats["refused_downgrade"] == 1
    assert any("registered at security profile 3" in r.getMessage() for r in caplog.records)
    with pytest.raises(DeviceError, match="downgrade"):
        pki.platform.store.set_security_profile("CP-UP", 2)
    # once it has a certificate, the profile-3 listener admits it without a password
    sim = pki.sim(reg, "2.1", pki.enrol("CP-UP"))
    sim.password = ""
    await sim.start()
    await sim.stop()
    assert pki.server.stats["connections"] == 2


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1", "2.1"])
async def test_renewal_round_trip(pki: Pki, protocol: str) -> None:
    cid = f"CP-REN-{protocol.replace('.', '')}"
    reg = pki.register(protocol, cid)
    keystore = pki.enrol(cid)
    first = keystore.serial_hex
    sim = pki.sim(reg, protocol, keystore)
    await sim.start()
    try:
        await settle(pki.platform, cid)
        answer = await sim.request_certificate()  # the charger renews on its own (OCPP A03)
        assert answer.status == "Accepted"
        await wait_for(lambda: sim.stats.certificates_installed == 1)
        await wait_for(lambda: pki.server.stats["certificate_signed_accepted"] == 1)
        new = keystore.serial_hex
        assert new is not None
        assert new != first
        records = pki.platform.store.certificates(cid)
        assert [r.serial_hex for r in records] == [new, first]  # newest first
        assert records[0].requested_via == "station"
        assert records[0].status is CertificateStatus.ACCEPTED
        assert pki.server.sessions[cid].client_certificate.serial_hex == first  # type: ignore[union-attr]
        await sim.reconnect()  # the new certificate is used from the next connection
        await wait_for(lambda: cid in pki.server.sessions and pki.server.sessions[cid].client_certificate is not None)
        await wait_for(lambda: pki.server.sessions[cid].client_certificate.serial_hex == new)  # type: ignore[union-attr]
        await sim.heartbeat()
    finally:
        await sim.stop()
    state = pki.platform.store.state(cid)
    assert state["certificates"][0]["serial_hex"] == new
    assert state["certificates"][0]["last_used_at"] is not None
    assert [n["kind"] for n in pki.platform.store.notices(cid, "SignCertificate")] == ["SignCertificate"]


def rsa_1024_csr(charger_id: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, charger_id)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize("protocol", ["1.6", "2.1"])
async def test_bad_csr_is_rejected_with_the_reason(pki: Pki, protocol: str) -> None:
    cid = f"CP-BAD-{protocol.replace('.', '')}"
    reg = pki.register(protocol, cid)
    keystore = pki.enrol(cid)
    sim = pki.sim(reg, protocol, keystore)
    await sim.start()
    cases = {
        "InvalidCommonName": keystore.new_csr(common_name="CP-SOMEONE-ELSE"),
        "UnsupportedKey": rsa_1024_csr(cid),
        "InvalidCSR": "-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgQ1NS\n-----END CERTIFICATE REQUEST-----\n",
    }
    try:
        await settle(pki.platform, cid)
        for reason, csr in cases.items():
            answer = await sim.request_certificate(csr)
            assert answer.status == "Rejected"
            if protocol != "1.6":  # 1.6's answer has no statusInfo; the reason is logged and stored
                assert answer.status_info["reason_code"] == reason
                assert answer.status_info["additional_info"]
        if protocol != "1.6":
            request = ocpp.v21.call.SignCertificate(csr=keystore.new_csr(), certificate_type="V2GCertificate")
            answer = await sim.call(request)
            assert answer.status == "Rejected"
            assert answer.status_info["reason_code"] == "UnsupportedCertType"
    finally:
        await sim.stop()
    notices = pki.platform.store.notices(cid, "SignCertificate")
    assert [n["payload"]["reason_code"] for n in notices][:3] == list(cases)
    assert len(pki.platform.store.certificates(cid)) == 1  # only the enrolled one: nothing was signed
    assert sim.stats.certificates_installed == 0
    assert not any(k.startswith("certificate_signed") for k in pki.server.stats)


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
async def test_csms_initiated_renewal(pki: Pki, protocol: str) -> None:
    cid = f"CP-TRIG-{protocol.replace('.', '')}"
    reg = pki.register(protocol, cid)
    sim = pki.sim(reg, protocol, pki.enrol(cid))
    await sim.start()
    try:
        await settle(pki.platform, cid)
        ack = await OcppChargerGateway(pki.server).renew_certificate(cid)
        assert ack.status is AckStatus.ACCEPTED, ack.detail
        await wait_for(lambda: pki.server.stats["certificate_signed_accepted"] == 1)  # the answer is stored
        assert sim.stats.certificates_installed == 1
        trigger = "ExtendedTriggerMessage:SignChargePointCertificate" if protocol == "1.6" else None
        assert (trigger or "TriggerMessage:SignChargingStationCertificate") in sim.stats.commands
    finally:
        await sim.stop()
    assert pki.platform.store.certificates(cid)[0].status is CertificateStatus.ACCEPTED


async def test_expiring_certificate_is_renewed_on_connect(pki: Pki) -> None:
    pki.certificates.renew_before = pki.ca.policy.station_validity * 2  # every certificate is due
    reg = pki.register("2.1", "CP-EXP")
    sim = pki.sim(reg, "2.1", pki.enrol("CP-EXP"))
    await sim.start()
    try:
        await wait_for(lambda: pki.server.stats["certificate_signed_accepted"] == 1)
        assert sim.stats.certificates_installed == 1
        assert pki.server.stats["certificate_renewals_requested"] == 1  # once per connection
    finally:
        await sim.stop()


async def test_revoked_certificate_is_refused(pki: Pki) -> None:
    pki.register("2.0.1", "CP-REV")
    keystore = pki.enrol("CP-REV")
    assert await mtls_handshake(f"{pki.mtls_url}/CP-REV", client_context(keystore)) == 101
    assert keystore.serial_hex is not None
    pki.platform.store.revoke_certificate("CP-REV", keystore.serial_hex, utc_now())
    assert await mtls_handshake(f"{pki.mtls_url}/CP-REV", client_context(keystore)) == 403
    with pytest.raises(ValueError, match="already revoked"):
        pki.platform.store.revoke_certificate("CP-REV", keystore.serial_hex, utc_now())


def test_cli_installs_a_charger_at_profile_3(platform_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("V2G_DATABASE_URL", platform_db)
    runner = CliRunner()
    no_ca = runner.invoke(cli_app, ["charger", "ca"])
    assert no_ca.exit_code == 2
    assert "V2G_OCPP_CA_DIR" in no_ca.output
    monkeypatch.setenv("V2G_OCPP_CA_DIR", str(tmp_path / "ca"))
    monkeypatch.setenv("V2G_OCPP_CA_ORGANISATION", ORG)
    reg = runner.invoke(
        cli_app,
        ["charger", "register", "--site", SITE_ID, "--protocol", "2.0.1", "--id", "CP-CLI3", "--security-profile", "3"],
    )
    assert reg.exit_code == 0, reg.output
    out = json.loads(reg.output)
    assert out["security_profile"] == 3
    assert "password" not in out
    assert "issue-certificate CP-CLI3" in out["next"]

    root = runner.invoke(cli_app, ["charger", "ca"])
    assert root.exit_code == 0, root.output
    assert root.output.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE" not in root.output
    station = StationKeyStore("CP-CLI3", ORG, tmp_path / "station", root.output)
    (tmp_path / "other.csr").write_text(station.new_csr(common_name="CP-OTHER"))
    refused = runner.invoke(cli_app, ["charger", "issue-certificate", "CP-CLI3", "--csr", str(tmp_path / "other.csr")])
    assert refused.exit_code == 2
    assert "csr.subject.CN" in refused.output
    (tmp_path / "station.csr").write_text(station.new_csr())
    chain = tmp_path / "chain.pem"
    issued = runner.invoke(
        cli_app,
        ["charger", "issue-certificate", "CP-CLI3", "--csr", str(tmp_path / "station.csr"), "--out", str(chain)],
    )
    assert issued.exit_code == 0, issued.output
    serial = json.loads(issued.output)["serial_hex"]
    assert station.install(chain.read_text(), utc_now()) == (True, "")
    assert station.serial_hex == serial
    unknown = runner.invoke(
        cli_app, ["charger", "issue-certificate", "CP-NONE", "--csr", str(tmp_path / "station.csr")]
    )
    assert unknown.exit_code == 2

    listed = json.loads(runner.invoke(cli_app, ["charger", "certificates", "CP-CLI3"]).output)
    assert [(c["serial_hex"], c["requested_via"], c["status"]) for c in listed] == [(serial, "operator", "issued")]
    state = json.loads(runner.invoke(cli_app, ["charger", "state", "CP-CLI3"]).output)
    assert state["security_profile"] == 3
    assert state["certificates"][0]["fingerprint_sha256"] == listed[0]["fingerprint_sha256"]

    revoked = runner.invoke(cli_app, ["charger", "revoke-certificate", "CP-CLI3", serial])
    assert revoked.exit_code == 0, revoked.output
    assert runner.invoke(cli_app, ["charger", "revoke-certificate", "CP-CLI3", serial]).exit_code == 2

    two = runner.invoke(cli_app, ["charger", "register", "--site", SITE_ID, "--protocol", "2.1", "--id", "CP-CLI2"])
    assert "password" in json.loads(two.output)
    raised = runner.invoke(cli_app, ["charger", "security-profile", "CP-CLI2", "--profile", "3"])
    assert raised.exit_code == 0, raised.output
    assert "2 -> 3" in raised.output
    lowered = runner.invoke(cli_app, ["charger", "security-profile", "CP-CLI2", "--profile", "2"])
    assert lowered.exit_code == 2
    assert "downgrade" in lowered.output


async def test_the_platform_runs_profile_3_from_its_settings(platform_db: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=platform_db,
        ocpp_ca_dir=tmp_path / "ca",
        ocpp_ca_organisation=ORG,
        ocpp_port=0,
        ocpp_mtls_port=0,
        ocpp_server_names="127.0.0.1",
    )
    built = bootstrap(settings)
    assert built.certificates is not None
    runtime = Runtime(built, None)
    await runtime.start_csms("127.0.0.1", 0)
    try:
        assert runtime.mtls_port is not None
        assert runtime.mtls_port != runtime.ocpp_port
        reg = register_charger(
            built.devices,
            Argon2Hasher(simulated=True),
            site_id=SITE_ID,
            vendor="V2G-Sim",
            model="BiDi-11",
            protocol=ChargerProtocol.OCPP21,
            max_charge_kw=11.0,
            max_discharge_kw=11.0,
            charger_id="CP-BOOT",
            security_profile=3,
        )
        keystore = StationKeyStore("CP-BOOT", ORG, tmp_path / "station", (tmp_path / "ca" / "ca.pem").read_text())
        issued = built.certificates.issue("CP-BOOT", keystore.new_csr(), requested_via=REQUESTED_BY_OPERATOR)
        assert keystore.install(issued.chain_pem, utc_now())[0]
        sim = SimCharger(
            "CP-BOOT",
            reg.password,
            f"wss://127.0.0.1:{runtime.mtls_port}/ocpp",
            "2.1",
            Wallbox("CP-BOOT", 11.0, 11.0),
            keystore=keystore,
        )
        await sim.start()
        # the boot's re-sync is over (its last write is the connectivity test profile) before the end
        await wait_for(lambda: any(p["purpose"] == "connectivity_test" for p in built.devices.profiles("CP-BOOT")))
        await sim.stop()
        assert built.devices.certificates("CP-BOOT")[0].last_used_at is not None
        await wait_for(lambda: built.devices.state("CP-BOOT")["online"] is False)
    finally:
        await runtime.stop()
        built.engine.dispose()
