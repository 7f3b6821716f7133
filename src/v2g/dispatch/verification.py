"""Delivery verification: delivered response (1 s meter data) against the response the measured
frequency required, per hour and product; availability, deviation, energy, the financial
consequence, each EV's contribution, and the real-time telemetry the TSO asks for.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from v2g.dispatch.pool import FloatArray
from v2g.markets.commitments import Commitment
from v2g.markets.rules import FCR_PRODUCTS, MarketRules, Product
from v2g.units import money


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """Verification of one product in one hour."""

    group_id: str
    product: Product
    hour_start_at: datetime
    committed_mw: float
    required_mwh: float  # |required response| integrated
    delivered_mwh: float  # delivered response, counted in the required direction
    availability: float  # share of seconds with enough reserve maintained
    mean_abs_deviation_mw: float
    undelivered_fraction: float
    capacity_payment_eur: Decimal
    repayment_eur: Decimal
    ev_contribution_mwh: dict[str, float]
    seconds: int = 3600  # the seconds of the hour verified
    shortfall_mwh: float = 0.0  # required response not delivered (beyond the tolerance), integrated

    @property
    def delivered_ratio(self) -> float:
        """Delivered over required energy (1.0 when nothing was required)."""
        return self.delivered_mwh / self.required_mwh if self.required_mwh > 0 else 1.0


@dataclass(frozen=True, slots=True)
class SecondSample:
    """Per-second aggregate of a verification window (frequency and response in kW)."""

    f_hz: float
    required_kw: Mapping[Product, float]
    delivered_kw: float
    held_kw: Mapping[Product, float]


def maintained_capacity_kw(
    *, up_room_kw: float, down_room_kw: float, capacity_kw: Mapping[Product, float]
) -> dict[Product, float]:
    """Maintained FCR capacity of an entity (FCR-TR v1.1 eq. 29-31).

    ``up_room_kw`` is P_max - P_baseline and ``down_room_kw`` P_baseline - P_min (injection terms:
    for EVs, the discharge and charge headroom from the setpoint); FCR-D gets what FCR-N's full
    response leaves, each capped at the product's capacity.
    """
    c_n = capacity_kw.get(Product.FCR_N, 0.0)
    return {
        Product.FCR_N: max(min(up_room_kw, down_room_kw, c_n), 0.0),
        Product.FCR_D_UP: max(min(up_room_kw - c_n, capacity_kw.get(Product.FCR_D_UP, 0.0)), 0.0),
        Product.FCR_D_DOWN: max(min(down_room_kw - c_n, capacity_kw.get(Product.FCR_D_DOWN, 0.0)), 0.0),
    }


def verify_hour(
    *,
    group_id: str,
    hour_start_at: datetime,
    commitments: Sequence[Commitment],
    f_hz: FloatArray,
    delivered_kw_by_ev: FloatArray,
    ev_ids: Sequence[str],
    held_kw: Mapping[Product, FloatArray],
    rules: MarketRules,
    measured_kw: FloatArray | None = None,
    rated_kw: float | None = None,
) -> list[DeliveryRecord]:
    """Verify one hour of 1 s data against the baseline and the maintained capacity.

    ``f_hz`` has one sample per second; ``delivered_kw_by_ev`` has shape (seconds, EVs) and holds
    each EV's delivered response (grid-positive: baseline power minus measured power); ``held_kw``
    gives, per product, the maintained capacity each second (eq. 29-31). The delivered total is
    shared between products in proportion to their required response each second.

    A response falls short only by what exceeds the accuracy of the power measurement (FCR-TR v1.1
    §4.1: ±5 % below 1.5 MW rated, ±1 % to 10 MW, ±0.5 % above), taken on the measured power
    ``measured_kw`` (the group's total each second; without it, on the rated power ``rated_kw``,
    by default the committed capacity).
    """
    seconds = len(f_hz)
    if delivered_kw_by_ev.shape != (seconds, len(ev_ids)):
        msg = f"delivered_kw_by_ev: shape {delivered_kw_by_ev.shape}, expected ({seconds}, {len(ev_ids)})"
        raise ValueError(msg)
    dt_h = 1.0 / 3600.0
    committed = {p: sum(c.mw for c in commitments if c.product is p) * 1000.0 for p in FCR_PRODUCTS}
    fractions = {p: np.array([rules[p].response_fraction(float(f)) for f in f_hz]) for p in FCR_PRODUCTS}
    required = {p: committed[p] * fractions[p] for p in FCR_PRODUCTS}
    required_total = sum((required[p] for p in FCR_PRODUCTS), np.zeros(seconds))
    delivered_total = delivered_kw_by_ev.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share_by_product = {
            p: np.where(
                np.abs(required_total) > 1e-9, required[p] / np.where(required_total == 0, 1, required_total), 0.0
            )
            for p in FCR_PRODUCTS
        }
    rated = rated_kw if rated_kw is not None else sum(committed.values())
    accuracy = rules.verification.power_accuracy_fraction(rated / 1000.0)
    if measured_kw is not None:
        if measured_kw.shape != (seconds,):
            msg = f"measured_kw: shape {measured_kw.shape}, expected ({seconds},)"
            raise ValueError(msg)
        uncertainty_total = accuracy * np.abs(measured_kw)
    else:
        uncertainty_total = np.full(seconds, accuracy * rated)
    records: list[DeliveryRecord] = []
    for product in FCR_PRODUCTS:
        c_kw = committed[product]
        if c_kw <= 0:
            continue
        req = required[product]
        delivered = delivered_total * share_by_product[product]
        sign = np.sign(req)
        req_abs = np.abs(req)
        delivered_in_dir = np.clip(delivered * sign, 0.0, None)
        uncertainty = uncertainty_total * np.abs(share_by_product[product])
        counted = np.minimum(delivered_in_dir, req_abs + uncertainty + 1e-9)
        shortfall = np.maximum(req_abs - uncertainty - delivered_in_dir, 0.0)
        held = held_kw.get(product, np.full(seconds, c_kw))
        availability = float(np.mean(held >= c_kw * (1 - 1e-9))) if seconds else 1.0
        required_mwh = float(req_abs.sum() * dt_h / 1000.0)
        delivered_mwh = float(counted.sum() * dt_h / 1000.0)
        shortfall_ratio = float(shortfall.sum() / req_abs.sum()) if req_abs.sum() > 0 else 0.0
        undelivered = min(1.0, max(1.0 - availability, shortfall_ratio))
        payment = money(sum((c.payment_eur for c in commitments if c.product is product), Decimal(0)))
        repay = _repayment(payment, undelivered, rules)
        per_ev = (delivered_kw_by_ev * share_by_product[product][:, None] * sign[:, None]).sum(axis=0)
        contribution = {ev: float(v * dt_h / 1000.0) for ev, v in zip(ev_ids, per_ev, strict=True) if abs(v) > 0}
        records.append(
            DeliveryRecord(
                group_id=group_id,
                product=product,
                hour_start_at=hour_start_at,
                committed_mw=c_kw / 1000.0,
                required_mwh=required_mwh,
                delivered_mwh=delivered_mwh,
                availability=availability,
                mean_abs_deviation_mw=float(np.mean(np.abs(delivered - req))) / 1000.0 if seconds else 0.0,
                undelivered_fraction=undelivered,
                capacity_payment_eur=payment,
                repayment_eur=repay,
                ev_contribution_mwh=contribution,
                seconds=seconds,
                shortfall_mwh=float(shortfall.sum() * dt_h / 1000.0),
            )
        )
    return records


def _repayment(payment: Decimal, undelivered: float, rules: MarketRules) -> Decimal:
    """What the BSP pays back (and the sanction) for the undelivered share of an hour's capacity payment."""
    ver = rules.verification
    return money(payment * Decimal(repr(undelivered)) * Decimal(repr(ver.repayment_fraction + ver.sanction_fraction)))


