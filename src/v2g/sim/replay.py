"""Replay a recorded frequency day on a fleet of simulated EVs holding committed reserves.

Every EV gets a reserve-aware baseline (charge towards its departure target, keep headroom for
FCR-N with the 1.34 power reservation, and leftover room for FCR-D up). Each hour the group commits
the reserve of the EVs that stay plugged in for the whole hour and one more and could still reach
their departure target after a fully activated hour (floored to the 0.1 MW bid resolution). A few
chargers fail during the day (communication loss); their share is re-allocated at once. Each second
the central dispatcher allocates the response the measured frequency requires across the EVs,
NEM/AEM manage their energy, the twin applies the setpoints, and the delivery is verified hour by
hour at the end.
"""

from __future__ import annotations

import csv
import gzip
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

from v2g.dispatch.ler import EnergyState, LerManager, endurance_min
from v2g.dispatch.pool import FloatArray, ReservePool, allocate, setpoints_kw
from v2g.dispatch.response import required_response_kw
from v2g.dispatch.verification import DeliveryRecord, Telemetry, telemetry, telemetry_gaps, verify_hour
from v2g.fleet.model import PriceArea
from v2g.markets.commitments import Commitment
from v2g.markets.rules import FCR_PRODUCTS, MarketRules, Product
from v2g.sim.twin import TwinFleet, UnitSpec
from v2g.units import ensure_utc, parse_utc


class FrequencyFileError(ValueError):
    """The frequency file is malformed; the message names the line."""


