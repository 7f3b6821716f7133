"""Frequency dispatch hour by hour: idle without commitments, the one loop in a committed hour, its delivery kept
across a restart, a committed hour without a plan looked at again, chargers taking their share again."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from tests.integration.runtime.test_cycle_on_twin import EveningPeakPrices, MemoryPlans, needs_session
from v2g.devices.commands import Ack, AckStatus, Setpoint
from v2g.dispatch.verification import DeliveryRecord
from v2g.fleet.model import ChargerProtocol, PriceArea
from v2g.markets.commitments import Commitment
from v2g.markets.rules import Product, default_rules
from v2g.planning.model import FleetPlan
from v2g.planning.rules import load_rules
from v2g.services.dispatch.service import REJOIN_EVERY_S, RETRY, FrequencyDispatch
from v2g.services.planning.cycle import PlanningCycle
from v2g.services.planning.ports import AreaLimits
from v2g.services.planning.signal_book import GridSignalBook
from v2g.sim.clock import SimulatedClock
from v2g.sim.operating_twin import OperatingTwin, PlugSession, TwinEv

START = datetime(2025, 11, 11, 20, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class Steady:
    """A grid running 50 mHz low: FCR-N must deliver half of its capacity upwards."""

    def f_hz_at(self, at: datetime) -> float:
        return 49.95


def _twin() -> OperatingTwin:
    evs = [
        TwinEv(
            f"ev-{i}", f"c-{i}", f"CP-{i}", f"s-{i}", "GA-1", PriceArea.SE3, ChargerProtocol.OCPP21, 60.0, 11.0, 10.0
        )
        for i in range(3)
    ]
    sessions = {ev.ev_id: [PlugSession(START, START + timedelta(hours=10), 30.0, 40.0)] for ev in evs}
    return OperatingTwin(evs, sessions, START, [AreaLimits("GA-1", PriceArea.SE3, 100.0, 50.0)])


async def _planned_twin(clock: SimulatedClock) -> tuple[OperatingTwin, PlanningCycle]:
    """The three twin EVs, planned at START."""
    twin = _twin()
    cycle = PlanningCycle(
        fleet=twin,
        prices=EveningPeakPrices(),
        signals=GridSignalBook(),
        plans=MemoryPlans(),
        gateway=twin.gateway,
        clock=clock,
        rules=load_rules(),
        build_session=needs_session,
    )
    await cycle.plan_now(trigger="test", start_at=START)
    return twin, cycle


def _one_committed_hour(
    clock: SimulatedClock, twin: OperatingTwin, latest_plan: Callable[[], FleetPlan | None]
) -> FrequencyDispatch:
    """Dispatch of the twin with 9 kW of FCR-N sold for the second hour, on a grid running 50 mHz low."""
    sold = Commitment(
        "c1", "b1", "bsp-se3", Product.FCR_N, PriceArea.SE3, START + HOUR, START + 2 * HOUR, 0.009, Decimal("20")
    )
    return FrequencyDispatch(
        feed=Steady(),
        gateway=twin.gateway,
        rules=default_rules(),
        clock=clock,
        latest_plan=latest_plan,
        commitments=lambda start, end: [c for c in (sold,) if c.start_at < end and c.end_at > start],
        limits_kw=twin.limits_kw,
        online=lambda: {ev.charger_id for ev in twin.plugged_in()},
        fleet_for=twin.dispatched,
    )


async def test_idle_hours_send_nothing_and_a_committed_hour_is_dispatched_and_verified() -> None:
    clock = SimulatedClock(START)
    twin, cycle = await _planned_twin(clock)
    dispatch = _one_committed_hour(clock, twin, cycle.latest_plan)
    sent_by_schedules = twin.gateway.commands
    await dispatch.advance_to(START + HOUR)  # nothing committed in the first hour
    assert twin.gateway.commands == sent_by_schedules
    assert dispatch.status() is None
    clock.advance_to(START + HOUR)
    await dispatch.advance_to(START + HOUR + timedelta(seconds=60))
    status = dispatch.status()
    assert status is not None
    assert status.evs == 3
    assert status.committed_kw == {"fcr_n": 9.0}
    assert twin.gateway.commands > sent_by_schedules  # one setpoint per EV and second
    await dispatch.stop()
    [report] = dispatch.reports
    assert report.seconds == 60
    assert report.records
    # 50 mHz low: FCR-N delivers up to half of 9 kW; the fleet (which moved second by second) did
    assert 0.0 < report.delivered_mwh <= 0.0045 * 60 / 3600 * 1.2


async def test_a_charger_gets_a_new_setpoint_only_when_its_share_moves_by_the_deadband() -> None:
    from v2g.dispatch.pool import ReservePool
    from v2g.services.dispatch.central import CentralDispatcher

    twin = _twin()
    twin.advance_to(START + timedelta(minutes=1))
    products = (Product.FCR_N, Product.FCR_D_UP, Product.FCR_D_DOWN)
    pool = ReservePool(
        ev_ids=["ev-0", "ev-1", "ev-2"],
        charger_ids=["CP-0", "CP-1", "CP-2"],
        reserve_kw={p: np.full(3, 8.0 if p is Product.FCR_N else 0.0) for p in products},
        baseline_p_kw=np.zeros(3),
        p_min_kw=np.full(3, -10.0),
        p_max_kw=np.full(3, 11.0),
    )
    dispatcher = CentralDispatcher(pool, {Product.FCR_N: 24.0}, twin.gateway, default_rules(), deadband_kw=0.5)
    first = await dispatcher.on_frequency(49.95)
    assert len(first.acks) == 3  # never sent: everybody gets one
    tiny = await dispatcher.on_frequency(49.951)  # 1 mHz: 0.08 kW each, inside the deadband
    assert list(tiny.acks) == []
    moved = await dispatcher.on_frequency(49.90)  # 50 mHz more: 4 kW each
    assert len(moved.acks) == 3


SOLD = Commitment(
    "c1", "b1", "bsp-se3", Product.FCR_N, PriceArea.SE3, START + HOUR, START + 2 * HOUR, 0.009, Decimal("20")
)


class MemoryDelivery:
    """The delivery log in memory: one record per group, product and hour, replaced on save."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, Product, datetime], DeliveryRecord] = {}
        self.saves = 0

    def delivered(self, hour_start_at: datetime) -> list[DeliveryRecord]:
        return [r for r in self.records.values() if r.hour_start_at == hour_start_at]

    def save(self, records: Sequence[DeliveryRecord]) -> None:
        self.saves += 1
        for r in records:
            self.records[(r.group_id, r.product, r.hour_start_at)] = r