def _undelivered(availability: float, shortfall_mwh: float, required_mwh: float) -> float:
    shortfall_ratio = shortfall_mwh / required_mwh if required_mwh > 0 else 0.0
    return min(1.0, max(1.0 - availability, shortfall_ratio))


def merge_delivery(first: DeliveryRecord, then: DeliveryRecord, rules: MarketRules) -> DeliveryRecord:
    """One record of two stretches of the same hour and product (before and after a restart, say).

    Energies and contributions add up, availability and deviation are weighted by the seconds each
    stretch verified; the undelivered share and the repayment are worked out again on the whole.
    """
    for name in ("group_id", "product", "hour_start_at"):
        if getattr(first, name) != getattr(then, name):
            a, b = getattr(first, name), getattr(then, name)
            msg = f"delivery.{name}: {a} and {b} are not the same hour of one product"
            raise ValueError(msg)
    seconds = first.seconds + then.seconds

    def weighted(a: float, b: float) -> float:
        return (a * first.seconds + b * then.seconds) / seconds if seconds else 0.0

    required_mwh = first.required_mwh + then.required_mwh
    shortfall_mwh = first.shortfall_mwh + then.shortfall_mwh
    availability = weighted(first.availability, then.availability) if seconds else 1.0
    undelivered = _undelivered(availability, shortfall_mwh, required_mwh)
    contribution = dict(first.ev_contribution_mwh)
    for ev_id, mwh in then.ev_contribution_mwh.items():
        contribution[ev_id] = contribution.get(ev_id, 0.0) + mwh
    return DeliveryRecord(
        group_id=then.group_id,
        product=then.product,
        hour_start_at=then.hour_start_at,
        committed_mw=then.committed_mw,
        required_mwh=required_mwh,
        delivered_mwh=first.delivered_mwh + then.delivered_mwh,
        availability=availability,
        mean_abs_deviation_mw=weighted(first.mean_abs_deviation_mw, then.mean_abs_deviation_mw),
        undelivered_fraction=undelivered,
        capacity_payment_eur=then.capacity_payment_eur,
        repayment_eur=_repayment(then.capacity_payment_eur, undelivered, rules),
        ev_contribution_mwh=contribution,
        seconds=seconds,
        shortfall_mwh=shortfall_mwh,
    )


