"""The aggregator's IEEE 2030.5 client against a real utility server (envoy) on loopback, with mutual TLS.

The utility registers the aggregator's certificate and creates a DER control with an import and an
export limit for the EndDevice the client registered for its grid area; the client discovers it, the
next plan of the area's EVs (planning cycle on twin households) stays under the import limit, the
control is audited, and the client's responses, DER status and meter readings reach the server. With
the server stopped the reports queue (in the database) and arrive after its restart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select

from tests.integration.iec61850.test_control_centre import _area_kw
from tests.integration.ieee2030_5.peer import REQUIRE, EnvoyPeer, missing
from tests.integration.runtime.test_cycle_on_twin import MemoryPlans, needs_session
from v2g.adapters.db.grid_repo import SqlDerReportQueue
from v2g.adapters.db.preferences_repo import SqlPreferencesAudit
from v2g.adapters.db.tables.journey import audit_log
from v2g.adapters.ieee2030_5.client import Ieee2030Client, Ieee2030Config
from v2g.adapters.ieee2030_5.transport import TlsFiles
from v2g.fleet.model import ChargerProtocol, PriceArea
from v2g.planning.model import Product
from v2g.planning.rules import load_rules
from v2g.services.planning.cycle import CycleConfig, PlanningCycle
from v2g.services.planning.der_reports import area_facts
from v2g.services.planning.dso_interface import DsoLimitDesk
from v2g.services.planning.ports import AreaLimits
from v2g.services.planning.signal_book import GridSignalBook
from v2g.sim.clock import SimulatedClock
from v2g.sim.operating_twin import OperatingTwin, PlugSession, TwinEv
from v2g.units import QUARTER, floor_quarter

AREA = "GA-SE3-UPPSALA-01"
STATIC = {AREA: (100.0, 50.0)}  # import, export limit on record (kW)
START = floor_quarter(datetime.now(UTC))


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[EnvoyPeer]:
    """A fresh utility server (its own database) for each test."""
    why = missing()
    if why is not None:
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{REQUIRE}=1 but {why}")
        pytest.skip(why)
    p = EnvoyPeer(tmp_path)
    p.create()
    try:
        p.start()
        yield p
    finally:
        p.close()


class CheapNowPrices:
    def day_ahead_eur_per_mwh(self, area: PriceArea, start_at: datetime, n_quarters: int) -> tuple[float, ...]:
        return tuple(10.0 if start_at + k * QUARTER < START + timedelta(hours=4) else 200.0 for k in range(n_quarters))

    def reserve_eur_per_mw_h(self, product: Product, start_at: datetime, n_hours: int) -> tuple[float, ...]:
        return (0.0,) * n_hours


def _setup(peer: EnvoyPeer, engine: Engine) -> tuple[PlanningCycle, MemoryPlans, Ieee2030Client, SimulatedClock]:
    clock = SimulatedClock(datetime.now(UTC))
    evs = [
        TwinEv(f"ev-{i}", f"c-{i}", f"CP-{i}", f"s-{i}", AREA, PriceArea.SE3, ChargerProtocol.OCPP21, 60.0, 11.0, 10.0)
        for i in range(3)
    ]
    sessions = {ev.ev_id: [PlugSession(START, START + timedelta(hours=18), 18.0, 54.0)] for ev in evs}
    twin = OperatingTwin(evs, sessions, START, [AreaLimits(AREA, PriceArea.SE3, *STATIC[AREA])])
    twin.advance_to(clock.now())
    plans = MemoryPlans()
    signals = GridSignalBook()
    cycle = PlanningCycle(
        fleet=twin,
        prices=CheapNowPrices(),
        signals=signals,
        plans=plans,
        gateway=twin.gateway,
        clock=clock,
        rules=load_rules(),
        build_session=needs_session,
        config=CycleConfig(),
    )
    audit = SqlPreferencesAudit(engine)
    desk = DsoLimitDesk(
        signals,
        {AREA: STATIC[AREA][0]},
        clock.now,
        audit,
        source="ieee2030_5",
        static_export_limit_kw={AREA: STATIC[AREA][1]},
    )
    cert, key = peer.client_files
    config = Ieee2030Config(peer.url, TlsFiles(cert, key, peer.ca_file), (AREA,))
    measured = {"CP-0": 7.0, "CP-1": 7.0, "CP-2": 7.0}

    def facts() -> dict[str, Any]:
        return area_facts([AREA], twin.plugged_in(), measured, cycle.latest_plan(), clock.now())

    client = Ieee2030Client(config, desk, SqlDerReportQueue(engine), facts, clock.now, audit)
    return cycle, plans, client, clock


def _readings(peer: EnvoyPeer, site_id: int) -> list[dict[str, Any]]:
    period = f"{(START - timedelta(days=1)).isoformat()}/{(START + timedelta(days=1)).isoformat()}"
    with peer.admin() as admin:
        got = admin.get(f"/site_readings/{site_id}/csip_aus_unit/1/period/{period}")
    assert got.status_code == 200, got.text
    readings: list[dict[str, Any]] = got.json()["readings"]
    return readings


@pytest.mark.timeout(300)
async def test_a_der_control_bounds_the_next_plan_and_reports_reach_the_server_even_after_an_outage(
    peer: EnvoyPeer, engine: Engine
) -> None:
    cycle, plans, client, clock = _setup(peer, engine)
    admin = peer.admin()
    client_stack = [admin]
    # the utility registers the aggregator's certificate (envoy keys it by the lower-case LFDI)
    agg = admin.post("/aggregator", json={"name": "v2g aggregator"})
    assert agg.status_code == 201, agg.text
    agg_id = agg.headers["location"].rsplit("/", 1)[1]
    expiry = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    got = admin.post(
        f"/aggregator/{agg_id}/certificate", json=[{"lfdi": client.identity.lfdi.lower(), "expiry": expiry}]
    )
    assert got.status_code == 201, got.text
    try:
        await cycle.run(START)
        first = plans.saved[-1]
        assert max(_area_kw(first, k) for k in range(8)) > 5.0  # unconstrained, it charges hard now
        # registration and discovery: one EndDevice for the area, with the identifiers of IEEE 2030.5
        assert await client.exchange(), client.last_error
        sites = admin.get("/site").json()["sites"]
        assert [(s["lfdi"], s["sfdi"]) for s in sites] == [
            (client.areas[AREA].device.lfdi, client.areas[AREA].device.sfdi)
        ]
        site_id = sites[0]["site_id"]
        # the utility's DER program and a control: import <= 5 kW and export <= 0 for four hours
        group = admin.post("/site_control_group", json={"description": "DSO envelope", "primacy": 2})
        assert group.status_code == 201, group.text
        group_id = group.headers["location"].rsplit("/", 1)[1]
        control = {
            "site_id": site_id,
            "calculation_log_id": None,
            "duration_seconds": 4 * 3600,
            "start_time": (clock.now() - timedelta(minutes=1)).isoformat(),
            "import_limit_watts": "5000",
            "export_limit_watts": "0",
        }
        got = admin.post(f"/site_control_group/{group_id}/controls", json=[control])
        assert got.status_code == 201, got.text
        client.discovered = False  # a new program: the next round walks the FunctionSetAssignments again
        assert await client.exchange(), client.last_error
        assert cycle.changed.get(f"area:{AREA}") == "new grid signal"
        start = floor_quarter(clock.now())
        assert cycle.signals.import_limits_kw(AREA, 100.0, start, 2) == (5.0, 5.0)
        assert cycle.signals.export_limits_kw(AREA, 50.0, start, 2) == (0.0, 0.0)
        # the next plan keeps the area under 5 kW and discharges nothing while the control holds
        clock.advance_to(clock.now() + timedelta(minutes=1))
        assert await cycle.check_changes(clock.now()) is not None
        second = plans.saved[-1]
        assert second is not first
        n = int(timedelta(hours=3, minutes=30) / QUARTER)
        area_kw = np.array([_area_kw(second, k) for k in range(n)])
        assert area_kw.max() <= 5.0 + 1e-6, area_kw
        assert area_kw.min() >= -1e-6, area_kw
        # audited: the control as received and the limit window it became
        with engine.connect() as conn:
            rows = conn.execute(
                select(audit_log.c.action, audit_log.c.entity_id, audit_log.c.after).order_by(audit_log.c.id)
            ).all()
        mrid = next(iter(client.areas[AREA].seen))
        assert [(r.action, r.entity_id, r.after["control"]) for r in rows] == [
            ("grid_control.received", AREA, mrid),
            ("grid_limit.set", AREA, mrid),
        ]
        assert (rows[1].after["import_limit_kw"], rows[1].after["export_limit_kw"]) == (5.0, 0.0)
        # the responses CSIP asks for (received, started), the DER status and a reading reached the server
        edev = client.areas[AREA].edev_href
        assert edev is not None
        reply_to = client.areas[AREA].seen[mrid].reply_to
        assert reply_to is not None
        with peer.client() as c:
            responses = c.get(reply_to + "?s=0&l=10").text
            status = c.get(f"{edev}/der/1/ders")
        assert sorted(int(s) for s in re.findall(r"<status>(\d+)</status>", responses)) == [1, 2], responses
        client.make_reports()
        assert await client.exchange(), client.last_error
        with peer.client() as c:
            status = c.get(f"{edev}/der/1/ders")
        assert status.status_code == 200, status.text
        assert "<genConnectStatus>" in status.text, status.text
        assert [r["value"] for r in _readings(peer, site_id)] == ["21000"]  # 3 x 7 kW measured
        # the server goes away: reports queue in the database, the client backs off, nothing is lost
        peer.stop_server()
        for _ in range(2):
            clock.advance_to(clock.now() + timedelta(minutes=1))
            client.make_reports()
            assert not await client.exchange()
        assert client.failures == 2
        assert client.backoff() == timedelta(seconds=4)
        assert SqlDerReportQueue(engine).count() == 4  # two DER statuses, two readings
        assert "ConnectError" in (client.last_error or ""), client.last_error
        peer.restart_server()
        assert await client.exchange(), client.last_error
        assert SqlDerReportQueue(engine).count() == 0
        assert len(_readings(peer, site_id)) == 3
    finally:
        await client.stop()
        for c in client_stack:
            c.close()
