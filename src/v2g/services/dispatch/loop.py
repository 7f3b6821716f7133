"""The frequency dispatch loop: one frequency sample after the other, from any :class:`FrequencySource`.

Each sample: the scenario's events of that second (departures, baseline re-plans) are applied, energy
management (NEM/AEM) runs, the :class:`CentralDispatcher` allocates the required response and sends the
setpoints through its gateway (a charger that does not accept is taken out and its share re-allocated
in the same call), and the fleet reports what it actually did. Every hour the loop asks for the
commitments in force and who backs them; at the end of each hour the delivery is verified on what was
measured. Real-time telemetry to the TSO is built every ``telemetry_every_s`` seconds.

The same loop runs in the platform (live or recorded frequency, OCPP gateway) and in the digital twin
(the twin gateway and its simulated fleet).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import numpy as np

from v2g.dispatch.ler import endurance_min
from v2g.dispatch.pool import BoolArray
from v2g.dispatch.verification import (
    DeliveryRecord,
    Telemetry,
    maintained_capacity_kw,
    merge_delivery,
    telemetry,
    telemetry_gaps,
    verify_hour,
)
from v2g.markets.commitments import Commitment
from v2g.markets.rules import FCR_PRODUCTS, MarketRules, Product
from v2g.services.dispatch.central import CentralDispatcher
from v2g.services.dispatch.ports import DispatchedFleet, FrequencySample, FrequencySource

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True, slots=True)
class HourPlan:
    """The commitments of one delivery hour, the power committed per product, and the EVs backing them."""

    commitments: Sequence[Commitment]
    committed_kw: Mapping[Product, float]
    providing: BoolArray


@dataclass
class DispatchReport:
    """What the loop collected: delivery records per hour and product, telemetry, losses."""

    seconds: int = 0
    records: list[DeliveryRecord] = field(default_factory=list)
    telemetry: list[Telemetry] = field(default_factory=list)
    telemetry_gaps: int = 0
    committed_mwh: dict[Product, float] = field(default_factory=dict)
    lost_evs: list[str] = field(default_factory=list)  # taken out because their charger did not accept
    min_soc_margin_kwh: float = math.inf

    @property
    def required_mwh(self) -> float:
        return sum(r.required_mwh for r in self.records)

    @property
    def delivered_mwh(self) -> float:
        return sum(r.delivered_mwh for r in self.records)

    @property
    def repayment_eur(self) -> Decimal:
        return sum((r.repayment_eur for r in self.records), Decimal(0))


@dataclass
class _Hour:
    start_at: datetime
    plan: HourPlan
    f_hz: list[float]
    delivered: np.ndarray
    held: dict[Product, np.ndarray]
    measured: np.ndarray = field(default_factory=lambda: np.zeros(SECONDS_PER_HOUR))  # group power, kW
    verified: dict[Product, DeliveryRecord] = field(default_factory=dict)  # the seconds up to ``checked``
    checked: int = 0


async def run_frequency_dispatch(
    source: FrequencySource,
    dispatcher: CentralDispatcher,
    fleet: DispatchedFleet,
    *,
    group_id: str,
    plan_hour: Callable[[datetime], HourPlan],
    rules: MarketRules,
    before_sample: Callable[[int, FrequencySample], Awaitable[None] | None] | None = None,
    telemetry_every_s: int = 10,
    checkpoint: Callable[[list[DeliveryRecord]], Awaitable[None]] | None = None,
    checkpoint_every_s: int = 60,
) -> DispatchReport:
    """Drive ``dispatcher`` from ``source`` until the source ends; verify delivery hour by hour.

    ``plan_hour(hour_start_at)`` gives the commitments of each delivery hour (asked at its first
    sample); ``before_sample(k, sample)`` applies the events of second ``k`` (an EV leaving, a new
    baseline) before the dispatcher answers it. Delivery verification works on 1 s samples.
    ``checkpoint(records)`` gets the delivery of the hour so far every ``checkpoint_every_s`` seconds
    (verified stretch by stretch, so the hour is not verified again each time), to be kept where a
    crash does not lose it.
    """
    step_s = float(source.step_s)
    if step_s != 1.0:
        msg = f"source.step_s: {step_s} s; delivery verification needs 1 s samples"
        raise ValueError(msg)
    pool = dispatcher.pool
    n = len(pool)
    report = DispatchReport()
    hour: _Hour | None = None

    def verify(h: _Hour, start: int, end: int) -> list[DeliveryRecord]:
        return verify_hour(
            group_id=group_id,
            hour_start_at=h.start_at,
            commitments=h.plan.commitments,
            f_hz=np.array(h.f_hz[start:end]),
            delivered_kw_by_ev=h.delivered[start:end],
            ev_ids=pool.ev_ids,
            held_kw={p: v[start:end] for p, v in h.held.items()},
            rules=rules,
            measured_kw=h.measured[start:end],
            rated_kw=float(np.maximum(pool.p_max_kw, -pool.p_min_kw).sum()),
        )

    def close(h: _Hour) -> None:
        seconds = len(h.f_hz)
        for product, kw in h.plan.committed_kw.items():
            report.committed_mwh[product] = report.committed_mwh.get(product, 0.0) + kw / 1000.0 * seconds / 3600
        report.records.extend(verify(h, 0, seconds))

    async def progress(h: _Hour) -> None:
        assert checkpoint is not None
        seconds = len(h.f_hz)
        for record in verify(h, h.checked, seconds):
            before = h.verified.get(record.product)
            h.verified[record.product] = record if before is None else merge_delivery(before, record, rules)
        h.checked = seconds
        await checkpoint(list(h.verified.values()))

    k = 0
    async for sample in source.samples():
        if k % SECONDS_PER_HOUR == 0:
            if hour is not None:
                close(hour)
            plan = plan_hour(sample.at)
            dispatcher.committed_kw = dict(plan.committed_kw)
            dispatcher.providing = plan.providing
            hour = _Hour(
                sample.at,
                plan,
                [],
                np.zeros((SECONDS_PER_HOUR, n)),
                {p: np.zeros(SECONDS_PER_HOUR) for p in FCR_PRODUCTS},
            )
        assert hour is not None
        if before_sample is not None:
            pending = before_sample(k, sample)
            if pending is not None:
                await pending
        f = sample.f_hz
        energy = fleet.energy()
        dispatcher.update_energy(energy, f)
        result = await dispatcher.on_frequency(f, dt_s=step_s if k else 0.0)
        report.lost_evs.extend(result.lost)
        p_mean, answered = await fleet.measure(sample, step_s)
        base = pool.baseline_p_kw + dispatcher.shift_kw
        i = len(hour.f_hz)
        hour.f_hz.append(f)
        # delivered response (grid-positive); a unit that did not answer delivers nothing
        hour.delivered[i] = np.where(pool.available, base - np.where(answered, p_mean, base), 0.0)
        hour.measured[i] = float(np.where(pool.available, np.where(answered, p_mean, base), 0.0).sum())
        # maintained capacity (FCR-TR v1.1 eq. 29-31) from the providing EVs' headroom at the setpoint
        providing = pool.available & hour.plan.providing
        up = float(np.maximum(base - pool.p_min_kw, 0.0)[providing].sum())
        down = float(np.maximum(pool.p_max_kw - base, 0.0)[providing].sum())
        maintained = maintained_capacity_kw(up_room_kw=up, down_room_kw=down, capacity_kw=hour.plan.committed_kw)
        for product in FCR_PRODUCTS:
            hour.held[product][i] = maintained[product]
        if k % telemetry_every_s == 0:
            up_min, down_min = endurance_min(pool, energy, dispatcher.shift_kw)
            ler = dispatcher.ler
            report.telemetry.append(
                telemetry(
                    at=sample.at,
                    group_id=group_id,
                    maintained_kw={p: float(hour.held[p][i]) for p in FCR_PRODUCTS},
                    committed_kw=dict(hour.plan.committed_kw),
                    endurance_up_min=up_min,
                    endurance_down_min=down_min,
                    weights_kw=np.where(providing, pool.reserve_kw[Product.FCR_N], 0.0),
                    nem_active=ler is not None and bool((ler.nem_active & providing).any()),
                    aem_active=ler is not None and bool((ler.aem_active & providing).any()),
                )
            )
        after = fleet.energy()
        report.min_soc_margin_kwh = min(report.min_soc_margin_kwh, float((after.soc_kwh - after.soc_min_kwh).min()))
        if checkpoint is not None and len(hour.f_hz) % checkpoint_every_s == 0:
            await progress(hour)
        k += 1
    if hour is not None:
        close(hour)
    report.seconds = k
    report.telemetry_gaps = len(telemetry_gaps([t.at for t in report.telemetry], rules))
    return report
