"""The VEN against a real ``openleadr`` VTN on loopback: registration, price and limit events, reports."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from openleadr import OpenADRServer

from v2g.adapters.openadr.ven import OpenAdrVen, VenConfig
from v2g.services.planning.grid_signals import LimitSignal, OptRules, PriceSignal
from v2g.units import utc_now

# openleadr 0.5.36 on aiohttp 3.14 warns about plain-string app keys (cosmetic, inside the library)
pytestmark = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::DeprecationWarning", "ignore:It is recommended to use web.AppKey"
)


class Sink:
    def __init__(self) -> None:
        self.price_signals: list[PriceSignal] = []
        self.limit_signals: list[LimitSignal] = []

    def prices(self, signals: Sequence[PriceSignal]) -> None:
        self.price_signals.extend(signals)

    def limits(self, signals: Sequence[LimitSignal]) -> None:
        self.limit_signals.extend(signals)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(predicate: Any, limit_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_ven_takes_prices_and_limits_and_reports() -> None:
    port = free_port()
    vtn = OpenADRServer(
        vtn_id="dso-vtn", http_port=port, http_host="127.0.0.1", requested_poll_freq=timedelta(seconds=1)
    )
    opted: dict[str, str] = {}
    reports: list[Any] = []

    async def on_create_party_registration(info: dict[str, Any]) -> tuple[str, str]:
        return "ven-aggregator", "reg-1"

    async def on_register_report(
        ven_id: str,
        resource_id: str,
        measurement: str,
        unit: str,
        scale: str,
        min_sampling_interval: timedelta,
        max_sampling_interval: timedelta,
    ) -> Any:
        async def on_update(data: list[tuple[Any, float]]) -> None:
            reports.extend(data)

        return on_update, min_sampling_interval

    vtn.add_handler("on_create_party_registration", on_create_party_registration)
    vtn.add_handler("on_register_report", on_register_report)
    await vtn.run()
    sink = Sink()
    ven = OpenAdrVen(
        VenConfig("aggregator", f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b", "GA-1", timedelta(seconds=1)),
        OptRules({"GA-1": 800.0}, min_limit_kw=300.0),
        sink,
        fleet_power_kw=lambda: -42.0,
    )
    try:
        await ven.start()
        start = utc_now() + timedelta(minutes=5)
        vtn.add_event(
            "ven-aggregator",
            "ELECTRICITY_PRICE",
            "price",
            [
                {"dtstart": start, "duration": timedelta(hours=1), "signal_payload": 0.12},
                {"dtstart": start + timedelta(hours=1), "duration": timedelta(hours=1), "signal_payload": 0.48},
            ],
            callback=lambda ven_id, event_id, opt_type: opted.__setitem__("price", opt_type),
        )
        vtn.add_event(
            "ven-aggregator",
            "LOAD_DISPATCH",
            "setpoint",
            [{"dtstart": start, "duration": timedelta(hours=2), "signal_payload": 400.0}],
            callback=lambda ven_id, event_id, opt_type: opted.__setitem__("limit_ok", opt_type),
        )
        vtn.add_event(
            "ven-aggregator",
            "LOAD_DISPATCH",
            "setpoint",
            [{"dtstart": start, "duration": timedelta(hours=1), "signal_payload": 100.0}],
            callback=lambda ven_id, event_id, opt_type: opted.__setitem__("limit_too_tight", opt_type),
        )
        await wait_until(lambda: len(opted) == 3 and len(reports) >= 1)
    finally:
        await ven.stop()
        await vtn.stop()
    assert opted == {"price": "optIn", "limit_ok": "optIn", "limit_too_tight": "optOut"}
    assert [round(p.price_eur_per_mwh, 3) for p in sink.price_signals] == [120.0, 480.0]
    assert [(x.grid_area_id, x.import_limit_kw) for x in sink.limit_signals] == [("GA-1", 400.0)]
    assert any("below the fleet's minimum" in d.reason for _, d in ven.decisions)
    assert reports[0][1] == pytest.approx(-42000.0)
