"""The platform's IEC 61850 server: configured by settings, started by the runtime, its limits audited and planned."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from tests.integration.iec61850.test_control_centre import mms
from v2g.adapters.db.demo_seed import seed_demo
from v2g.adapters.db.tables.journey import audit_log
from v2g.bootstrap import bootstrap
from v2g.config import Settings
from v2g.runtime import Runtime
from v2g.units import floor_quarter, utc_now

AREA = "GA-SE3-UPPSALA-01"  # 800 kW import limit on record
OTHER = "GA-SE4-MALMO-03"


@pytest.mark.timeout(60)
async def test_a_limit_written_to_the_platforms_ied_is_audited_and_marks_the_area(engine: Engine) -> None:
    seed_demo(engine)
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        iec61850_enabled=True,
        iec61850_port=0,
        iec61850_areas=f"{AREA}, {OTHER}",
    )
    platform = bootstrap(settings, engine=engine)
    assert platform.iec61850 is not None
    runtime = Runtime(platform, None)
    try:
        port = await runtime.start_iec61850()
        assert port
        answers = await mms(
            port,
            [
                ["read", "string", "V2GAggGA_SE3_UPPSALA_01/LLN0.NamPlt.d", "DC"],
                ["read", "float", "V2GAggGA_SE3_UPPSALA_01/DRCT1.WMaxImp.setMag.f", "CF"],
                ["read", "float", "V2GAggGA_SE4_MALMO_03/DRCT2.WMaxImp.setMag.f", "CF"],
                ["write", "float", "V2GAggGA_SE3_UPPSALA_01/DRCC1.WImpLimSpt.setMag", "SP", 250_000.0],
                ["read", "float", "V2GAggGA_SE3_UPPSALA_01/DRCC1.WImpLim.mag.f", "MX"],
            ],
        )
    finally:
        await runtime.stop()
    assert answers == [AREA, 800_000.0, 600_000.0, "ok", 250_000.0]
    start = floor_quarter(utc_now())
    assert platform.signals.import_limits_kw(AREA, 800.0, start, 2) == (250.0, 250.0)
    assert platform.signals.import_limits_kw(OTHER, 600.0, start, 1) == (600.0,)
    assert platform.cycle.changed.get(f"area:{AREA}") == "new grid signal"
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.entity_id, audit_log.c.after).where(
                audit_log.c.action == "grid_limit.set"
            )
        ).all()
    assert [(r.action, r.entity_id, r.after["import_limit_kw"], r.after["source"]) for r in rows] == [
        ("grid_limit.set", AREA, 250.0, "iec61850")
    ]
