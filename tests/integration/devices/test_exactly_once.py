"""Exactly-once: duplicate message ids, re-sent readings, out-of-order and offline-queued events."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.integration.devices.conftest import Platform, ev_battery, settle, wait_for
from v2g.units import utc_now


def iso(at: object) -> str:
    return at.isoformat().replace("+00:00", "Z")  # type: ignore[attr-defined]


@asynccontextmanager
async def raw_client(
    platform: Platform, protocol: str, charger_id: str, password: str
) -> AsyncIterator[ClientConnection]:
    token = base64.b64encode(f"{charger_id}:{password}".encode()).decode()
    async with connect(
        f"{platform.url}/{charger_id}",
        subprotocols=[f"ocpp{protocol}"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {token}"},
    ) as ws:
        yield ws


async def rpc(ws: ClientConnection, frame: list[object] | str) -> list[object]:
    """Send one frame and return the reply, answering any CSMS-initiated CALLs in between."""
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
    while True:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5.0))
        if reply[0] == 2:  # a CALL from the CSMS (re-sync): answer generically
            await ws.send(json.dumps([3, reply[1], _generic_answer(reply[2])]))
            continue
        return reply  # type: ignore[no-any-return]


def _generic_answer(action: str) -> dict[str, object]:
    if action == "GetVariables":
        return {
            "getVariableResult": [
                {
                    "attributeStatus": "Rejected",
                    "component": {"name": "V2XChargingCtrlr"},
                    "variable": {"name": "Enabled"},
                }
            ]
        }
    return {"status": "Accepted"}


def meter_frame(uid: str, at: object, wh: float) -> list[object]:
    return [
        2,
        uid,
        "MeterValues",
        {
            "evseId": 1,
            "meterValue": [
                {
                    "timestamp": iso(at),
                    "sampledValue": [
                        {"value": wh, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}},
                        {"value": 3700.0, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
                    ],
                }
            ],
        },
    ]


def tx_frame(uid: str, tx: str, seq: int, event: str, at: object, *, offline: bool = False) -> list[object]:
    payload: dict[str, object] = {
        "eventType": event,
        "timestamp": iso(at),
        "triggerReason": {"Started": "CablePluggedIn", "Updated": "MeterValuePeriodic", "Ended": "EVDeparted"}[event],
        "seqNo": seq,
        "transactionInfo": {"transactionId": tx},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [
            {
                "timestamp": iso(at),
                "sampledValue": [
                    {
                        "value": 1000.0 * seq,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                    }
                ],
            }
        ],
    }
    if offline:
        payload["offline"] = True
    return [2, uid, "TransactionEvent", payload]


async def test_duplicate_message_id_is_answered_once_and_stored_once(platform: Platform) -> None:
    reg = platform.register("2.0.1")
    at = utc_now().replace(microsecond=0)
    async with raw_client(platform, "2.0.1", reg.charger.id, reg.password) as ws:
        first = await rpc(ws, meter_frame("mv-1", at, 1234.0))
        second = await rpc(ws, meter_frame("mv-1", at, 1234.0))
        assert first == second == [3, "mv-1", {}]
        # the same reading re-sent under a new message id (e.g. after a reconnect) is not counted twice
        third = await rpc(ws, meter_frame("mv-2", at, 1234.0))
        assert third[0] == 3
    samples = platform.store.telemetry(reg.charger.id)
    assert len(samples) == 2
    assert platform.server.stats["duplicate_calls"] == 1
    assert platform.server.writer.totals["samples_duplicate"] == 2


async def test_reading_resent_after_reconnect_is_stored_once(platform: Platform) -> None:
    reg = platform.register("2.0.1")
    at = utc_now().replace(microsecond=0)
    async with raw_client(platform, "2.0.1", reg.charger.id, reg.password) as ws:
        first = await rpc(ws, meter_frame("mv-9", at, 10.0))
    async with raw_client(platform, "2.0.1", reg.charger.id, reg.password) as ws:
        again = await rpc(ws, meter_frame("mv-9", at, 10.0))
    assert first == again
    assert len(platform.store.telemetry(reg.charger.id)) == 2


async def test_out_of_order_offline_events_with_gap(platform: Platform) -> None:
    reg = platform.register("2.0.1")
    t0 = utc_now().replace(microsecond=0) - timedelta(hours=1)
    async with raw_client(platform, "2.0.1", reg.charger.id, reg.password) as ws:
        # the charger was offline: Ended arrives before Updated and Started, seqNo 2 never arrives
        for uid, seq, event in (("e3", 3, "Ended"), ("e1", 1, "Updated"), ("e0", 0, "Started")):
            reply = await rpc(ws, tx_frame(uid, "TX-1", seq, event, t0 + timedelta(minutes=10 * seq), offline=True))
            assert reply[0] == 3, reply
        # a duplicate event (same seqNo, new message id) changes nothing
        assert (await rpc(ws, tx_frame("e1-again", "TX-1", 1, "Updated", t0 + timedelta(minutes=10))))[0] == 3
    [tx] = platform.store.transactions(reg.charger.id)
    assert tx["started_at"] == t0
    assert tx["ended_at"] == t0 + timedelta(minutes=30)
    assert tx["meter_start_wh"] == 0.0
    assert tx["meter_stop_wh"] == 3000.0
    assert tx["events_seen"] == 3
    assert tx["max_seq_no"] == 3
    assert tx["seq_gaps"] == 1
    events = platform.store.transaction_events(reg.charger.id, "TX-1")
    assert [e["seq_no"] for e in events] == [0, 1, 3]
    assert all(e["offline"] for e in events)
    readings = platform.store.telemetry(reg.charger.id, measurand="Energy.Active.Import.Register")
    assert [r.value for r in readings] == [0.0, 1000.0, 3000.0]


@pytest.mark.parametrize("protocol", ["2.0.1", "2.1"])
async def test_offline_queue_is_flushed_on_reconnect(platform: Platform, protocol: str) -> None:
    reg = platform.register(protocol)
    sim = platform.sim(reg, protocol)
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        await sim.plug_in(ev_battery(30.0), 40.0, utc_now() + timedelta(hours=5))
        await sim.disconnect()
        for _ in range(3):
            sim.wallbox.advance(utc_now() + timedelta(seconds=1))
            await sim.meter_values()  # queued: the platform is unreachable
        assert len(sim.outbox) == 3
        await sim.reconnect()
        assert not sim.outbox
        tx_id = sim.tx_id
        assert tx_id is not None
        events = platform.store.transaction_events(reg.charger.id, tx_id)
        assert [e["seq_no"] for e in events] == [0, 1, 2, 3]
        assert [e["offline"] for e in events] == [False, True, True, True]
        [tx] = platform.store.transactions(reg.charger.id)
        assert tx["seq_gaps"] == 0
    finally:
        await sim.stop()


async def test_v16_transactions_and_meter_values(platform: Platform) -> None:
    reg = platform.register("1.6")
    sim = platform.sim(reg, "1.6")
    await sim.start()
    try:
        await settle(platform, reg.charger.id)
        await sim.plug_in(ev_battery(30.0), 40.0, utc_now() + timedelta(hours=5))
        sim.wallbox.advance(utc_now() + timedelta(seconds=60))
        await sim.meter_values()
        await sim.unplug()
        await wait_for(lambda: bool(platform.store.transactions(reg.charger.id)))
        [tx] = platform.store.transactions(reg.charger.id)
        assert tx["started_at"] is not None
        assert tx["ended_at"] is not None
        assert tx["stop_reason"] == "EVDisconnected"
        assert tx["meter_stop_wh"] > tx["meter_start_wh"]
        readings = platform.store.telemetry(reg.charger.id, measurand="Energy.Active.Import.Register")
        assert readings
        assert readings[0].transaction_id == tx["transaction_id"]
    finally:
        await sim.stop()
