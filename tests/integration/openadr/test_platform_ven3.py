"""The platform's OpenADR 3 VEN: chosen by V2G_OPENADR_VERSION, started and stopped by the runtime."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from tests.integration.openadr.test_ven import free_port, wait_until
from tests.integration.openadr.test_ven3 import DOUBLE, Vtn
from v2g.adapters.db.demo_seed import seed_demo
from v2g.adapters.openadr.ven3 import OpenAdr3Ven
from v2g.bootstrap import bootstrap
from v2g.config import Settings
from v2g.runtime import Runtime
from v2g.units import floor_quarter, utc_now

AREA = "GA-SE3-UPPSALA-01"  # 800 kW import limit on record


@pytest.mark.timeout(60)
async def test_the_runtime_runs_the_openadr3_ven_chosen_by_the_settings(engine: Engine, tmp_path: Path) -> None:
    seed_demo(engine)
    port = free_port()
    vtn = Vtn(
        [sys.executable, str(DOUBLE), str(port), str(tmp_path / "vtn.json")],
        "",
        ("bl", "bl-secret"),
        ("ven", "ven-secret"),
        port,
    )
    await vtn.start()
    try:
        program = await vtn.create("programs", {"objectType": "PROGRAM", "programName": "dso"})
        start = floor_quarter(utc_now())
        await vtn.create(
            "events",
            {
                "objectType": "EVENT",
                "programID": program["id"],
                "targets": [{"type": "GROUP", "values": [AREA]}],
                "intervalPeriod": {"start": start.isoformat(), "duration": "PT2H"},
                "intervals": [{"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [250]}]}],
            },
        )
        settings = Settings(
            database_url=engine.url.render_as_string(hide_password=False),
            openadr_vtn_url=vtn.url,
            openadr_version="3.0",
            openadr_ven_name="platform-ven",
            openadr3_client_id="ven",
            openadr3_client_secret="ven-secret",
            openadr3_poll_s=0.2,
        )
        platform = bootstrap(settings, engine=engine)
        assert isinstance(platform.ven, OpenAdr3Ven)
        assert platform.ven.config.served_areas  # every area on record
        runtime = Runtime(platform, None)
        await runtime.start_ven()
        try:
            await wait_until(lambda: platform.signals.import_limits_kw(AREA, 800.0, start, 1) == (250.0,))
            assert platform.cycle.changed.get(f"area:{AREA}") == "new grid signal"
        finally:
            await runtime.stop()
        assert platform.ven.state.connected is False
    finally:
        await vtn.stop()
        await vtn.bl.aclose()


def test_the_version_setting_names_what_it_takes() -> None:
    with pytest.raises(ValidationError, match="openadr_version"):
        Settings(openadr_version="3.1")
