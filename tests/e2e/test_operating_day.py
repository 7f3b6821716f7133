"""The operating day end to end over real OCPP sockets: households' wallboxes of all three protocol versions
connect to the platform's CSMS; an owner sets a departure and a target; the planning cycle plans and sends;
reserves are offered before the FCR gate closes, cleared by the market simulator, held by the next plan and
delivered by frequency dispatch on a recorded frequency day. Simulated time drives the platform's jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from v2g.adapters.db.demo_seed import demo_batteries, demo_households, seed_demo, seed_demo_households
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.journey_repo import sql_unit_of_work
from v2g.adapters.db.migrate import upgrade
from v2g.adapters.db.operations_repo import SqlFleetState, SqlPlanStore
from v2g.adapters.feeds.frequency import RecordedFrequencyDay
from v2g.adapters.ocpp.session import PLAN_PROFILE_ID, SETPOINT_PROFILE_ID
from v2g.api.app import create_app
from v2g.bootstrap import bootstrap
from v2g.cli.twin import households_from_records
from v2g.config import Settings
from v2g.devices.commands import AckStatus, Setpoint
from v2g.markets.bids import BidStatus
from v2g.planning.model import FleetPlan
from v2g.planning.model import Product as PlanProduct
from v2g.runtime import Runtime
from v2g.runtime.demo import GroupUnit, qualify_bidding_groups, start_demo_fleet
from v2g.runtime.simulation import run_simulated
from v2g.services.journey.demo import DEMO_PASSWORD, seed_demo_journeys
from v2g.services.planning.ports import AreaLimits, PluggedEv, StoredPlan
from v2g.services.planning.recording import RecordedCall, ReplayedInputs
from v2g.sim.clock import SimulatedClock
from v2g.sim.fleet import FleetRun
from v2g.sim.ocpp_client import SimCharger
from v2g.sim.operating_twin import OperatingTwin
from v2g.sim.wallbox import EvBehaviour
from v2g.units import HOUR, STOCKHOLM, floor_hour

# Monday 9 November 2026, 17:20 Swedish time (an evening peak well above the night): Tuesday's day-ahead
# prices are published, and the
# second FCR auction for Tuesday closes at 18:00.
START = datetime(2026, 11, 9, 16, 20, tzinfo=UTC)
TUESDAY = datetime(2026, 11, 10, 0, 0, tzinfo=STOCKHOLM).astimezone(UTC)
HOUSEHOLDS = 24  # 19 x OCPP 2.1, 2 x 2.0.1, 3 x 1.6 ... enough V2X capacity in SE3 for a 0.1 MW bid
OWNER_EV, OWNER_CUSTOMER, OWNER_SITE = "ev-hh-00001", "hh-00001", "site-hh-00001"
MONDAY_1830 = datetime(2026, 11, 9, 18, 30, tzinfo=STOCKHOLM).astimezone(UTC)
GATE = datetime(2026, 11, 9, 18, 0, tzinfo=STOCKHOLM).astimezone(UTC)


async def _wait(predicate: Callable[[], bool], limit_s: float = 60.0, what: Callable[[], object] = str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            msg = f"condition not reached in time: {what()}"
            raise AssertionError(msg)
        await asyncio.sleep(0.05)


async def _fleet(platform, sites: dict[str, list[str]], url: str) -> tuple[dict[str, FleetRun], list[SimCharger]]:
    batteries = demo_batteries(platform.engine)
    fleet = await start_demo_fleet(platform, sites, url, battery_by_site=batteries, meter_interval_s=0.2, plug_in=False)
    assert fleet.failed == 0
    behaviour = EvBehaviour(3)
    runs: dict[str, FleetRun] = fleet.runs
    chargers: list[SimCharger] = []
    for protocol, site_ids in sites.items():
        run = runs[protocol]
        for sim, site_id in zip(sorted(run.chargers, key=lambda c: c.charger_id), site_ids, strict=True):
            session = behaviour.session(START).with_battery(batteries[site_id])
            battery = replace(session.battery(), soc_kwh=0.45 * batteries[site_id])
            # home for the night: leaves Tuesday 07:30 wanting 75 %
            wanted = 0.40 if site_id == OWNER_SITE else 0.75  # the owner's own target (below) is the higher one
            await sim.plug_in(battery, wanted * batteries[site_id], TUESDAY + timedelta(hours=6, minutes=30))
            chargers.append(sim)
    return runs, chargers


class SnapshotFleet:
    """The fleet state a run saw, replayed (the twin's stand-in at the FleetStateReader port)."""

    def __init__(self, evs: list[PluggedEv], areas: list[AreaLimits]) -> None:
        self.evs, self.areas = evs, areas

    def plugged_in(self) -> list[PluggedEv]:
        return list(self.evs)

    def area_limits(self, area_ids: Sequence[str]) -> list[AreaLimits]:
        return [a for a in self.areas if a.area_id in area_ids]


async def _plan_on_twin(snapshot: list[PluggedEv], tmp_path: Path, preferences: object) -> FleetPlan:
    engine = make_engine(f"sqlite:///{tmp_path / 'twin.db'}")
    upgrade(engine)
    seed_demo(engine)
    areas = SqlFleetState(engine).area_limits(sorted({ev.grid_area_id for ev in snapshot}))
    twin = OperatingTwin([], {}, START, areas)
    lookup = preferences.for_planning  # type: ignore[attr-defined]
    platform = bootstrap(
        Settings(database_url=str(engine.url)),
        engine=engine,
        clock=SimulatedClock(START),
        fleet_state=SnapshotFleet(snapshot, areas),
        gateway=twin.gateway,
        preferences=lambda ev_id: lookup([ev_id]).get(ev_id),
    )
    result = await platform.cycle.plan_now(trigger="twin", start_at=floor_hour(START))
    engine.dispose()
    assert result.plan is not None
    return result.plan


async def _same_day_on_twin(
    calls: Sequence[RecordedCall], units: list[GroupUnit], ours: list[StoredPlan], tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'replay.db'}")
    upgrade(engine)
    seed_demo(engine)
    seed_demo_households(engine, HOUSEHOLDS)
    clock = SimulatedClock(START)
    replay = ReplayedInputs(calls, clock.now)
    households = households_from_records(demo_households(engine))
    twin = OperatingTwin(households, {}, START, [])  # the same wallboxes; what they report is the recording
    platform = bootstrap(
        Settings(database_url=str(engine.url)),
        engine=engine,
        clock=clock,
        fleet_state=replay,
        preferences=replay.preferences,
        gateway=twin.gateway,
        dispatched=twin.dispatched,
        frequency=RecordedFrequencyDay(),
    )
    await qualify_bidding_groups(platform, lambda _line: None, units=units, max_test_units=4)
    await platform.cycle.plan_now(trigger="first", start_at=floor_hour(START))
    run = await run_simulated(platform, twin, START, START + timedelta(minutes=80))
    assert not [line for line in run.lines if ": failed:" in line]
    assert replay.finished, f"{replay.position} of {len(calls)} recorded calls asked for"
    theirs = SqlPlanStore(engine).made_between(START, START + 2 * HOUR)
    # the first plan, the hourly fresh one, the re-plan on the cleared bids and the one for the owner staying are
    # always there; re-plans on SoC deviations come when the wallboxes' readings drift (how many depends on when the
    # readings of the real OCPP run arrived), and the twin must make exactly those too
    triggers = " | ".join(p.trigger for p in ours)
    for expected in ("first", "planning cycle", "bids accepted", "stayed past its departure"):
        assert expected in triggers, [(p.created_at, p.trigger) for p in ours]
    engine.dispose()
    assert [(p.created_at, p.trigger, p.n_evs) for p in theirs] == [(p.created_at, p.trigger, p.n_evs) for p in ours]
    for a, b in zip(ours, theirs, strict=True):
        assert a.start_at == b.start_at
        assert b.objective_eur == pytest.approx(a.objective_eur, abs=1e-6)
        assert [e["id"] for e in b.plan["evs"]] == [e["id"] for e in a.plan["evs"]]
        for ea, eb in zip(a.plan["evs"], b.plan["evs"], strict=True):
            pa = [x if x is not None else float("nan") for x in ea["p_kw"]]
            pb = [x if x is not None else float("nan") for x in eb["p_kw"]]
            assert pb == pytest.approx(pa, abs=1e-6, nan_ok=True), (a.created_at, a.trigger, ea["id"])


@pytest.mark.slow
async def test_the_operating_day_over_ocpp(engine: Engine, tmp_path: Path) -> None:
    seed_demo(engine)
    sites = seed_demo_households(engine, HOUSEHOLDS)
    clock = SimulatedClock(START)
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False))
    platform = bootstrap(
        settings, engine=engine, clock=clock, frequency=RecordedFrequencyDay(), record_planning_inputs=True
    )
    assert platform.journeys is not None
    assert platform.dispatch is not None
    seed_demo_journeys(sql_unit_of_work(engine), platform.journeys, [OWNER_CUSTOMER], start=START - timedelta(days=30))
    runtime = Runtime(platform, None)
    port = await runtime.start_csms("127.0.0.1", 0)
    runs, chargers = await _fleet(platform, sites, f"ws://127.0.0.1:{port}/ocpp")
    by_id = {c.charger_id: c for c in chargers}
    try:
        await _wait(
            lambda: len(platform.fleet_state.plugged_in()) == HOUSEHOLDS,
            what=lambda: sorted(
                {c.charger_id for c in chargers} - {e.charger_id for e in platform.fleet_state.plugged_in()}
            ),
        )
        evs = {ev.ev_id: ev for ev in platform.fleet_state.plugged_in()}

        # the owner of one EV sets its departures (18:30 today, 06:00 other days) and a target of 50 % via the API
        with TestClient(create_app(platform)) as client:
            credentials = {"username": f"owner-{OWNER_CUSTOMER}", "password": DEMO_PASSWORD}
            login = client.post("/api/v1/auth/login", json=credentials)
            assert login.status_code == 200, login.text
            owner = {"Authorization": f"Bearer {login.json()['token']}"}
            body = {
                "departures": {**dict.fromkeys(("tue", "wed", "thu", "fri", "sat", "sun"), "06:00"), "mon": "18:30"},
                "target_soc_percent": 50,
                "min_soc_percent": 30,
                "version": None,
            }
            put = client.put(f"/api/v1/evs/{OWNER_EV}/preferences", headers=owner, json=body)
            assert put.status_code == 200, put.text

        units = [GroupUnit(e.ev_id, e.charger_id, e.price_area) for e in evs.values() if e.max_discharge_kw > 0]
        await qualify_bidding_groups(platform, lambda _line: None, units=units, max_test_units=4)

        # the same planning inputs through the twin's ports (a platform on another database, the twin's
        # gateway, the fleet state as the OCPP run saw it) give the identical plan
        first = await platform.cycle.plan_now(trigger="first", start_at=floor_hour(START))
        assert first.plan is not None
        assert first.problem is not None
        # the owner's preferences reached the plan: leaves 18:30 Swedish time with at least 50 %
        owners = next(s for s in first.problem.evs if s.ev_id == OWNER_EV)
        assert owners.departure_at == MONDAY_1830
        assert owners.target_soc_kwh == pytest.approx(0.5 * evs[OWNER_EV].battery_kwh, rel=1e-6)
        assert first.sources[OWNER_EV]["departure_at"] == "preferences"
        snapshot = platform.fleet_state.plugged_in()
        twin_plan = await _plan_on_twin(snapshot, tmp_path, platform.preferences)
        assert [p.ev_id for p in twin_plan.ev_plans] == [p.ev_id for p in first.plan.ev_plans]
        for ours, theirs in zip(first.plan.ev_plans, twin_plan.ev_plans, strict=True):
            assert list(theirs.p_kw) == pytest.approx(list(ours.p_kw), abs=1e-6), ours.ev_id
        assert twin_plan.objective_eur == pytest.approx(first.plan.objective_eur, abs=1e-6)

        # 17:20 -> 18:40 Swedish time, minute by minute: plans, re-plans, offers before 18:00, clearing after
        scheduler = platform.scheduler
        scheduler.start(START)
        t = START
        soc_at_departure = -1.0
        owner_sim = next(c for c in chargers if c.charger_id.startswith("DEMO-21-00001"))
        while t < START + timedelta(minutes=80):
            t += timedelta(minutes=1)
            await scheduler.run(until=t)
            if t == MONDAY_1830:
                owner_sim.wallbox.advance(t)
                assert owner_sim.wallbox.battery is not None
                soc_at_departure = owner_sim.wallbox.battery.soc_kwh
            await asyncio.sleep(0)
        assert not any(j.failures for j in scheduler.jobs), [(j.name, j.last_error) for j in scheduler.jobs]
        last = platform.cycle.last
        assert last is not None
        assert last.plan is not None
        assert last.problem is not None
        # the owner's EV stayed plugged in after 18:30 (its owner did not leave): it is planned again, for its
        # next departure from the preferences, Tuesday 06:00 Swedish time; every EV is in the plan in force
        assert last.at >= MONDAY_1830
        assert {p.ev_id for p in last.plan.ev_plans} == set(evs)
        again = next(s for s in last.problem.evs if s.ev_id == OWNER_EV)
        assert again.departure_at == datetime(2026, 11, 10, 6, 0, tzinfo=STOCKHOLM).astimezone(UTC)
        assert last.sources[OWNER_EV]["departure_at"] == "preferences"

        # the EV had what its owner asked for when it was due to leave at 18:30
        assert soc_at_departure >= 0.5 * evs[OWNER_EV].battery_kwh - 0.05, soc_at_departure

        # every wallbox runs the plan it was sent (what it asks for now is the plan's power now, within its
        # EV's limits); V2X chargers got discharge in their plans, the 1.6 ones never
        now = clock.now()
        k = int((now - last.plan.start_at) / timedelta(minutes=15))
        for plan in last.plan.ev_plans:
            sim = by_id[plan.charger_id or ""]
            assert PLAN_PROFILE_ID in sim.wallbox.profiles, plan.charger_id
            assert sim.wallbox.requested_p_kw(now) == pytest.approx(float(plan.p_kw[k]), abs=0.15), plan.charger_id
        # V2X chargers are used for V2G (discharge or reserve capacity); the 1.6 chargers never discharge
        # (they may hold reserve by changing how fast they charge)
        v2g_used = {
            p.charger_id or ""
            for p in last.plan.ev_plans
            if min(p.p_kw) < -0.1 or any(float(np.nansum(v)) > 0 for v in p.reserve_kw.values())
        }
        assert any(cid.startswith(("DEMO-21-", "DEMO-201-")) for cid in v2g_used), v2g_used
        charge_only = [p for p in last.plan.ev_plans if (p.charger_id or "").startswith("DEMO-16-")]
        assert charge_only
        assert all(min(p.p_kw) >= -1e-6 for p in charge_only)
        assert all(float(np.nansum(p.reserve_kw.get(PlanProduct.FCR_D_UP, np.zeros(1)))) <= 1e-6 for p in charge_only)

        # reserves were offered before the 18:00 gate and cleared into commitments for Tuesday
        with platform.market_tx() as store:
            groups = store.groups_of(settings.bsp_org_id)
            bids = [b for g in groups for b in store.bids(g.id)]
            commitments = [c for g in groups for c in store.commitments(g.id, TUESDAY, TUESDAY + 24 * HOUR)]
        gate = GATE
        assert bids
        assert all(b.submitted_at is None or b.submitted_at < gate for b in bids)
        assert any(b.status is BidStatus.ACCEPTED for b in bids)  # priced on last week's results: some clear
        assert commitments
        # the plan made after the clearing holds what was sold (no commitment shortfall)
        assert last.at >= gate
        assert last.problem.commitments
        assert last.plan.commitment_shortfalls == ()

        # the whole run again in-process on the twin: the twin's gateway and runtime, another database, the
        # planning inputs this run's ports answered; every plan of the day is the same
        recorded = platform.planning_inputs
        assert recorded is not None
        await _same_day_on_twin(recorded.calls, units, SqlPlanStore(engine).made_between(START, t + HOUR), tmp_path)

        # frequency dispatch in the first committed hour (recorded frequency): setpoints reach the wallboxes
        hour = min(c.start_at for c in commitments)
        clock.advance_to(hour)
        await platform.dispatch.advance_to(hour + timedelta(seconds=20))
        status = platform.dispatch.status()
        assert status is not None
        assert status.evs > 0
        assert sum(status.committed_kw.values()) > 0
        held = [sim for sim in chargers if SETPOINT_PROFILE_ID in sim.wallbox.profiles]
        assert held
        await platform.dispatch.stop()

        # a discharge command reaches a 2.1 charger as a setpoint and a 2.0.1 charger as a negative limit
        v21, v201 = by_id["DEMO-21-00002"], by_id["DEMO-201-00001"]
        until = clock.now() + timedelta(minutes=10)
        acks = await platform.gateway.send_setpoints(
            [Setpoint(v21.charger_id, -5.0, until), Setpoint(v201.charger_id, -5.0, until)]
        )
        assert [a.status for a in acks] == [AckStatus.ACCEPTED, AckStatus.ACCEPTED], acks
        [p21] = v21.wallbox.profiles[SETPOINT_PROFILE_ID].periods[:1]
        [p201] = v201.wallbox.profiles[SETPOINT_PROFILE_ID].periods[:1]
        assert p21.setpoint_kw == pytest.approx(-5.0)
        assert p201.setpoint_kw is None
        assert p201.limit_kw == pytest.approx(-5.0)
        assert v201.wallbox.requested_p_kw(clock.now()) == pytest.approx(-5.0)
        assert platform.dispatch.reports
        assert platform.dispatch.reports[-1].seconds == 20
    finally:
        for run in runs.values():
            await run.stop()
        await runtime.stop()