class PatchyGateway:
    """The twin's gateway, with chargers that can be taken offline (a lost connection)."""

    def __init__(self, twin: OperatingTwin) -> None:
        self.twin = twin
        self.offline: set[str] = set()
        self.accepted: list[str] = []

    async def send_schedules(self, schedules: Sequence[object]) -> list[Ack]:
        return await self.twin.gateway.send_schedules(schedules)  # type: ignore[arg-type]

    async def send_setpoints(self, setpoints: Sequence[Setpoint]) -> list[Ack]:
        up = [sp for sp in setpoints if sp.charger_id not in self.offline]
        acks = {a.charger_id: a for a in await self.twin.gateway.send_setpoints(up)}
        self.accepted += [cid for cid, a in acks.items() if a.status is AckStatus.ACCEPTED]
        return [
            acks.get(sp.charger_id) or Ack(sp.charger_id, AckStatus.OFFLINE, "no live connection") for sp in setpoints
        ]

    async def configure_frequency_curve(self, *args: object) -> Ack:  # pragma: no cover - not used here
        raise NotImplementedError

    async def deactivate(self, charger_id: str) -> Ack:  # pragma: no cover - not used here
        raise NotImplementedError


async def _planned(clock: SimulatedClock, twin: OperatingTwin) -> PlanningCycle:
    cycle = PlanningCycle(
        fleet=twin,
        prices=EveningPeakPrices(),
        signals=GridSignalBook(),
        plans=MemoryPlans(),
        gateway=twin.gateway,
        clock=clock,
        rules=load_rules(),
        build_session=needs_session,
    )
    await cycle.plan_now(trigger="test", start_at=START)
    return cycle


def _dispatch(
    clock: SimulatedClock,
    twin: OperatingTwin,
    plan: object,
    *,
    gateway: object | None = None,
    delivery: MemoryDelivery | None = None,
) -> FrequencyDispatch:
    return FrequencyDispatch(
        feed=Steady(),
        gateway=gateway or twin.gateway,  # type: ignore[arg-type]
        rules=default_rules(),
        clock=clock,
        latest_plan=plan,  # type: ignore[arg-type]
        commitments=lambda start, end: [c for c in (SOLD,) if c.start_at < end and c.end_at > start],
        limits_kw=twin.limits_kw,
        online=lambda: {ev.charger_id for ev in twin.plugged_in()},
        fleet_for=twin.dispatched,
        delivery=delivery,
        checkpoint_s=60,
    )


