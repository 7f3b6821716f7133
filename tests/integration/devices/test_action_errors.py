"""DataTransfer and CALLs the CSMS does not handle get the answers OCPP-J prescribes."""

from __future__ import annotations

import pytest

from tests.integration.devices.conftest import Platform
from tests.integration.devices.frames import VERSIONS
from tests.integration.devices.test_exactly_once import raw_client, rpc


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
