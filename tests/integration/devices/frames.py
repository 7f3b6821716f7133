"""Raw OCPP-J frames per version, for tests that talk to the CSMS without the simulator."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.integration.devices.test_exactly_once import iso

VERSIONS = ("1.6", "2.0.1", "2.1")


def boot(uid: str, version: str) -> list[Any]:
    if version == "1.6":
        return [2, uid, "BootNotification", {"chargePointVendor": "V2G-Sim", "chargePointModel": "BiDi-11"}]
    payload = {"chargingStation": {"vendorName": "V2G-Sim", "model": "BiDi-11"}, "reason": "PowerUp"}
    return [2, uid, "BootNotification", payload]


def heartbeat(uid: str) -> list[Any]:
    return [2, uid, "Heartbeat", {}]


def status(uid: str, version: str, at: datetime) -> list[Any]:
    if version == "1.6":
        return [2, uid, "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}]
    payload = {"timestamp": iso(at), "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    return [2, uid, "StatusNotification", payload]


def meter(uid: str, version: str, at: datetime, wh: float) -> list[Any]:
    if version == "1.6":
        value: dict[str, Any] = {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        readings = [{"timestamp": iso(at), "sampledValue": [value]}]
        return [2, uid, "MeterValues", {"connectorId": 1, "meterValue": readings}]
    value = {"value": wh, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}}
    return [2, uid, "MeterValues", {"evseId": 1, "meterValue": [{"timestamp": iso(at), "sampledValue": [value]}]}]