def read_frequency(
    path: Path, start_at: datetime | None = None, seconds: int | None = None
) -> tuple[datetime, FloatArray, int]:
    """1 s frequency samples (``utc,f_hz``; gzip or plain) from ``start_at`` for ``seconds``.

    Blank or missing seconds repeat the previous value; their count is returned.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    values: list[float] = []
    first: datetime | None = None
    filled = 0
    start = ensure_utc(start_at, field="start_at") if start_at else None
    with opener(path, "rt", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or [h.strip() for h in header[:2]] != ["utc", "f_hz"]:
            msg = f"{path.name} line 1: expected header 'utc,f_hz', got {header!r}"
            raise FrequencyFileError(msg)
        expected: datetime | None = None
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            at = parse_utc(row[0], field=f"{path.name} line {line} utc")
            if start is not None and at < start:
                continue
            if first is None:
                first = at
                expected = at
            assert expected is not None
            while expected < at:  # a gap: hold the last value
                values.append(values[-1] if values else 50.0)
                filled += 1
                expected += timedelta(seconds=1)
            text = row[1].strip() if len(row) > 1 else ""
            if text:
                try:
                    f = float(text)
                except ValueError as exc:
                    msg = f"{path.name} line {line} f_hz: {text!r} is not a number"
                    raise FrequencyFileError(msg) from exc
                if not 45.0 <= f <= 55.0:
                    msg = f"{path.name} line {line} f_hz: {f} is outside 45-55 Hz"
                    raise FrequencyFileError(msg)
            else:
                f = values[-1] if values else 50.0
                filled += 1
            values.append(f)
            expected = at + timedelta(seconds=1)
            if seconds is not None and len(values) >= seconds:
                break
    if first is None:
        msg = f"{path.name}: no samples at or after {start}"
        raise FrequencyFileError(msg)
    return first, np.array(values[: seconds or len(values)]), filled


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


def replay(
    frequency_hz: FloatArray,
    start_at: datetime,
    evs: list[ReplayEv],
    rules: MarketRules,
    *,
    price_eur_per_mw_h: Decimal = Decimal("20"),
    failures_per_hour: float = 0.002,
    seed: int = 11,
) -> ReplaySummary:
    """Run the fleet through the frequency series (1 s samples) and verify delivery per hour."""
    n, seconds = len(evs), len(frequency_hz)
    fleet = TwinFleet([e.spec for e in evs], now=start_at)
    rng = np.random.default_rng(seed)
    delay_s = min(max(e.spec.delay_s for e in evs), 0.9)
    departure = np.array([e.departure_s for e in evs])
    target = np.array([e.target_kwh for e in evs])
    p_max, p_min = fleet.p_max_kw, fleet.p_min_kw
    eta = fleet.eta_c
    # Reserve-aware baseline: reach the target 1 h before departure (or by the end of the window)
    hours_left = np.maximum(np.minimum(departure, seconds) / 3600.0 - 1.0, 0.5)
    need = np.maximum(target - fleet.soc_kwh, 0.0) / eta
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
    ler = LerManager(rules, n)
    summary = ReplaySummary(evs=n, seconds=seconds)
    # chargers that fail during the day (communication loss): each second a unit fails with this probability
    fail_at = np.where(rng.random(n) < failures_per_hour * seconds / 3600.0, rng.integers(0, seconds, n), -1)
    all_idx = np.arange(n)
    hours = math.ceil(seconds / 3600)
    for h in range(hours):
        h0, h1 = h * 3600, min((h + 1) * 3600, seconds)
        # An EV holds reserve in this hour only if it stays at least an hour after it and could still
        # reach its departure target at full charging power even after a fully activated hour.
        hours_after = np.maximum((departure - h1) / 3600.0, 0.0)
        worst_kwh = (r_n + r_dup / 3.0) / fleet.eta_d
        reachable = fleet.soc_kwh - worst_kwh + 0.9 * p_max * eta * hours_after >= target
        stays = (departure >= h1 + 3600) & reachable
        commitments = []
        committed_kw: dict[Product, float] = {}
        for product in (Product.FCR_N, Product.FCR_D_UP):
            mw = math.floor(float(pool.reserve_kw[product][stays].sum()) / 100.0) / 10.0
            committed_kw[product] = mw * 1000.0
            summary.committed_mwh[product] = summary.committed_mwh.get(product, 0.0) + mw * (h1 - h0) / 3600
            if mw > 0:
                commitments.append(
                    Commitment(
                        id=f"replay-{product.value}-{h}",
                        bid_id=f"replay-{product.value}-{h}",
                        group_id="replay",
                        product=product,
                        price_area=PriceArea.SE3,
                        start_at=start_at + timedelta(seconds=h0),
                        end_at=start_at + timedelta(seconds=h0 + 3600),
                        mw=mw,
                        price_eur_per_mw_h=price_eur_per_mw_h,
                    )
                )
        delivered = np.zeros((h1 - h0, n))
        held = {p: np.zeros(h1 - h0) for p in FCR_PRODUCTS}
        for k in range(h0, h1):
            lost = pool.available & ~fleet.online & (departure > k)
            if lost.any():  # its setpoint was not acknowledged: out of the pool, share re-allocated now
                summary.failures += int(lost.sum())
                pool.available[lost] = False
            leaving = pool.available & (departure <= k)
            if leaving.any():
                summary.departures += int(leaving.sum())
                for i in np.nonzero(leaving)[0]:
                    if fleet.soc_kwh[i] + 1e-6 < target[i]:
                        summary.missed_targets.append(pool.ev_ids[i])
                pool.available[leaving] = False
                fleet.online[leaving] = False
            if k % 900 == 0:  # re-plan the baseline every quarter towards the departure target
                # EVs holding reserve aim 1 h before departure with a buffer; EVs in their last
                # (uncommitted) hour charge whatever is still missing at up to full power.
                left_h = np.where(
                    stays,
                    np.maximum((departure - k) / 3600.0 - 1.0, 0.25),
                    np.maximum((departure - k) / 3600.0 - 0.1, 1 / 60),
                )
                need = np.maximum(target + np.where(stays, 0.5 * r_n, 0.1) - fleet.soc_kwh, 0.0) / eta
                room = np.where(stays, np.minimum(p_max - 1.34 * r_n, 4.0), p_max)
                pool.baseline_p_kw = np.clip(need / left_h, 0.0, np.maximum(room, 0.0))
            f = float(frequency_hz[k])
            energy = EnergyState(fleet.soc_kwh, fleet.soc_min_kwh, fleet.battery_kwh)
            shift, effective = ler.update(pool, energy, f)
            shift = np.where(stays, shift, 0.0)
            effective = {p: np.where(stays, v, 0.0) for p, v in effective.items()}
            base = pool.baseline_p_kw + shift
            required = required_response_kw(committed_kw, f, rules)
            response = allocate(pool, required, baseline_p_kw=base, reserve_kw=effective)
            p = setpoints_kw(pool, response, baseline_p_kw=base)
            fleet.command(all_idx, p)
            failing = fail_at == k
            if failing.any():
                fleet.online[failing] = False  # silent after its setpoint was sent: noticed at the next sample
            fleet.advance(delay_s, f)  # until the new setpoint takes effect the previous one holds
            p_before = fleet.p_kw.copy()
            fleet.advance(1.0 - delay_s, f)
            p_mean = p_before * delay_s + fleet.p_kw * (1.0 - delay_s)
            # a unit that failed this second delivers nothing (its power falls back to zero)
            delivered[k - h0] = np.where(pool.available, base - np.where(fleet.online, p_mean, base), 0.0)
            # maintained capacity: the power the available providing EVs can still move each way
            providing = pool.available & stays
            up = float(np.maximum(base - p_min, 0.0)[providing].sum())
            down = float(np.maximum(p_max - base, 0.0)[providing].sum())
            held[Product.FCR_N][k - h0] = min(up, down)
            held[Product.FCR_D_UP][k - h0] = max(up - committed_kw.get(Product.FCR_N, 0.0), 0.0)
            held[Product.FCR_D_DOWN][k - h0] = max(down - committed_kw.get(Product.FCR_N, 0.0), 0.0)
            if k % 10 == 0:  # real-time telemetry to the TSO every 10 s
                up_min, down_min = endurance_min(pool, energy)
                weights = np.where(providing, pool.reserve_kw[Product.FCR_N], 0.0)
                summary.telemetry.append(
                    telemetry(
                        at=start_at + timedelta(seconds=k),
                        group_id="replay",
                        maintained_kw={p: float(held[p][k - h0]) for p in FCR_PRODUCTS},
                        committed_kw=committed_kw,
                        endurance_up_min=up_min,
                        endurance_down_min=down_min,
                        weights_kw=weights,
                        nem_active=bool((ler.nem_n & providing).any() or (ler.nem_d & providing).any()),
                        aem_active=bool(((ler.aem_up | ler.aem_down) & providing).any()),
                    )
                )
            margin = fleet.soc_kwh - fleet.soc_min_kwh
            summary.min_soc_margin_kwh = min(summary.min_soc_margin_kwh, float(margin.min()))
        records = verify_hour(
            group_id="replay",
            hour_start_at=start_at + timedelta(seconds=h0),
            commitments=commitments,
            f_hz=frequency_hz[h0:h1],
            delivered_kw_by_ev=delivered,
            ev_ids=pool.ev_ids,
            held_kw=held,
            rules=rules,
        )
        for r in records:
            summary.records.append(r)
            summary.required_mwh += r.required_mwh
            summary.delivered_mwh += r.delivered_mwh
            summary.repayment_eur += r.repayment_eur
    summary.telemetry_gaps = len(telemetry_gaps([t.at for t in summary.telemetry], rules))
    summary.below_min_soc = [pool.ev_ids[i] for i in np.nonzero(fleet.soc_kwh < fleet.soc_min_kwh - 1e-6)[0]]
    # EVs still plugged in at the end must be on track: at least their target when they leave within the window
    return summary