def split_delivery(
    record: DeliveryRecord, commitments: Sequence[Commitment], rules: MarketRules
) -> list[DeliveryRecord]:
    """A fleet's record as one record per bidding group holding its product's commitments.

    The fleet answers all of its groups' commitments as one pool, so each group is given the share
    of the fleet's response that its commitments are of the whole (its own capacity payment and
    repayment); availability and the undelivered share are the fleet's.
    """
    mw_by_group: dict[str, float] = {}
    payment_by_group: dict[str, Decimal] = {}
    for c in commitments:
        if c.product is record.product:
            mw_by_group[c.group_id] = mw_by_group.get(c.group_id, 0.0) + abs(c.mw)
            payment_by_group[c.group_id] = payment_by_group.get(c.group_id, Decimal(0)) + c.payment_eur
    total_mw = sum(mw_by_group.values())
    if total_mw <= 0:
        return []
    out = []
    for group_id, mw in sorted(mw_by_group.items()):
        share = mw / total_mw
        payment = money(payment_by_group[group_id])
        out.append(
            DeliveryRecord(
                group_id=group_id,
                product=record.product,
                hour_start_at=record.hour_start_at,
                committed_mw=record.committed_mw * share,
                required_mwh=record.required_mwh * share,
                delivered_mwh=record.delivered_mwh * share,
                availability=record.availability,
                mean_abs_deviation_mw=record.mean_abs_deviation_mw * share,
                undelivered_fraction=record.undelivered_fraction,
                capacity_payment_eur=payment,
                repayment_eur=_repayment(payment, record.undelivered_fraction, rules),
                ev_contribution_mwh={ev: mwh * share for ev, mwh in record.ev_contribution_mwh.items()},
                seconds=record.seconds,
                shortfall_mwh=record.shortfall_mwh * share,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Real-time signals for the TSO (at least every 10 s): per product and flags."""

    at: datetime
    group_id: str
    maintained_mw: dict[Product, float]
    status: str  # "available", "reduced", "unavailable"
    remaining_endurance_up_min: float
    remaining_endurance_down_min: float
    nem_active: bool
    aem_active: bool


def telemetry(
    *,
    at: datetime,
    group_id: str,
    maintained_kw: Mapping[Product, float],
    committed_kw: Mapping[Product, float],
    endurance_up_min: FloatArray,
    endurance_down_min: FloatArray,
    weights_kw: FloatArray,
    nem_active: bool,
    aem_active: bool,
) -> Telemetry:
    """One telemetry message; endurance is the reserve-weighted fleet value."""
    total = float(weights_kw.sum())

    def weighted(values: FloatArray) -> float:
        if total <= 0:
            return 0.0
        return float(np.minimum(values, 24 * 60.0).dot(weights_kw) / total)

    shortfall = any(maintained_kw.get(p, 0.0) + 1e-6 < kw for p, kw in committed_kw.items() if kw > 0)
    nothing = all(maintained_kw.get(p, 0.0) <= 0 for p in FCR_PRODUCTS)
    status = "unavailable" if nothing else "reduced" if shortfall else "available"
    return Telemetry(
        at=at,
        group_id=group_id,
        maintained_mw={p: maintained_kw.get(p, 0.0) / 1000.0 for p in FCR_PRODUCTS},
        status=status,
        remaining_endurance_up_min=weighted(endurance_up_min),
        remaining_endurance_down_min=weighted(endurance_down_min),
        nem_active=nem_active,
        aem_active=aem_active,
    )


def telemetry_gaps(times: Sequence[datetime], rules: MarketRules) -> list[tuple[datetime, datetime]]:
    """Intervals between telemetry messages longer than the TSO allows."""
    limit = timedelta(seconds=rules.verification.telemetry_max_interval_s)
    return [(a, b) for a, b in itertools.pairwise(times) if b - a > limit]
