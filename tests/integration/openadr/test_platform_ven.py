"""The platform's OpenADR VEN: configured by settings, started by the runtime, its limits reach the planner."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from openleadr import OpenADRServer
from sqlalchemy import Engine

from tests.integration.openadr.test_ven import free_port, wait_until
from v2g.adapters.db.demo_seed import seed_demo
from v2g.bootstrap import bootstrap
from v2g.config import Settings
from v2g.runtime import Runtime
from v2g.units import QUARTER, floor_quarter, utc_now

pytestmark = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::DeprecationWarning", "ignore:It is recommended to use web.AppKey"
)
AREA = "GA-SE3-UPPSALA-01"


@pytest.mark.slow
async def test_a_dso_limit_from_the_vtn_becomes_a_planner_input(engine: Engine) -> None:
    seed_demo(engine)
    port = free_port()
    vtn = OpenADRServer(
        vtn_id="dso-vtn", http_port=port, http_host="127.0.0.1", requested_poll_freq=timedelta(seconds=1)
    )

    async def on_create_party_registration(info: dict[str, Any]) -> tuple[str, str]:
        return "ven-aggregator", "reg-1"

    async def on_register_report(*_: Any) -> Any:
        async def on_update(data: list[Any]) -> None:
            return None

        return on_update, timedelta(seconds=10)

    vtn.add_handler("on_create_party_registration", on_create_party_registration)
    vtn.add_handler("on_register_report", on_register_report)
    await vtn.run()
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        openadr_vtn_url=f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b",
        openadr_grid_area_id=AREA,
    )
    platform = bootstrap(settings, engine=engine)
    assert platform.ven is not None
    runtime = Runtime(platform, None)
    opted: dict[str, str] = {}
    try:
        await runtime.start_ven()
        start = floor_quarter(utc_now()) + 2 * QUARTER
        vtn.add_event(
            "ven-aggregator",
            "LOAD_DISPATCH",
            "setpoint",
            [{"dtstart": start, "duration": timedelta(hours=1), "signal_payload": 500.0}],
            callback=lambda ven_id, event_id, opt_type: opted.__setitem__("limit", opt_type),
        )
        await wait_until(lambda: "limit" in opted)
    finally:
        await runtime.stop()
        await vtn.stop()
    assert opted == {"limit": "optIn"}
    limits = platform.signals.import_limits_kw(AREA, 800.0, start - QUARTER, 6)
    assert limits[0] == 800.0  # before the event: the area's own limit
    assert limits[1:5] == (500.0,) * 4  # the DSO's limit for the event's hour
    assert platform.cycle.changed.get(f"area:{AREA}") == "new grid signal"  # the next re-plan check plans again
