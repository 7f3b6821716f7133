"""Frequency dispatch hour by hour: idle without commitments, the one loop in a committed hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np

from tests.integration.runtime.test_cycle_on_twin import EveningPeakPrices, MemoryPlans, needs_session
from v2g.fleet.model import ChargerProtocol, PriceArea
from v2g.markets.commitments import Commitment
from v2g.markets.rules import Product, default_rules
from v2g.planning.rules import load_rules
from v2g.services.dispatch.service import FrequencyDispatch
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


async def test_idle_hours_send_nothing_and_a_committed_hour_is_dispatched_and_verified() -> None:
    clock = SimulatedClock(START)
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
    sold = Commitment(
        "c1", "b1", "bsp-se3", Product.FCR_N, PriceArea.SE3, START + HOUR, START + 2 * HOUR, 0.009, Decimal("20")
    )
    dispatch = FrequencyDispatch(
        feed=Steady(),
        gateway=twin.gateway,
        rules=default_rules(),
        clock=clock,
        latest_plan=cycle.latest_plan,
        commitments=lambda start, end: [c for c in (sold,) if c.start_at < end and c.end_at > start],
        limits_kw=twin.limits_kw,
        online=lambda: {ev.charger_id for ev in twin.plugged_in()},
        fleet_for=twin.dispatched,
    )
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
    assert tiny.acks == []
    moved = await dispatcher.on_frequency(49.90)  # 50 mHz more: 4 kW each
    assert len(moved.acks) == 3
