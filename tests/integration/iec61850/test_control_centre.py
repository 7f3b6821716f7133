"""The control centre over IEC 61850: an independent MMS client reads the area aggregate and writes an import limit.

The server is the platform's (``iec61850``, on loopback); the client is libiec61850 (pyiec61850-ng) in its
own process. The planning cycle runs on twin households, and its next plan keeps the area under the
DSO's limit.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.runtime.test_cycle_on_twin import MemoryPlans, needs_session
from v2g.adapters.iec61850.server import DerAggregateServer, Iec61850Config, ld_inst
from v2g.fleet.model import ChargerProtocol, PriceArea
from v2g.planning.model import Product
from v2g.planning.rules import load_rules
from v2g.services.actors.ports import AuditEntry
from v2g.services.planning.cycle import CycleConfig, PlanningCycle
from v2g.services.planning.dso_interface import AreaAggregate, DsoLimitDesk, area_aggregates
from v2g.services.planning.ports import AreaLimits
from v2g.services.planning.signal_book import GridSignalBook
from v2g.sim.clock import SimulatedClock
from v2g.sim.operating_twin import OperatingTwin, PlugSession, TwinEv
from v2g.units import QUARTER

START = datetime(2025, 11, 11, 12, 0, tzinfo=UTC)
AREA = "GA-SE3-UPPSALA-01"
OTHER = "GA-SE3-UPPSALA-02"
STATIC_KW = {AREA: 100.0, OTHER: 80.0}
CLIENT = Path(__file__).with_name("mms_client.py")
LD = f"V2GAgg{ld_inst(AREA)}"


class CheapNowPrices:
    """Cheap for the first four hours, dear after: an unconstrained plan charges at once."""

    def day_ahead_eur_per_mwh(self, area: PriceArea, start_at: datetime, n_quarters: int) -> tuple[float, ...]:
        return tuple(10.0 if start_at + k * QUARTER < START + timedelta(hours=4) else 200.0 for k in range(n_quarters))

    def reserve_eur_per_mw_h(self, product: Product, start_at: datetime, n_hours: int) -> tuple[float, ...]:
        return (0.0,) * n_hours


class MemoryAudit:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def audit(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


async def mms(port: int, ops: list[list[Any]]) -> list[Any]:
    """Run the independent client in its own process; its answers, one per operation."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CLIENT),
        str(port),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(json.dumps(ops).encode()), timeout=30)
    assert proc.returncode == 0, (out, err)
    answers: list[Any] = json.loads(out)
    return answers


def _twin() -> OperatingTwin:
    evs = [
        TwinEv(f"ev-{i}", f"c-{i}", f"CP-{i}", f"s-{i}", AREA, PriceArea.SE3, ChargerProtocol.OCPP21, 60.0, 11.0, 10.0)
        for i in range(3)
    ]
    sessions = {ev.ev_id: [PlugSession(START, START + timedelta(hours=18), 18.0, 54.0)] for ev in evs}
    areas = [AreaLimits(a, PriceArea.SE3, kw, 50.0) for a, kw in STATIC_KW.items()]
    twin = OperatingTwin(evs, sessions, START, areas)
    twin.advance_to(START + timedelta(seconds=1))
    return twin


def _area_kw(plan: dict[str, Any], k: int) -> float:
    return float(sum(e["p_kw"][k] or 0.0 for e in plan["plan"]["evs"]))


def _setup() -> tuple[OperatingTwin, PlanningCycle, MemoryPlans, MemoryAudit, DerAggregateServer, SimulatedClock]:
    clock = SimulatedClock(START + timedelta(seconds=1))
    twin = _twin()
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
    audit = MemoryAudit()
    desk = DsoLimitDesk(signals, STATIC_KW, clock.now, audit, timedelta(hours=4), source="iec61850")

    def aggregates() -> dict[str, AreaAggregate]:
        return area_aggregates(STATIC_KW, twin.plugged_in(), cycle.latest_plan(), signals, clock.now())

    config = Iec61850Config(port=0, areas=(AREA, OTHER), update_interval=timedelta(hours=1))
    return twin, cycle, plans, audit, DerAggregateServer(config, desk, aggregates), clock


