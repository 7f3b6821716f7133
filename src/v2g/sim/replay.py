"""Replay a recorded frequency day on a fleet of simulated EVs holding committed reserves.

Every EV gets a reserve-aware baseline (charge towards its departure target, keep headroom for
FCR-N with the 1.34 power reservation, and leftover room for FCR-D up). Each hour the group commits
the reserve of the EVs that stay plugged in for the whole hour and one more and could still reach
their departure target after a fully activated hour (floored to the 0.1 MW bid resolution). A few
chargers fail during the day (communication loss); their share is re-allocated at once. The
platform's dispatch loop (:func:`v2g.services.dispatch.loop.run_frequency_dispatch`) drives the
central dispatcher through the twin gateway; this module only supplies the simulated world: the
fleet, its departures and failures, the baselines and the hourly commitments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from v2g.dispatch.ler import EnergyState, LerManager
from v2g.dispatch.pool import BoolArray, FloatArray, ReservePool
from v2g.dispatch.verification import DeliveryRecord, Telemetry
from v2g.fleet.model import PriceArea
from v2g.markets.commitments import Commitment
from v2g.markets.rules import MarketRules, Product
from v2g.services.dispatch.central import CentralDispatcher
from v2g.services.dispatch.loop import HourPlan, run_frequency_dispatch
from v2g.services.dispatch.ports import FrequencySample, FrequencySource
from v2g.sim.twin import TwinFleet, TwinGateway, UnitSpec

GROUP_ID = "replay"


@dataclass
class ReplaySummary:
    """What came out of a replay."""

    evs: int
    seconds: int
    required_mwh: float = 0.0
    delivered_mwh: float = 0.0
    departures: int = 0
    missed_targets: list[str] = field(default_factory=list)
    min_soc_margin_kwh: float = math.inf
    below_min_soc: list[str] = field(default_factory=list)
    records: list[DeliveryRecord] = field(default_factory=list)
    committed_mwh: dict[Product, float] = field(default_factory=dict)
    repayment_eur: Decimal = Decimal(0)
    failures: int = 0
    telemetry: list[Telemetry] = field(default_factory=list)
    telemetry_gaps: int = 0
    filled_samples: int = 0

    @property
    def delivered_ratio(self) -> float:
        """Delivered over required energy."""
        return self.delivered_mwh / self.required_mwh if self.required_mwh > 0 else 1.0


@dataclass(frozen=True, slots=True)
class ReplayEv:
    """One simulated EV of the replay fleet."""

    spec: UnitSpec
    departure_s: int  # seconds from the start; beyond the window = stays
    target_kwh: float


def make_fleet(n: int, seconds: int, *, seed: int = 7) -> list[ReplayEv]:
    """A plausible fleet: 60-80 kWh packs, 11 kW bidirectional chargers, departures in the second half."""
    rng = np.random.default_rng(seed)
    evs = []
    for i in range(n):
        battery = float(rng.uniform(60.0, 80.0))
        soc = battery * float(rng.uniform(0.45, 0.6))
        departure = int(rng.uniform(0.5, 1.5) * seconds)
        evs.append(
            ReplayEv(
                UnitSpec(
                    charger_id=f"cp{i:05d}",
                    ev_id=f"ev{i:05d}",
                    battery_kwh=battery,
                    soc_kwh=soc,
                    soc_min_kwh=0.2 * battery,
                    p_max_kw=11.0,
                    p_min_kw=-11.0,
                ),
                departure_s=departure,
                # what the owner asked for: feasible at 3 kW before departure (a planner would refuse more)
                target_kwh=min(0.8 * battery, soc + min(float(rng.uniform(5.0, 15.0)), 3.0 * (departure / 3600 - 1))),
            )
        )
    return evs


@dataclass
class _ReplayWorld:
    """The simulated side of a replay: the twin fleet, departures, failures, baselines, commitments."""

    fleet: TwinFleet
    pool: ReservePool
    departure_s: np.ndarray
    target_kwh: FloatArray
    r_n: FloatArray
    r_dup: FloatArray
    fail_at: np.ndarray
    delay_s: float
    price_eur_per_mw_h: Decimal
    summary: ReplaySummary
    start_at: datetime
    stays: BoolArray = field(init=False)

    def __post_init__(self) -> None:
        self.stays = np.zeros(len(self.pool), dtype=bool)

    # the dispatch loop's view of the fleet (DispatchedFleet)
    def energy(self) -> EnergyState:
        return EnergyState(self.fleet.soc_kwh, self.fleet.soc_min_kwh, self.fleet.battery_kwh)

    async def measure(self, sample: FrequencySample, step_s: float) -> tuple[FloatArray, BoolArray]:
        fleet, k = self.fleet, round((sample.at - self.start_at).total_seconds())
        failing = self.fail_at == k
        if failing.any():
            fleet.online[failing] = False  # silent after its setpoint was sent: noticed at the next sample
        delay = self.delay_s * step_s
        fleet.advance(delay, sample.f_hz)  # until the new setpoint takes effect the previous one holds
        p_before = fleet.p_kw.copy()
        fleet.advance(step_s - delay, sample.f_hz)
        p_mean = (p_before * delay + fleet.p_kw * (step_s - delay)) / step_s
        return p_mean, fleet.online.copy()

    def plan_hour(self, hour_start_at: datetime) -> HourPlan:
        """Commit the reserve of the EVs that stay at least an hour after this one and could still reach
        their departure target at full charging power even after a fully activated hour."""
        fleet, pool = self.fleet, self.pool
        h1 = round((hour_start_at - self.start_at).total_seconds()) + 3600
        hours_after = np.maximum((self.departure_s - h1) / 3600.0, 0.0)
        worst_kwh = (self.r_n + self.r_dup / 3.0) / fleet.eta_d
        reachable = fleet.soc_kwh - worst_kwh + 0.9 * fleet.p_max_kw * fleet.eta_c * hours_after >= self.target_kwh
        self.stays = (self.departure_s >= h1 + 3600) & reachable
        commitments = []
        committed_kw: dict[Product, float] = {}
        for product in (Product.FCR_N, Product.FCR_D_UP):
            mw = math.floor(float(pool.reserve_kw[product][self.stays].sum()) / 100.0) / 10.0
            committed_kw[product] = mw * 1000.0
            if mw > 0:
                h = (h1 - 3600) // 3600
                commitments.append(
                    Commitment(
                        id=f"replay-{product.value}-{h}",
                        bid_id=f"replay-{product.value}-{h}",
                        group_id=GROUP_ID,
                        product=product,
                        price_area=PriceArea.SE3,
                        start_at=hour_start_at,
                        end_at=hour_start_at + timedelta(hours=1),
                        mw=mw,
                        price_eur_per_mw_h=self.price_eur_per_mw_h,
                    )
                )
        return HourPlan(commitments, committed_kw, self.stays)

    def before_sample(self, k: int, sample: FrequencySample) -> None:
        """Departures of second ``k``, and every quarter a new baseline towards the departure targets."""
        fleet, pool, stays = self.fleet, self.pool, self.stays
        leaving = pool.available & (self.departure_s <= k)
        if leaving.any():
            self.summary.departures += int(leaving.sum())
            for i in np.nonzero(leaving)[0]:
                if fleet.soc_kwh[i] + 1e-6 < self.target_kwh[i]:
                    self.summary.missed_targets.append(pool.ev_ids[i])
            pool.available[leaving] = False
            fleet.online[leaving] = False
        if k % 900 == 0:
            # EVs holding reserve aim 1 h before departure with a buffer; EVs in their last
            # (uncommitted) hour charge whatever is still missing at up to full power.
            left_h = np.where(
                stays,
                np.maximum((self.departure_s - k) / 3600.0 - 1.0, 0.25),
                np.maximum((self.departure_s - k) / 3600.0 - 0.1, 1 / 60),
            )
            need = np.maximum(self.target_kwh + np.where(stays, 0.5 * self.r_n, 0.1) - fleet.soc_kwh, 0.0) / fleet.eta_c
            room = np.where(stays, np.minimum(fleet.p_max_kw - 1.34 * self.r_n, 4.0), fleet.p_max_kw)
            pool.baseline_p_kw = np.clip(need / left_h, 0.0, np.maximum(room, 0.0))


async def replay(
    source: FrequencySource,
    start_at: datetime,
    seconds: int,
    evs: list[ReplayEv],
    rules: MarketRules,
    *,
    price_eur_per_mw_h: Decimal = Decimal("20"),
    failures_per_hour: float = 0.002,
    seed: int = 11,
) -> ReplaySummary:
    """Run the fleet through ``seconds`` of 1 s frequency samples from ``start_at`` and verify delivery per hour."""
    n = len(evs)
    fleet = TwinFleet([e.spec for e in evs], now=start_at)
    rng = np.random.default_rng(seed)
    departure = np.array([e.departure_s for e in evs])
    target = np.array([e.target_kwh for e in evs])
    p_max, p_min = fleet.p_max_kw, fleet.p_min_kw
    # Reserve-aware baseline: reach the target 1 h before departure (or by the end of the window)
    hours_left = np.maximum(np.minimum(departure, seconds) / 3600.0 - 1.0, 0.5)
    need = np.maximum(target - fleet.soc_kwh, 0.0) / fleet.eta_c
    base0 = np.clip(need / hours_left, 0.0, 4.0)
    r_n = np.clip(np.minimum(p_max - base0, base0 - p_min) / 1.34, 0.0, None)
    r_n = np.floor(r_n * 10) / 10
    r_dup = np.clip((base0 - p_min) - 1.34 * r_n, 0.0, None) * 0.5
    pool = ReservePool(
        ev_ids=[e.spec.ev_id for e in evs],
        charger_ids=[e.spec.charger_id for e in evs],
        reserve_kw={Product.FCR_N: r_n, Product.FCR_D_UP: r_dup, Product.FCR_D_DOWN: np.zeros(n)},
        baseline_p_kw=base0.copy(),
        p_min_kw=p_min.copy(),
        p_max_kw=p_max.copy(),
    )
    summary = ReplaySummary(evs=n, seconds=seconds)
    # chargers that fail during the day (communication loss): each second a unit fails with this probability
    fail_at = np.where(rng.random(n) < failures_per_hour * seconds / 3600.0, rng.integers(0, seconds, n), -1)
    world = _ReplayWorld(
        fleet,
        pool,
        departure,
        target,
        r_n,
        r_dup,
        fail_at,
        min(max(e.spec.delay_s for e in evs), 0.9),
        price_eur_per_mw_h,
        summary,
        start_at,
    )
    dispatcher = CentralDispatcher(pool, {}, TwinGateway(fleet), rules, ler=LerManager(rules, n))
    report = await run_frequency_dispatch(
        source,
        dispatcher,
        world,
        group_id=GROUP_ID,
        plan_hour=world.plan_hour,
        rules=rules,
        before_sample=world.before_sample,
    )
    summary.seconds = report.seconds
    summary.failures = len(report.lost_evs)
    summary.records = report.records
    summary.required_mwh = report.required_mwh
    summary.delivered_mwh = report.delivered_mwh
    summary.repayment_eur = report.repayment_eur
    summary.committed_mwh = report.committed_mwh
    summary.telemetry = report.telemetry
    summary.telemetry_gaps = report.telemetry_gaps
    summary.min_soc_margin_kwh = report.min_soc_margin_kwh
    summary.below_min_soc = [pool.ev_ids[i] for i in np.nonzero(fleet.soc_kwh < fleet.soc_min_kwh - 1e-6)[0]]
    return summary
