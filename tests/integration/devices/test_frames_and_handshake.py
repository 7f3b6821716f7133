"""Malformed frames get the right OCPP error with the connection and state intact; handshake refusals."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.integration.devices.conftest import TEST_CONFIG, Platform, settle
from tests.integration.devices.test_exactly_once import meter_frame, raw_client, rpc
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.ocpp.server import CsmsServer
from v2g.units import utc_now

FORMAT = {"1.6": "FormationViolation", "2.0.1": "FormatViolation", "2.1": "FormatViolation"}
MESSAGE_TYPE = {"1.6": "ProtocolError", "2.0.1": "MessageTypeNotSupported", "2.1": "MessageTypeNotSupported"}


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1", "2.1"])
async def test_malformed_frames(platform: Platform, protocol: str) -> None:
    reg = platform.register(protocol)
    async with raw_client(platform, protocol, reg.charger.id, reg.password) as ws:
        assert await rpc(ws, "this is not json") == [4, "-1", FORMAT[protocol], "Message is not valid JSON", {}]
        reply = await rpc(ws, json.dumps({"not": "an array"}))
        assert reply[:3] == [4, "-1", "ProtocolError"]
        reply = await rpc(ws, json.dumps([2, "m-1", "Heartbeat"]))
        assert reply[:3] == [4, "m-1", "ProtocolError"]
        reply = await rpc(ws, json.dumps([2, "m-2", "Heartbeat", ["payload must be an object"]]))
        assert reply[:3] == [4, "m-2", FORMAT[protocol]]
        reply = await rpc(ws, json.dumps([7, "m-3", "Heartbeat", {}]))
        assert reply[:3] == [4, "m-3", MESSAGE_TYPE[protocol]]
        reply = await rpc(ws, json.dumps([2, "m-4", "NoSuchAction", {}]))
        assert reply[0] == 4
        assert reply[2] in ("NotImplemented", "NotSupported")
        # schema violation: the library's validation names the cause
        bad = [2, "m-5", "MeterValues", {"meterValue": "nope"}]
        reply = await rpc(ws, json.dumps(bad))
        assert reply[0] == 4
        assert reply[1] == "m-5"
        assert reply[2] in (
            "FormatViolation",
            "FormationViolation",
            "OccurrenceConstraintViolation",
            "OccurenceConstraintViolation",
            "TypeConstraintViolation",
            "ProtocolError",
        )
        # the connection and the state are intact afterwards
        reply = await rpc(ws, json.dumps([2, "m-6", "Heartbeat", {}]))
        assert reply[0] == 3
        assert reply[1] == "m-6"
    state = platform.store.state(reg.charger.id)
    assert state["protocol"] == f"ocpp{protocol}"
    assert platform.store.telemetry(reg.charger.id) == []
    assert platform.server.stats["rejected_frames"] >= 5


async def test_simulator_malformed_frame_fault_keeps_session(platform: Platform) -> None:
    reg = platform.register("2.1")
    sim = platform.sim(reg, "2.1")
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        await sim.send_raw('[2, "broken"')
        await sim.heartbeat()
        assert platform.server.sessions[reg.charger.id].rejected_frames == 1
    finally:
        await sim.stop()


def basic(charger_id: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{charger_id}:{password}".encode()).decode()}


async def handshake_status(url: str, headers: dict[str, str], protocol: str = "ocpp2.0.1") -> int:
    try:
        async with connect(url, subprotocols=[protocol], additional_headers=headers):  # type: ignore[list-item]
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_handshake_refusals(platform: Platform) -> None:
    reg = platform.register("2.0.1")
    url = f"{platform.url}/{reg.charger.id}"
    assert await handshake_status(url, basic(reg.charger.id, reg.password)) == 101
    assert await handshake_status(url, basic(reg.charger.id, "wrong")) == 401
    assert await handshake_status(url, {}) == 401
    assert await handshake_status(url, basic("someone-else", reg.password)) == 401
    assert await handshake_status(f"{platform.url}/CP-UNKNOWN", basic("CP-UNKNOWN", "x")) == 404
    assert await handshake_status(url, basic(reg.charger.id, reg.password), protocol="ocpp9.9") == 400
    platform.store.set_active(reg.charger.id, False)
    assert await handshake_status(url, basic(reg.charger.id, reg.password)) == 403


async def test_profile2_requires_tls(platform: Platform, tmp_path: Path) -> None:
    reg = platform.register("2.1", security_profile=2)
    url = f"{platform.url}/{reg.charger.id}"
    assert await handshake_status(url, basic(reg.charger.id, reg.password)) == 403

    server_ctx, client_ctx = tls_contexts(tmp_path)
    server = CsmsServer(SqlDeviceStore(platform.engine), TEST_CONFIG, ssl_context=server_ctx)
    port = await server.start()
    try:
        sim = platform.sim(reg, "2.1", url=f"wss://127.0.0.1:{port}/ocpp")
        sim.ssl_context = client_ctx
        await sim.start()
        at = utc_now().replace(microsecond=0)
        async with connect(
            f"wss://127.0.0.1:{port}/ocpp/{reg.charger.id}",
            subprotocols=["ocpp2.1"],  # type: ignore[list-item]
            additional_headers=basic(reg.charger.id, reg.password),
            ssl=client_ctx,
        ) as ws:
            reply = await rpc(ws, meter_frame("tls-1", at, 5.0))
            assert reply[:2] == [3, "tls-1"]
        await sim.stop()
        assert server.stats["connections"] == 2
        assert server.stats["replaced_connections"] == 1  # the newer connection replaced the simulator's
        assert [
            s.value for s in platform.store.telemetry(reg.charger.id, measurand="Energy.Active.Import.Register")
        ] == [5.0]
    finally:
        await server.stop()


def tls_contexts(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed server certificate for 127.0.0.1 and a client context that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csms.test")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "csms.pem", folder / "csms.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    server_ctx.load_cert_chain(cert_path, key_path)
    client_ctx = ssl.create_default_context(cafile=str(cert_path))
    return server_ctx, client_ctx
