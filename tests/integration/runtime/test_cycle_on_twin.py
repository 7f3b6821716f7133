"""The planning cycle runs on the scheduler against twin households: plans are made, followed and departures met."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from v2g.fleet.model import ChargerProtocol, PriceArea
from v2g.planning.model import EvSession, Product
from v2g.planning.rules import load_rules
from v2g.services.operations.scheduler import Job, Scheduler
from v2g.services.planning.cycle import CycleConfig, PlanningCycle
from v2g.services.planning.ports import AreaLimits, PluggedEv, StoredPlan
from v2g.services.planning.signal_book import GridSignalBook
from v2g.sim.clock import SimulatedClock
from v2g.sim.operating_twin import OperatingTwin, PlugSession, TwinEv

START = datetime(2025, 11, 11, 12, 0, tzinfo=UTC)  # a Tuesday


class EveningPeakPrices:
    """A price day with a cheap night and an expensive evening (EUR/MWh)."""

    def day_ahead_eur_per_mwh(self, area: PriceArea, start_at: datetime, n_quarters: int) -> tuple[float, ...]:
        out = []
        for k in range(n_quarters):
            hour = (start_at + timedelta(minutes=15 * k)).hour
            out.append(250.0 if 15 <= hour < 19 else 20.0 if hour < 5 else 60.0)
        return tuple(out)

    def reserve_eur_per_mw_h(self, product: Product, start_at: datetime, n_hours: int) -> tuple[float, ...]:
        return (0.0,) * n_hours


class MemoryPlans:
    def __init__(self) -> None:
        self.saved: list[dict[str, Any]] = []

    def save_plan(self, **values: Any) -> int:
        self.saved.append(values)
        return len(self.saved)

    def latest_plan(self) -> StoredPlan | None:
        return None


def needs_session(ev: PluggedEv, now: datetime, horizon_end: datetime) -> tuple[EvSession, dict[str, str]]:
    assert ev.needs is not None
    assert ev.needs.departure_at is not None
    assert ev.needs.target_soc_percent is not None
    assert ev.soc_percent is not None
    session = EvSession(
        ev_id=ev.ev_id,
        site_id=ev.site_id,
        battery_kwh=ev.battery_kwh,
        soc_kwh=ev.soc_percent / 100 * ev.battery_kwh,
        min_soc_kwh=0.2 * ev.battery_kwh,
        target_soc_kwh=ev.needs.target_soc_percent / 100 * ev.battery_kwh,
        arrival_at=now,
        departure_at=ev.needs.departure_at,
        max_charge_kw=ev.max_charge_kw,
        max_discharge_kw=ev.max_discharge_kw,
        charger_id=ev.charger_id,
    )
    return session, {"departure_at": "ISO 15118"}


def _twin() -> OperatingTwin:
    evs = [
        TwinEv(f"ev-{i}", f"c-{i}", f"CP-{i}", f"s-{i}", "GA-1", PriceArea.SE3, proto, 60.0, 11.0, 10.0)
        for i, proto in enumerate((ChargerProtocol.OCPP21, ChargerProtocol.OCPP201, ChargerProtocol.OCPP16))
    ]
    sessions = {
        ev.ev_id: [
            PlugSession(
                START + timedelta(hours=4, minutes=20 * i),  # home at 16:00-16:40 UTC
                START + timedelta(hours=18, minutes=30),  # leaves 06:30 UTC
                18.0,
                48.0,
            )
        ]
        for i, ev in enumerate(evs)
    }
    return OperatingTwin(evs, sessions, START, [AreaLimits("GA-1", PriceArea.SE3, 100.0, 50.0)])


async def test_a_day_of_planning_cycles_on_the_twin() -> None:
    clock = SimulatedClock(START)
    twin = _twin()
    plans = MemoryPlans()
    cycle = PlanningCycle(
        fleet=twin,
        prices=EveningPeakPrices(),
        signals=GridSignalBook(),
        plans=plans,
        gateway=twin.gateway,
        clock=clock,
        rules=load_rules(),
        build_session=needs_session,
        config=CycleConfig(),
    )
    statuses: list[str] = []
    scheduler = Scheduler(clock, on_status=lambda name, at, s: statuses.append(f"{at:%H:%M} {name}: {s}"))
    scheduler.add(Job("planning", timedelta(minutes=15), cycle.run))
    scheduler.add(Job("re-plan", timedelta(minutes=1), cycle.check_changes))
    end = START + timedelta(hours=24)
    t = START
    while t < end:
        t_next = t + timedelta(minutes=1)
        twin.advance_to(t_next)
        await scheduler.run(until=t_next)
        t = t_next
    # every EV left with at least what its owner asked for
    assert len(twin.departures) == 3
    assert all(d.met for d in twin.departures), twin.departures
    # the plans used discharge at the evening peak on the V2X chargers, never on the 1.6 one
    assert plans.saved
    evening = [p for p in plans.saved if p["start_at"].hour == 16]
    assert evening
    by_ev = {e["id"]: e for e in evening[-1]["plan"]["evs"]}
    assert min(x for x in by_ev["ev-0"]["p_kw"] if x is not None) < 0
    assert min(x for x in by_ev["ev-2"]["p_kw"] if x is not None) >= 0
    # a plug-in triggered a re-plan between cycles, and nothing failed
    assert any("plug-in" in s for s in statuses)
    assert not any("failed" in s for s in statuses)
    # energy is conserved: what the batteries gained is what went in minus what came out, with losses
    gained_kwh = sum(d.soc_kwh - 18.0 for d in twin.departures)
    assert math.isclose(gained_kwh, twin.energy_in_kwh * 0.92 - twin.energy_out_kwh / 0.92, rel_tol=1e-9)


async def test_a_plan_is_on_record_before_any_charger_gets_it() -> None:
    at = START + timedelta(hours=5)  # every EV is home
    clock = SimulatedClock(at)
    twin = _twin()
    twin.advance_to(at)
    plans = MemoryPlans()
    stored_when_sent: list[int] = []

    class DyingGateway:
        """The platform dies while the schedules are on their way."""

        async def send_schedules(self, schedules: object) -> list[object]:
            stored_when_sent.append(len(plans.saved))
            raise ConnectionError("killed during the push")

    cycle = PlanningCycle(
        fleet=twin,
        prices=EveningPeakPrices(),
        signals=GridSignalBook(),
        plans=plans,
        gateway=DyingGateway(),  # type: ignore[arg-type]
        clock=clock,
        rules=load_rules(),
        build_session=needs_session,
    )
    with pytest.raises(ConnectionError):
        await cycle.start_up(at)
    assert stored_when_sent == [1]
    [saved] = plans.saved
    assert saved["trigger"] == "start-up"
    assert saved["n_evs"] == 3
