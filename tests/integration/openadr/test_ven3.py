"""The OpenADR 3 VEN against a VTN on loopback, driven through the VTN's business-logic (BL) API as a utility would.

Each scenario runs against two peers:

* ``real``: an OpenADR 3 VTN product, started as a subprocess by ``V2G_OPENADR3_VTN_CMD`` (a shell
  command with ``{port}``), answering at ``http://127.0.0.1:{port}`` + ``V2G_OPENADR3_VTN_PATH``, with the
  client credentials ``V2G_OPENADR3_BL_CLIENT`` and ``V2G_OPENADR3_VEN_CLIENT`` (``id:secret``). Absent, the
  case is skipped; with ``V2G_REQUIRE_OPENADR3_VTN=1`` absence is a failure.
* ``double``: the loopback stand-in ``vtn3_double.py`` (its own process, state kept in a file), which
  always runs: it exercises the VEN's own behaviour (queue, reconnect, webhook) over real sockets, not
  interoperability.

The planning cycle runs on twin households, as in the IEC 61850 tests: a capacity-limit event for an
area bounds the next plan of that area.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import Engine, select

from tests.integration.iec61850.test_control_centre import START, CheapNowPrices, _area_kw, _twin
from tests.integration.openadr.test_ven import free_port, wait_until
from tests.integration.runtime.test_cycle_on_twin import MemoryPlans, needs_session
from v2g.adapters.db.preferences_repo import SqlPreferencesAudit
from v2g.adapters.db.tables.journey import audit_log
from v2g.adapters.db.vtn_reports_repo import SqlReportQueue
from v2g.adapters.openadr.ven3 import OpenAdr3Ven, Ven3Config
from v2g.planning.rules import load_rules
from v2g.services.planning.cycle import CycleConfig, PlanningCycle
from v2g.services.planning.dso_interface import AreaAggregate, area_aggregates
from v2g.services.planning.grid_events import GridEventDesk
from v2g.services.planning.signal_book import GridSignalBook
from v2g.sim.clock import SimulatedClock
from v2g.units import QUARTER

AREA = "GA-SE3-UPPSALA-01"
OTHER = "GA-SE3-UPPSALA-02"
STATIC_KW = {AREA: (100.0, 50.0), OTHER: (80.0, 40.0)}
DOUBLE = Path(__file__).with_name("vtn3_double.py")
VEN_NAME = "v2g-aggregator-test"


def _iso(offset: timedelta = timedelta(0)) -> str:
    return (START + offset).isoformat().replace("+00:00", "Z")


class Vtn:
    """A VTN process on a fixed loopback port, and its BL side (a utility's client)."""

    def __init__(self, argv: list[str], path: str, bl: tuple[str, str], ven: tuple[str, str], port: int) -> None:
        self.argv, self.port, self.bl_client, self.ven_client = argv, port, bl, ven
        self.url = f"http://127.0.0.1:{port}{path}"
        self.proc: asyncio.subprocess.Process | None = None
        self.bl = httpx.AsyncClient(base_url=self.url, timeout=10)

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(*self.argv, stdout=asyncio.subprocess.DEVNULL)

        async def answers() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                await self.bl.post("/auth/token", data={"grant_type": "client_credentials"})
                return True
            return False

        for _ in range(300):
            if self.proc.returncode is not None:
                raise AssertionError(f"the VTN exited with {self.proc.returncode}: {self.argv}")
            if await answers():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the VTN did not answer on port {self.port}")
        client_id, secret = self.bl_client
        answer = await self.bl.post(
            "/auth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        )
        assert answer.status_code == 200, answer.text
        self.bl.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        self.proc = None

    async def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = await self.bl.post(f"/{kind}", json=body)
        assert answer.status_code in (200, 201), answer.text
        created: dict[str, Any] = answer.json()
        return created

    async def reports(self) -> list[dict[str, Any]]:
        answer = await self.bl.get("/reports", params={"clientName": VEN_NAME, "limit": 1000})
        assert answer.status_code == 200, answer.text
        return [r for r in answer.json() if r.get("clientName") == VEN_NAME]


def _client(variable: str, default: tuple[str, str]) -> tuple[str, str]:
    value = os.environ.get(variable)
    if not value:
        return default
    client_id, _, secret = value.partition(":")
    return client_id, secret


@pytest.fixture(params=["double", "real"])
async def vtn(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Vtn]:
    port = free_port()
    if request.param == "double":
        peer = Vtn(
            [sys.executable, str(DOUBLE), str(port), str(tmp_path / "vtn.json")],
            "",
            ("bl", "bl-secret"),
            ("ven", "ven-secret"),
            port,
        )
    else:
        command = os.environ.get("V2G_OPENADR3_VTN_CMD")
        if not command:
            if os.environ.get("V2G_REQUIRE_OPENADR3_VTN") == "1":
                pytest.fail("V2G_OPENADR3_VTN_CMD must name a VTN when V2G_REQUIRE_OPENADR3_VTN=1")
            pytest.skip("no OpenADR 3 VTN product configured (V2G_OPENADR3_VTN_CMD); see docs/grid-interfaces.md")
        peer = Vtn(
            shlex.split(command.format(port=port)),
            os.environ.get("V2G_OPENADR3_VTN_PATH", ""),
            _client("V2G_OPENADR3_BL_CLIENT", ("bl_client", "1001")),
            _client("V2G_OPENADR3_VEN_CLIENT", ("ven_client", "999")),
            port,
        )
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()
        await peer.bl.aclose()


class Fixture:
    def __init__(self, engine: Engine) -> None:
        self.clock = SimulatedClock(START + timedelta(seconds=1))
        self.twin = _twin()
        self.plans = MemoryPlans()
        self.signals = GridSignalBook()
        self.cycle = PlanningCycle(
            fleet=self.twin,
            prices=CheapNowPrices(),
            signals=self.signals,
            plans=self.plans,
            gateway=self.twin.gateway,
            clock=self.clock,
            rules=load_rules(),
            build_session=needs_session,
            config=CycleConfig(),
        )
        self.desk = GridEventDesk(self.signals, STATIC_KW, self.clock.now, SqlPreferencesAudit(engine))
        self.queue = SqlReportQueue(engine)

    def ven(self, vtn: Vtn, **over: Any) -> OpenAdr3Ven:
        imports = {a: kw for a, (kw, _) in STATIC_KW.items()}

        def aggregates() -> dict[str, AreaAggregate]:
            return area_aggregates(
                imports, self.twin.plugged_in(), self.cycle.latest_plan(), self.signals, self.clock.now()
            )

        client_id, secret = vtn.ven_client
        values: dict[str, Any] = {
            "ven_name": VEN_NAME,
            "vtn_url": vtn.url,
            "served_areas": (AREA, OTHER),
            "default_areas": (AREA,),
            "client_id": client_id,
            "client_secret": secret,
            "poll_interval": timedelta(seconds=0.3),
            "report_interval": timedelta(seconds=0.3),
            "backoff_min": timedelta(seconds=0.1),
            "backoff_max": timedelta(seconds=0.8),
        } | over
        return OpenAdr3Ven(Ven3Config(**values), self.desk, self.queue, aggregates, self.clock.now)


async def _program(vtn: Vtn, name: str) -> str:
    program = await vtn.create(
        "programs", {"objectType": "PROGRAM", "programName": name, "targets": [{"type": "GROUP", "values": [AREA]}]}
    )
    return str(program["id"])


def _limit_event(program_id: str, kw: float, hours: int = 4) -> dict[str, Any]:
    return {
        "objectType": "EVENT",
        "programID": program_id,
        "eventName": f"import limit {kw:g} kW",
        "targets": [{"type": "GROUP", "values": [AREA]}],
        "payloadDescriptors": [
            {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KW"}
        ],
        "reportDescriptors": [{"payloadType": "DEMAND", "readingType": "DIRECT_READ", "units": "KW"}],
        "intervalPeriod": {"start": _iso(), "duration": f"PT{hours}H"},
        "intervals": [{"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [kw]}]}],
    }


@pytest.mark.timeout(90)
async def test_a_capacity_limit_event_bounds_the_next_plan_of_its_area_and_is_audited(vtn: Vtn, engine: Engine) -> None:
    f = Fixture(engine)
    await f.cycle.run(START)
    first = f.plans.saved[-1]
    assert max(_area_kw(first, k) for k in range(16)) > 5.0  # unconstrained, it charges hard now
    program_id = await _program(vtn, "dso-capacity")
    limit = await vtn.create("events", _limit_event(program_id, 5.0))
    price = {
        "objectType": "EVENT",
        "programID": program_id,
        "eventName": "scarcity price",
        "payloadDescriptors": [
            {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "PRICE", "units": "KWH", "currency": "EUR"}
        ],
        "intervalPeriod": {"start": _iso(timedelta(hours=6)), "duration": "PT1H"},
        "intervals": [{"id": 0, "payloads": [{"type": "PRICE", "values": [0.9]}]}],
    }
    priced = await vtn.create("events", price)
    unreadable = _limit_event(program_id, 5.0) | {"eventName": "a limit in words"}
    unreadable["intervals"] = [{"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": ["five"]}]}]
    bad = await vtn.create("events", unreadable)
    ven = f.ven(vtn)
    await ven.start()
    try:
        await wait_until(lambda: len(f.desk.applied) == 2 and len(f.desk.refused) == 1)
        assert f.cycle.changed.get(f"area:{AREA}") == "new grid signal"
        # the next plan keeps the area under 5 kW for the event's four hours
        f.clock.advance_to(f.clock.now() + timedelta(minutes=1))
        assert await f.cycle.check_changes(f.clock.now()) is not None
        second = f.plans.saved[-1]
        area_kw = np.array([_area_kw(second, k) for k in range(int(timedelta(hours=4) / QUARTER))])
        assert area_kw.max() <= 5.0 + 1e-6, area_kw
        assert f.signals.price_overrides(AREA, START + timedelta(hours=6), 4) == dict.fromkeys(range(4), 900.0)
        # the utility deletes the limit: it is withdrawn at the next read
        answer = await vtn.bl.delete(f"/events/{limit['id']}")
        assert answer.status_code == 200, answer.text
        await wait_until(lambda: f"openadr3:event/{limit['id']}" not in f.desk.applied)
        assert f.signals.import_limits_kw(AREA, 100.0, START + timedelta(minutes=15), 1) == (100.0,)
        # the utility retargets the price event to someone else: its prices leave the area
        retargeted = priced | {"targets": [{"type": "GROUP", "values": ["GA-SOMEONE-ELSE"]}]}
        answer = await vtn.bl.put(f"/events/{priced['id']}", json=retargeted)
        assert answer.status_code == 200, answer.text
        await wait_until(lambda: f"openadr3:event/{priced['id']}" not in f.desk.applied)
        assert f.signals.price_overrides(AREA, START + timedelta(hours=6), 4) == {}
    finally:
        await ven.stop()
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.action, audit_log.c.entity_id, audit_log.c.after).order_by(audit_log.c.id)
        ).all()
    actions = [(r.action, r.entity_id, r.after["event_id"]) for r in rows]
    assert ("grid_limit.set", AREA, str(limit["id"])) in actions
    assert ("grid_price.set", AREA, str(priced["id"])) in actions
    assert ("grid_signal.withdrawn", AREA, "") in actions
    (refused,) = [r for r in rows if r.action == "grid_signal.rejected"]
    assert refused.after["event_id"] == str(bad["id"])
    assert "intervals[0].payloads[0].values[0]: expected a finite number, got 'five'" in refused.after["problems"][0]
    assert next(r.after for r in rows if r.action == "grid_limit.set")["intervals"][0]["import_limit_kw"] == 5.0


@pytest.mark.timeout(90)
async def test_reports_reach_the_vtn_and_wait_in_the_queue_while_it_is_away(vtn: Vtn, engine: Engine) -> None:
    f = Fixture(engine)
    await f.cycle.run(START)
    program_id = await _program(vtn, "dso-reporting")
    await vtn.create("events", _limit_event(program_id, 60.0))
    ven = f.ven(vtn)
    await ven.start()
    try:
        await wait_until(lambda: ven.state.reports_sent >= 2)
        at_vtn = await vtn.reports()
        assert len(at_vtn) >= 2
        (resource,) = at_vtn[0]["resources"]
        assert resource["resourceName"] == AREA
        payloads = {p["type"]: p["values"][0] for p in resource["intervals"][0]["payloads"]}
        assert set(payloads) == {"DEMAND", "UP_REGULATION_AVAILABLE", "DOWN_REGULATION_AVAILABLE"}
        # the VTN goes away: reports queue up, the VEN keeps trying with a growing wait
        await vtn.stop()
        failed = ven.state.attempts_failed
        await wait_until(lambda: len(f.queue.pending(100)) >= 4 and ven.state.attempts_failed >= failed + 3)
        assert not ven.state.connected
        queued_while_away = len(f.queue.pending(100))
        await vtn.start()
        await wait_until(lambda: not f.queue.pending(100), limit_s=30)
        assert ven.state.connected
    finally:
        await ven.stop()
    counts = f.queue.counts()
    assert counts.get("rejected", 0) == 0
    at_vtn = await vtn.reports()
    assert len(at_vtn) == counts["sent"] >= queued_while_away + 2  # nothing lost, nothing twice
    assert len({r["reportName"] for r in at_vtn}) == len(at_vtn)


@pytest.mark.timeout(60)
async def test_a_subscription_brings_a_new_event_before_the_next_poll(vtn: Vtn, engine: Engine) -> None:
    f = Fixture(engine)
    port = free_port()
    program_id = await _program(vtn, "dso-notified")
    ven = f.ven(
        vtn,
        poll_interval=timedelta(seconds=60),
        callback_url=f"http://127.0.0.1:{port}/openadr3/notifications",
        callback_port=port,
    )
    await ven.start()
    try:
        await wait_until(
            lambda: ven.state.polls >= 1 and (ven.state.subscriptions or not ven.state.subscriptions_offered)
        )
        if not ven.state.subscriptions_offered:
            pytest.skip("this VTN offers no subscriptions: the VEN polls")
        event = await vtn.create("events", _limit_event(program_id, 7.0))
        await wait_until(lambda: f"openadr3:event/{event['id']}" in f.desk.applied, limit_s=10)
        assert ven.state.notifications >= 1
        assert ven.state.polls >= 2  # woken by the notification well before the 60 s interval
    finally:
        await ven.stop()
