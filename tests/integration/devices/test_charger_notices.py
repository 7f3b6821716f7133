"""What 2.x chargers report on their own is accepted and kept; a local charging limit reaches the planner."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.devices.conftest import SITE_ID, Platform
from tests.integration.devices.test_exactly_once import iso, raw_client, rpc
from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.operations_repo import SqlFleetState
from v2g.fleet.model import Vehicle
from v2g.units import utc_now

V2X = ("2.0.1", "2.1")


def notices(at: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(action, payload, expected reply) of each report a charger sends without being asked."""
    event = {
        "eventId": 1,
        "timestamp": at,
        "trigger": "Delta",
        "actualValue": "Faulted",
        "eventNotificationType": "HardWiredNotification",
        "component": {"name": "Connector"},
        "variable": {"name": "AvailabilityState"},
    }
    report = {
        "component": {"name": "V2XChargingCtrlr"},
        "variable": {"name": "Enabled"},
        "variableAttribute": [{"value": "true"}],
    }
    schedule = {"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400.0}]}
    return [
        ("SecurityEventNotification", {"type": "TamperDetectionActivated", "timestamp": at, "techInfo": "lid"}, {}),
        ("NotifyEvent", {"generatedAt": at, "seqNo": 0, "eventData": [event]}, {}),
        ("NotifyReport", {"requestId": 4, "generatedAt": at, "seqNo": 0, "reportData": [report]}, {}),
        ("FirmwareStatusNotification", {"status": "Installed", "requestId": 2}, {}),
        ("LogStatusNotification", {"status": "Uploaded", "requestId": 3}, {}),
        (
            "NotifyEVChargingSchedule",
            {"timeBase": at, "evseId": 1, "chargingSchedule": schedule},
            {"status": "Accepted"},
        ),
    ]


@pytest.mark.parametrize("version", V2X)
async def test_charger_reports_are_accepted_and_stored(platform: Platform, version: str) -> None:
    reg = platform.register(version)
    at = iso(utc_now().replace(microsecond=0))
    expected = notices(at)
    async with raw_client(platform, version, reg.charger.id, reg.password) as ws:
        for i, (action, payload, answer) in enumerate(expected):
            assert await rpc(ws, [2, f"n-{i}", action, payload]) == [3, f"n-{i}", answer], action
        reply = await rpc(ws, [2, "csr-1", "SignCertificate", {"csr": "-----BEGIN CERTIFICATE REQUEST-----"}])
        assert reply[:2] == [3, "csr-1"]
        assert reply[2]["status"] == "Rejected"  # type: ignore[index]
        assert reply[2]["statusInfo"]["reasonCode"] == "NoCAConfigured"  # type: ignore[index]
    stored = platform.store.notices(reg.charger.id)
    assert [n["kind"] for n in stored] == [action for action, _, _ in expected] + ["SignCertificate"]
    security = stored[0]
    assert security["summary"] == "TamperDetectionActivated"
    assert security["payload"]["tech_info"] == "lid"
    assert "Connector.AvailabilityState=Faulted" in stored[1]["summary"]


@pytest.mark.parametrize("version", V2X)
async def test_local_charging_limit_reaches_the_planner(platform: Platform, version: str) -> None:
    reg = platform.register(version)
    cid = reg.charger.id
    with platform.engine.begin() as conn:
        SqlFleetRepository(conn).add_vehicle(Vehicle("ev-lim", "cust-t", "M", "X", 60.0, 11.0, 11.0, site_id=SITE_ID))
    platform.store.set_ev_connected(cid, True)
    limit = {
        "chargingLimit": {"chargingLimitSource": "EMS", "isGridCritical": False},
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0, "numberPhases": 1}],
            }
        ],
        "evseId": 1,
    }
    async with raw_client(platform, version, cid, reg.password) as ws:
        assert await rpc(ws, [2, "l-1", "NotifyChargingLimit", limit]) == [3, "l-1", {}]
    state = platform.store.state(cid)
    assert state["charging_limit_kw"] == pytest.approx(3.68)
    assert state["charging_limit_source"] == "EMS"
    [ev] = SqlFleetState(platform.engine).plugged_in()
    assert ev.charging_limit_kw == pytest.approx(3.68)
    assert ev.max_charge_kw == pytest.approx(3.68)  # the planner plans within the charger's own limit

    async with raw_client(platform, version, cid, reg.password) as ws:
        cleared = {"chargingLimitSource": "EMS", "evseId": 1}
        assert await rpc(ws, [2, "l-2", "ClearedChargingLimit", cleared]) == [3, "l-2", {}]
    assert platform.store.state(cid)["charging_limit_kw"] is None
    [ev] = SqlFleetState(platform.engine).plugged_in()
    assert ev.max_charge_kw == pytest.approx(11.0)
    kinds = [n["kind"] for n in platform.store.notices(cid)]
    assert kinds == ["NotifyChargingLimit", "ClearedChargingLimit"]