@pytest.mark.timeout(60)
async def test_a_dso_import_limit_written_over_mms_bounds_the_next_plan_of_the_area() -> None:
    _twin, cycle, plans, audit, server, clock = _setup()
    port = await server.start()
    try:
        await cycle.run(START)
        first = plans.saved[-1]
        assert max(_area_kw(first, k) for k in range(16)) > 5.0  # unconstrained, it charges hard now
        server.refresh()
        planned_w = _area_kw(first, 0) * 1000.0
        before = await mms(
            port,
            [
                ["ld"],
                ["read", "string", f"{LD}/LLN0.NamPlt.d", "DC"],
                ["read", "float", f"{LD}/MMXU1.TotW.mag.f", "MX"],
                ["read", "float", f"{LD}/DRCT1.WAvlDn.mag.f", "MX"],
                ["read", "float", f"{LD}/DRCT1.WAvlUp.mag.f", "MX"],
                ["read", "float", f"{LD}/DRCC1.WImpLim.mag.f", "MX"],
                ["read", "int", f"{LD}/DRCS1.EvCnt.stVal", "ST"],
                ["read", "bool", f"{LD}/DRCS1.LimAct.stVal", "ST"],
                ["write", "float", f"{LD}/DRCC1.WImpLimSpt.setMag", "SP", 5000.0],
                ["read", "float", f"{LD}/DRCC1.WImpLim.mag.f", "MX"],
                ["read", "bool", f"{LD}/DRCS1.LimAct.stVal", "ST"],
                ["read", "string", f"{LD}/DRCS1.LastWr.stVal", "ST"],
            ],
        )
        lds, area_name, tot_w, down_w, up_w, limit_w, ev_count, active, wrote, limit_after, active_after, last = before
        assert sorted(lds) == sorted([LD, f"V2GAgg{ld_inst(OTHER)}"])
        assert area_name == AREA
        assert math.isclose(tot_w, planned_w, rel_tol=1e-6, abs_tol=1e-3)
        assert math.isclose(down_w, min(33_000.0, 100_000.0) - planned_w, rel_tol=1e-6, abs_tol=1e-3)
        assert math.isclose(up_w, planned_w + 30_000.0, rel_tol=1e-6, abs_tol=1e-3)
        assert (limit_w, ev_count, active) == (100_000.0, 3, False)
        assert wrote == "ok"
        assert (limit_after, active_after) == (5000.0, True)
        assert last.startswith("accepted: import <= 5 kW until")
        # audited, and the area is marked for a re-plan
        assert [(e.action, e.entity_id, e.after["import_limit_kw"]) for e in audit.entries] == [  # type: ignore[index]
            ("grid_limit.set", AREA, 5.0)
        ]
        assert cycle.changed.get(f"area:{AREA}") == "new grid signal"
        # the next plan keeps the area under 5 kW for the limit's four hours
        clock.advance_to(clock.now() + timedelta(minutes=1))
        status = await cycle.check_changes(clock.now())
        assert status is not None
        second = plans.saved[-1]
        assert second is not first
        n = int(timedelta(hours=4) / QUARTER)
        area_kw = np.array([_area_kw(second, k) for k in range(n)])
        assert area_kw.max() <= 5.0 + 1e-6, area_kw
    finally:
        await server.stop()


@pytest.mark.timeout(60)
async def test_a_bad_write_is_refused_with_its_reason_and_changes_nothing() -> None:
    _, cycle, _, audit, server, _ = _setup()
    port = await server.start()
    try:
        spt = f"{LD}/DRCC1.WImpLimSpt.setMag"
        answers = await mms(
            port,
            [
                ["write", "float", spt, "SP", float("nan")],
                ["read", "string", f"{LD}/DRCS1.LastWr.stVal", "ST"],
                ["write", "float", spt, "SP", -1000.0],
                ["read", "string", f"{LD}/DRCS1.LastWr.stVal", "ST"],
                ["write", "float", spt, "SP", 150_000.0],
                ["read", "string", f"{LD}/DRCS1.LastWr.stVal", "ST"],
                ["write", "float", "V2GAggGA_SE3_NOWHERE/DRCC1.WImpLimSpt.setMag", "SP", 5000.0],
                ["write", "float", f"{LD}/MMXU1.TotW.mag.f", "MX", 5000.0],
                ["write", "float", f"V2GAgg{ld_inst(OTHER)}/DRCC1.WImpLimSpt.setMag", "SP", 5000.0],
                ["read", "float", f"{LD}/DRCC1.WImpLim.mag.f", "MX"],
                ["read", "bool", f"{LD}/DRCS1.LimAct.stVal", "ST"],
            ],
        )
    finally:
        await server.stop()
    nan, nan_why, negative, negative_why, above, above_why, unknown, read_only, other_ln, limit_w, active = answers
    assert nan == negative == above == {"error": "OBJECT_VALUE_INVALID"}
    assert "import_limit_kw: nan is not a finite number" in nan_why
    assert "import_limit_kw: -1 must be >= 0" in negative_why
    assert "import_limit_kw: 150 is above the area's import limit of 100 kW" in above_why
    assert unknown == {"error": "OBJECT_DOES_NOT_EXIST"}
    assert read_only == {"error": "ACCESS_DENIED"}
    assert other_ln == {"error": "OBJECT_DOES_NOT_EXIST"}  # the second area's nodes are numbered 2
    assert (limit_w, active) == (100_000.0, False)
    assert cycle.signals.received == 0
    assert cycle.changed == {}
    assert audit.entries == []
    assert [w[2].split(":")[0] for w in server.writes] == ["rejected"] * 3