async def test_the_delivery_of_an_hour_cut_by_a_crash_continues_in_one_record() -> None:
    clock = SimulatedClock(START)
    twin = _twin()
    cycle = await _planned(clock, twin)
    log = MemoryDelivery()
    first = _dispatch(clock, twin, cycle.latest_plan, delivery=log)
    clock.advance_to(START + HOUR)
    await first.advance_to(START + HOUR + timedelta(seconds=300))
    [kept] = log.records.values()
    assert (kept.group_id, kept.hour_start_at, kept.seconds) == ("bsp-se3", START + HOUR, 300)
    assert kept.required_mwh > 0
    # the process dies: its loop is gone without closing the hour (nothing more is stored)
    running = first._hour
    assert running is not None
    running.task.cancel()

    # a restarted platform opens the hour again 30 s later and continues the stored record
    clock.advance_to(START + HOUR + timedelta(seconds=330))
    second = _dispatch(clock, twin, cycle.latest_plan, delivery=log)
    await second.advance_to(START + HOUR + timedelta(seconds=600))
    await second.stop()
    [whole] = log.records.values()
    assert (whole.group_id, whole.hour_start_at, whole.seconds) == ("bsp-se3", START + HOUR, 300 + 270)
    assert whole.required_mwh > kept.required_mwh
    assert second.reports[-1].seconds == 270  # what this run answered itself
    assert whole.required_mwh == pytest.approx(kept.required_mwh + second.reports[-1].required_mwh)


async def test_a_committed_hour_without_a_plan_yet_is_dispatched_once_the_plan_comes() -> None:
    clock = SimulatedClock(START + HOUR)
    twin = _twin()
    cycle = await _planned(clock, twin)
    ready: list[FleetPlan | None] = [None]
    dispatch = _dispatch(clock, twin, lambda: ready[0])
    await dispatch.advance_to(START + HOUR + timedelta(seconds=10))  # a restart: no plan in force yet
    assert dispatch.status() is None
    ready[0] = cycle.latest_plan()
    await dispatch.advance_to(START + HOUR + timedelta(seconds=10) + RETRY + timedelta(seconds=5))
    status = dispatch.status()
    assert status is not None
    assert status.evs == 3
    await dispatch.stop()


async def test_a_charger_that_comes_back_takes_its_share_again_within_the_hour() -> None:
    clock = SimulatedClock(START + HOUR)
    twin = _twin()
    cycle = await _planned(clock, twin)
    gateway = PatchyGateway(twin)
    gateway.offline.add("CP-0")  # not yet reconnected when the hour opens
    dispatch = _dispatch(clock, twin, cycle.latest_plan, gateway=gateway)
    await dispatch.advance_to(START + HOUR + timedelta(seconds=20))
    assert "CP-0" not in gateway.accepted
    assert {"CP-1", "CP-2"} <= set(gateway.accepted)
    gateway.offline.clear()
    await dispatch.advance_to(START + HOUR + timedelta(seconds=20 + 2 * REJOIN_EVERY_S))
    assert "CP-0" in gateway.accepted
    await dispatch.stop()


class BrokenDelivery(MemoryDelivery):
    def save(self, records: Sequence[DeliveryRecord]) -> None:
        self.saves += 1
        raise ConnectionError("database unreachable")


async def test_a_delivery_log_that_fails_never_stops_the_dispatch() -> None:
    clock = SimulatedClock(START + HOUR)
    twin = _twin()
    cycle = await _planned(clock, twin)
    log = BrokenDelivery()
    dispatch = _dispatch(clock, twin, cycle.latest_plan, delivery=log)
    await dispatch.advance_to(START + HOUR + timedelta(seconds=150))
    assert log.saves == 2  # at 60 s and 120 s, both failed
    await dispatch.stop()
    assert log.saves == 3
    assert dispatch.reports[-1].seconds == 150


async def test_each_quarter_the_pool_follows_the_baseline_of_the_plan_in_force() -> None:
    """A re-plan inside a committed hour (an activation took energy before a departure) reaches the dispatched
    EVs at the next quarter: their baseline power is the new plan's; an EV the new plan no longer holds gets 0."""
    clock = SimulatedClock(START)
    twin, cycle = await _planned_twin(clock)
    first = cycle.latest_plan()
    assert first is not None
    in_force = [first]
    dispatch = _one_committed_hour(clock, twin, lambda: in_force[0])
    clock.advance_to(START + HOUR)
    await dispatch.advance_to(START + HOUR + timedelta(seconds=30))
    hour = dispatch._hour
    assert hour is not None
    pool = hour.dispatcher.pool
    k = int((START + HOUR + timedelta(minutes=15) - first.start_at) / timedelta(minutes=15))
    moved = [replace(p, p_kw=p.p_kw.copy()) for p in first.ev_plans if p.ev_id != "ev-2"]
    moved[0].p_kw[k] = 7.5
    in_force[0] = replace(first, ev_plans=tuple(moved))
    await dispatch.advance_to(START + HOUR + timedelta(minutes=15, seconds=1))
    baseline = dict(zip(pool.ev_ids, pool.baseline_p_kw.tolist(), strict=True))
    assert baseline[moved[0].ev_id] == pytest.approx(7.5)
    assert baseline[moved[1].ev_id] == pytest.approx(float(moved[1].p_kw[k]))
    assert baseline["ev-2"] == 0.0
    await dispatch.stop()
