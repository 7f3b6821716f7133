"""DataTransfer and CALLs the CSMS does not handle get the answers OCPP-J prescribes."""

from __future__ import annotations

import json

import pytest

from tests.integration.devices.conftest import Platform
from tests.integration.devices.frames import VERSIONS, meter
from tests.integration.devices.test_exactly_once import raw_client, rpc
from v2g.units import utc_now


@pytest.mark.parametrize("version", VERSIONS)
async def test_data_transfer_with_unknown_vendor(platform: Platform, version: str) -> None:
    reg = platform.register(version)
    async with raw_client(platform, version, reg.charger.id, reg.password) as ws:
        frame = [2, "dt-1", "DataTransfer", {"vendorId": "com.example.unknown", "messageId": "x", "data": "42"}]
        assert await rpc(ws, frame) == [3, "dt-1", {"status": "UnknownVendorId"}]
        reply = await rpc(ws, [2, "dt-2", "DataTransfer", {"vendorId": "v"}])
        assert reply == [3, "dt-2", {"status": "UnknownVendorId"}]


@pytest.mark.parametrize("version", VERSIONS)
async def test_unknown_action_is_not_implemented_known_action_not_supported(platform: Platform, version: str) -> None:
    reg = platform.register(version)
    async with raw_client(platform, version, reg.charger.id, reg.password) as ws:
        reply = await rpc(ws, [2, "u-1", "NoSuchAction", {}])
        assert reply[:3] == [4, "u-1", "NotImplemented"]
        # Reset is an action of every version, but one the CSMS sends, never answers
        reply = await rpc(ws, [2, "u-2", "Reset", {"type": "Hard"}])
        assert reply[:3] == [4, "u-2", "NotSupported"]
        assert (await rpc(ws, [2, "u-3", "Heartbeat", {}]))[:2] == [3, "u-3"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_unreadable_values_are_the_chargers_mistake(platform: Platform, version: str) -> None:
    """Found by fuzzing: these were InternalError (or stored NaN); the version's codes name the fault."""
    reg = platform.register(version)
    at = utc_now().replace(microsecond=0)
    fmt = "FormationViolation" if version == "1.6" else "FormatViolation"
    async with raw_client(platform, version, reg.charger.id, reg.password) as ws:
        naive = meter("m-1", version, at, 5.0)
        naive[3]["meterValue"][0]["timestamp"] = "2026-12-01T10:00:00"  # no offset
        assert (await rpc(ws, naive))[:3] == [4, "m-1", fmt]
        nan = json.dumps(meter("m-2", version, at, 5.0)).replace('"value": 5.0', '"value": NaN')
        nan = nan.replace('"value": "5.0"', '"value": "NaN"')
        assert (await rpc(ws, nan))[:3] == [4, "m-2", "PropertyConstraintViolation"]
        huge = json.dumps(meter("m-3", version, at, 5.0)).replace('"value": 5.0', '"value": 1e999')
        huge = huge.replace('"value": "5.0"', '"value": "1e999"')
        assert (await rpc(ws, huge))[:3] == [4, "m-3", "PropertyConstraintViolation"]
        reply = await rpc(ws, [2, "m-4", "Heartbeat", {"unexpected": 1}])  # schema violation
        assert reply[:3] == [4, "m-4", fmt]
        assert await rpc(ws, meter("m-5", version, at, 6.0)) == [3, "m-5", {}]  # the connection is intact
    assert [s.value for s in platform.store.telemetry(reg.charger.id)] == [6.0]
