"""A re-plan keeps the sessions of EVs nothing changed about, but never one whose departure has come; an EV
still plugged in after its departure (its owner did not leave) is planned again for its next one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tests.integration.runtime.test_cycle_on_twin import MemoryPlans
from v2g.fleet.model import ChargerProtocol, PriceArea
from v2g.planning.model import EvSession, Product
from v2g.planning.rules import load_rules
from v2g.services.devices.ports import Ack
from v2g.services.planning.cycle import PlanningCycle
from v2g.services.planning.ports import AreaLimits, PluggedEv
from v2g.services.planning.signal_book import GridSignalBook
from v2g.sim.clock import SimulatedClock

START = datetime(2026, 11, 9, 17, 0, tzinfo=UTC)
DEPARTURES = {"ev-leaves": START + timedelta(minutes=30), "ev-stays": START + timedelta(hours=12)}


class FlatPrices:
    def day_ahead_eur_per_mwh(self, area: PriceArea, start_at: datetime, n_quarters: int) -> tuple[float, ...]:
        return tuple(50.0 + k for k in range(n_quarters))

    def reserve_eur_per_mw_h(self, product: Product, start_at: datetime, n_hours: int) -> tuple[float, ...]:
        return (0.0,) * n_hours


class Fleet:
    def plugged_in(self) -> list[PluggedEv]:
        return [
            PluggedEv(
                ev_id, "c", f"CP-{ev_id}", f"s-{ev_id}", "GA-1", PriceArea.SE3, 60.0, 11.0, 10.0, 11.0, 10.0,
                ChargerProtocol.OCPP21, True, True, 25.0, 3.0, True, soc_percent=40.0, soc_measured_at=START,
            )
            for ev_id in DEPARTURES
        ]  # fmt: skip

    def area_limits(self, area_ids: Sequence[str]) -> list[AreaLimits]:
        return [AreaLimits("GA-1", PriceArea.SE3, 100.0, 50.0)]


class Gateway:
    async def send_schedules(self, schedules: Sequence[object]) -> list[Ack]:
        return []


def _next_departure(ev_id: str, now: datetime) -> datetime:
    """The owner's daily departure: the same time every day."""
    at = DEPARTURES[ev_id]
    while at <= now:
        at += timedelta(days=1)
    return at


def session(ev: PluggedEv, now: datetime, horizon_end: datetime) -> tuple[EvSession, dict[str, str]]:
    built = EvSession(
        ev_id=ev.ev_id,
        site_id=ev.site_id,
        battery_kwh=ev.battery_kwh,
        soc_kwh=24.0,
        min_soc_kwh=12.0,
        target_soc_kwh=30.0,
        arrival_at=now,
        departure_at=_next_departure(ev.ev_id, now),
        max_charge_kw=ev.max_charge_kw,
        max_discharge_kw=ev.max_discharge_kw,
        charger_id=ev.charger_id,
    )
    return built, {"departure_at": "test"}


def _cycle(clock: SimulatedClock) -> PlanningCycle:
    return PlanningCycle(
        fleet=Fleet(),
        prices=FlatPrices(),
        signals=GridSignalBook(),
        plans=MemoryPlans(),
        gateway=Gateway(),  # type: ignore[arg-type]
        clock=clock,
        rules=load_rules(),
        build_session=session,
    )


async def test_an_ev_is_not_held_past_its_departure_and_is_planned_again_if_it_stays() -> None:
    clock = SimulatedClock(START)
    cycle = _cycle(clock)
    first = await cycle.plan_now(trigger="first", start_at=START)
    assert first.plan is not None
    assert {p.ev_id for p in first.plan.ev_plans} == set(DEPARTURES)

    # 17:10: the other EV changes; the one leaving at 17:30 keeps its session (it still has a quarter)
    clock.advance_to(START + timedelta(minutes=10))
    cycle.mark_changed("ev-stays", "plug-in")
    assert await cycle.check_changes(clock.now()) is not None
    assert cycle.last is not None
    assert cycle.last.plan is not None
    assert {p.ev_id for p in cycle.last.plan.ev_plans} == set(DEPARTURES)

    # 17:20: the next quarter starts at its departure; a re-plan about the other EV does not hold it
    clock.advance_to(START + timedelta(minutes=20))
    cycle.mark_changed("ev-stays", "SoC deviation")
    assert await cycle.check_changes(clock.now()) is not None
    assert cycle.last.plan is not None
    assert {p.ev_id for p in cycle.last.plan.ev_plans} == {"ev-stays"}
    assert "departure_at" in cycle.last.excluded["ev-leaves"]

    # 17:21-17:29: nothing new (the EV is due to leave)
    for minute in range(21, 30):
        clock.advance_to(START + timedelta(minutes=minute))
        assert await cycle.check_changes(clock.now()) is None

    # 17:30: still plugged in, its owner did not leave: the quarterly job plans it for tomorrow's departure
    clock.advance_to(START + timedelta(minutes=30))
    status = await cycle.run(clock.now())
    assert "stayed past its departure" in status
    assert cycle.last.problem is not None
    sessions = {s.ev_id: s for s in cycle.last.problem.evs}
    assert sessions["ev-leaves"].departure_at == DEPARTURES["ev-leaves"] + timedelta(days=1)


