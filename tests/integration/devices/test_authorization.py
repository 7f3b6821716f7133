"""idTokens are authorised against the platform's records; chargers use their registered OCPP version;
frames and idTokens are logged at DEBUG only."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from typer.testing import CliRunner
from websockets.asyncio.client import connect

from tests.integration.devices.conftest import Platform, wait_for
from tests.integration.devices.frames import VERSIONS
from tests.integration.devices.test_exactly_once import iso, raw_client, rpc, tx_frame
from tests.integration.devices.test_frames_and_handshake import basic, handshake_status
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.provisioning import provision_simulated
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.cli import app as cli_app
from v2g.devices import IdTokenRecord, TokenStatus
from v2g.fleet.model import ChargerProtocol
from v2g.sim.fleet import start_fleet
from v2g.sim.ocpp_client import SIM_ID_TOKEN
from v2g.units import utc_now


def authorize(uid: str, version: str, token: str) -> list[Any]:
    if version == "1.6":
        return [2, uid, "Authorize", {"idTag": token}]
    return [2, uid, "Authorize", {"idToken": {"idToken": token, "type": "ISO14443"}}]


def status_of(reply: list[Any], version: str) -> str:
    assert reply[0] == 3, reply
    info = reply[2]["idTagInfo" if version == "1.6" else "idTokenInfo"]
    return str(info["status"])


@pytest.mark.parametrize("version", VERSIONS)
async def test_id_tokens_are_checked_against_the_records(platform: Platform, version: str) -> None:
    reg = platform.register(version)
    other = platform.register(version)
    cid = reg.charger.id
    platform.store.add_id_token(IdTokenRecord("CARD-HERE", TokenStatus.ACCEPTED, charger_id=cid))
    platform.store.add_id_token(IdTokenRecord("CARD-OWNER", TokenStatus.ACCEPTED, customer_id="cust-t"))
    platform.store.add_id_token(IdTokenRecord("CARD-THERE", TokenStatus.ACCEPTED, charger_id=other.charger.id))
    platform.store.add_id_token(IdTokenRecord("CARD-STOLEN", TokenStatus.BLOCKED, charger_id=cid))
    elsewhere = "Invalid" if version == "1.6" else "NotAtThisLocation"
    async with raw_client(platform, version, cid, reg.password) as ws:
        assert status_of(await rpc(ws, authorize("a-1", version, "CARD-HERE")), version) == "Accepted"
        assert status_of(await rpc(ws, authorize("a-2", version, "CARD-OWNER")), version) == "Accepted"
        assert status_of(await rpc(ws, authorize("a-3", version, "NOBODY")), version) == "Invalid"
        assert status_of(await rpc(ws, authorize("a-4", version, "CARD-THERE")), version) == elsewhere
        assert status_of(await rpc(ws, authorize("a-5", version, "CARD-STOLEN")), version) == "Blocked"


async def test_transaction_with_an_unknown_token_is_refused_but_its_data_kept(platform: Platform) -> None:
    reg = platform.register("2.0.1")
    frame = tx_frame("t-1", "TX-UNK", 0, "Started", utc_now().replace(microsecond=0))
    frame[3]["idToken"] = {"idToken": "NOBODY", "type": "ISO14443"}  # type: ignore[index]
    async with raw_client(platform, "2.0.1", reg.charger.id, reg.password) as ws:
        reply = await rpc(ws, frame)
    assert reply[2] == {"idTokenInfo": {"status": "Invalid"}}
    assert [e["seq_no"] for e in platform.store.transaction_events(reg.charger.id, "TX-UNK")] == [0]


async def test_v16_start_transaction_with_an_unknown_tag(platform: Platform) -> None:
    reg = platform.register("1.6")
    start = {"connectorId": 1, "idTag": "NOBODY", "meterStart": 0, "timestamp": iso(utc_now())}
    async with raw_client(platform, "1.6", reg.charger.id, reg.password) as ws:
        reply = await rpc(ws, [2, "s-1", "StartTransaction", start])
    assert reply[2]["idTagInfo"] == {"status": "Invalid"}  # type: ignore[index]
    assert len(platform.store.transactions(reg.charger.id)) == 1


async def test_charger_may_only_use_the_ocpp_version_its_record_allows(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    reg = platform.register("2.0.1")
    url = f"{platform.url}/{reg.charger.id}"
    auth = basic(reg.charger.id, reg.password)
    with caplog.at_level(logging.WARNING, logger="v2g.ocpp"):
        assert await handshake_status(url, auth, protocol="ocpp1.6") == 400
    assert any(
        "refused ocpp1.6: registered for ocpp2.0.1" in r.getMessage() and reg.charger.id in r.getMessage()
        for r in caplog.records
    )
    assert platform.server.stats["refused_protocol"] == 1
    # offered several versions, it gets its registered one
    async with connect(url, subprotocols=["ocpp1.6", "ocpp2.0.1"], additional_headers=auth) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "ocpp2.0.1"
    platform.store.allow_protocols(reg.charger.id, [ChargerProtocol.OCPP16])
    assert await handshake_status(url, auth, protocol="ocpp1.6") == 101
    assert await handshake_status(url, auth, protocol="ocpp2.0.1") == 101


@pytest.mark.parametrize("version", VERSIONS)
async def test_frames_and_id_tokens_are_logged_at_debug_only(
    platform: Platform, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    reg = platform.register(version)
    secret = "SECRET-CARD-4711"
    caplog.set_level(logging.DEBUG)
    async with raw_client(platform, version, reg.charger.id, reg.password) as ws:
        assert (await rpc(ws, authorize("a-1", version, secret)))[0] == 3
        if version == "1.6":  # a request whose handler fails: the library logs the frame it failed on
            start = {"connectorId": 1, "idTag": secret, "meterStart": 0, "timestamp": "not a time"}
            assert (await rpc(ws, [2, "s-1", "StartTransaction", start]))[0] == 4
        else:
            bad = tx_frame("t-1", "TX-1", 0, "Started", utc_now())
            bad[3]["idToken"] = {"idToken": secret, "type": "ISO14443"}  # type: ignore[index]
            bad[3]["timestamp"] = "not a time"  # type: ignore[index]
            assert (await rpc(ws, bad))[0] == 4
    leaked = [r for r in caplog.records if r.levelno >= logging.INFO and secret in r.getMessage()]
    assert leaked == []
    assert any(secret in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


def test_cli_registers_tokens_and_allowed_protocols(platform_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("V2G_DATABASE_URL", platform_db)
    runner = CliRunner()
    reg = runner.invoke(cli_app, ["charger", "register", "--site", "site-dev-1", "--protocol", "2.0.1", "--id", "CP-T"])
    assert reg.exit_code == 0, reg.output
    ok = runner.invoke(cli_app, ["charger", "token", "CARD-9", "--charger", "CP-T"])
    assert ok.exit_code == 0, ok.output
    both = runner.invoke(cli_app, ["charger", "token", "CARD-9", "--charger", "CP-T", "--customer", "cust-t"])
    assert both.exit_code == 2
    assert "exactly one of charger_id or customer_id" in both.output
    assert runner.invoke(cli_app, ["charger", "token", "CARD-9", "--charger", "CP-NONE"]).exit_code == 2
    allowed = runner.invoke(cli_app, ["charger", "allow-protocol", "CP-T", "--protocol", "1.6"])
    assert allowed.exit_code == 0, allowed.output
    engine = make_engine(platform_db)
    try:
        store = SqlDeviceStore(engine)
        assert store.id_token_records("CARD-9") == [IdTokenRecord("CARD-9", TokenStatus.ACCEPTED, charger_id="CP-T")]
        auth = store.auth("CP-T")
        assert auth is not None
        assert auth.allowed_protocols == {ChargerProtocol.OCPP201, ChargerProtocol.OCPP16}
    finally:
        engine.dispose()


async def test_simulated_wallboxes_are_provisioned_with_their_card(platform: Platform) -> None:
    creds = provision_simulated(platform.store, 2, "1.6", hasher=Argon2Hasher(simulated=True), prefix="TK")
    assert {r.charger_id for r in platform.store.id_token_records(SIM_ID_TOKEN)} >= {c.charger_id for c in creds}
    run = await start_fleet(creds, platform.url, "1.6", seed=3, meter_interval_s=0.2)
    try:
        assert not run.failed
        await wait_for(lambda: platform.server.stats["id_token_Accepted"] >= 1)
        assert platform.server.stats["id_token_Invalid"] == 0
    finally:
        await run.stop()