async def test_a_planned_ev_still_plugged_in_after_its_departure_is_planned_again() -> None:
    clock = SimulatedClock(START)
    cycle = _cycle(clock)
    assert (await cycle.plan_now(trigger="first", start_at=START)).plan is not None
    clock.advance_to(START + timedelta(minutes=31))  # no plan since 17:00: its planned session ended at 17:30
    status = await cycle.check_changes(clock.now())
    assert status is not None
    assert "stayed past its departure" in status
    assert cycle.last is not None
    assert cycle.last.problem is not None
    sessions = {s.ev_id: s for s in cycle.last.problem.evs}
    assert sessions["ev-leaves"].departure_at == DEPARTURES["ev-leaves"] + timedelta(days=1)
    assert sessions["ev-stays"].departure_at == DEPARTURES["ev-stays"]


async def test_an_ev_behind_its_path_shortly_before_departure_is_planned_again() -> None:
    """Inside ``departure_window`` a small shortfall against the plan's path (a reserve activation took
    energy) re-plans the EV; far from its departure only the wide tolerance does."""
    clock = SimulatedClock(START)
    cycle = _cycle(clock)
    first = await cycle.plan_now(trigger="first", start_at=START)
    assert first.plan is not None
    leaving = next(p for p in first.plan.ev_plans if p.ev_id == "ev-leaves")
    assert leaving.p_kw[0] > 1.0  # it charges now to reach its target by 17:30
    clock.advance_to(START + timedelta(minutes=10))

    class Fresh(Fleet):  # a reading taken now, to 0.1 %: 24.06 kWh, behind the plan's path
        def plugged_in(self) -> list[PluggedEv]:
            return [replace(e, soc_percent=40.1, soc_measured_at=clock.now()) for e in super().plugged_in()]

    cycle.fleet = Fresh()
    cycle._detect_deviations()
    assert cycle.changed.get("ev-leaves") == "behind its path before departure"
    assert cycle.changed.get("ev-stays") != "behind its path before departure"  # leaves in 12 h
    status = await cycle.check_changes(clock.now())
    assert status is not None
    assert "behind its path before departure" in status
    # with a window that has not opened yet, the same shortfall is left to the hourly plan
    relaxed = _cycle(SimulatedClock(START))
    relaxed.config = replace(relaxed.config, departure_window=timedelta(minutes=5))
    await relaxed.plan_now(trigger="first", start_at=START)
    relaxed.clock.advance_to(START + timedelta(minutes=10))  # type: ignore[attr-defined]
    relaxed.fleet = Fresh()
    relaxed._detect_deviations()
    assert "ev-leaves" not in relaxed.changed


async def test_a_reading_in_whole_percent_counts_as_behind_only_beyond_a_percent() -> None:
    """A whole-percent SoC may be up to a percent off: only a shortfall beyond that re-plans; the reading is
    compared with the path at the time it was taken."""
    clock = SimulatedClock(START)
    cycle = _cycle(clock)
    await cycle.plan_now(trigger="first", start_at=START)
    assert cycle.last is not None
    assert cycle.last.plan is not None
    path = next(p for p in cycle.last.plan.ev_plans if p.ev_id == "ev-leaves").soc_kwh
    clock.advance_to(START + timedelta(minutes=10))
    at_5 = float(path[0] + (path[1] - path[0]) / 3)  # the path 5 minutes in
    readings = {
        "ev-leaves": (100.0 * (at_5 - 0.3) // 60.0, START + timedelta(minutes=5)),  # 0.3-0.9 kWh behind, whole %
    }

    class Whole(Fleet):
        def plugged_in(self) -> list[PluggedEv]:
            evs = super().plugged_in()
            return [
                replace(e, soc_percent=readings[e.ev_id][0], soc_measured_at=readings[e.ev_id][1])
                if e.ev_id in readings
                else e
                for e in evs
            ]

    cycle.fleet = Whole()
    cycle._detect_deviations()
    behind = at_5 - 0.6 * readings["ev-leaves"][0]
    assert (cycle.changed.get("ev-leaves") == "behind its path before departure") == (behind > 0.6), behind
