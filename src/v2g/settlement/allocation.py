"""Splitting an amount into parts that add up exactly: the largest-remainder method, and the
allocation of reserve-market revenue over the EVs that earned it.

Largest remainder (Hamilton's method) on a quantum ``q`` (1 öre for money, 0.1 Wh for energy):
the total is ``U = total / q`` whole units; part ``i`` first gets ``floor(U * w_i / W)`` units;
the units left over go one each to the parts with the largest fractional remainders, ties to
the earlier key in sorted order. So the parts sum to the total exactly, each part is within one
quantum of its exact share, and the result depends only on the inputs. The arithmetic is in exact
fractions, never in floats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from v2g.settlement.money import ORE, ZERO, SettlementInputError
from v2g.units import ensure_utc


def largest_remainder(total: Decimal, weights: Sequence[Decimal], quantum: Decimal = ORE) -> list[Decimal]:
    """Split ``total`` over ``weights`` (>= 0, not all 0) in multiples of ``quantum``; the parts sum to ``total``.

    ``total`` must be a whole number of quanta; a negative total is split like its absolute value.
    """
    if quantum <= 0:
        msg = f"quantum: {quantum} must be > 0"
        raise SettlementInputError(msg)
    units_exact = Fraction(total) / Fraction(quantum)
    if units_exact.denominator != 1:
        msg = f"total: {total} is not a whole number of {quantum}"
        raise SettlementInputError(msg)
    if any(w < 0 for w in weights):
        msg = "weights: must all be >= 0"
        raise SettlementInputError(msg)
    fractions = [Fraction(w) for w in weights]
    weight_sum = sum(fractions, Fraction(0))
    if weight_sum == 0:
        if total == 0:
            return [ZERO * quantum for _ in weights]
        msg = "weights: all zero, nothing to split a non-zero total by"
        raise SettlementInputError(msg)
    units = abs(units_exact.numerator)
    sign = -1 if total < 0 else 1
    shares = [units * w / weight_sum for w in fractions]
    floors = [math.floor(s) for s in shares]
    left = units - sum(floors)
    order = sorted(range(len(shares)), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [sign * n * quantum for n in floors]


def allocate(total: Decimal, weights: Mapping[str, Decimal], quantum: Decimal = ORE) -> dict[str, Decimal]:
    """:func:`largest_remainder` over named weights (ties go to the key that sorts first)."""
    keys = sorted(weights)
    return dict(zip(keys, largest_remainder(total, [weights[k] for k in keys], quantum), strict=True))


@dataclass(frozen=True, slots=True)
class EvContribution:
    """What one EV did for a reserve product in one market hour.

    ``held_kwh`` capacity-hours maintained (kW x h of reserve the EV held while plugged in);
    ``activated_kwh`` activated reserve energy it delivered; ``shortfall_kwh`` capacity-hours it was
    planned to hold but did not (kW x h): the measure of the repayment it caused.
    """

    ev_id: str
    held_kwh: Decimal = ZERO
    activated_kwh: Decimal = ZERO
    shortfall_kwh: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in ("held_kwh", "activated_kwh", "shortfall_kwh"):
            if getattr(self, name) < 0:
                msg = f"contribution[{self.ev_id}].{name}: must be >= 0"
                raise SettlementInputError(msg)


@dataclass(frozen=True, slots=True)
class ReserveHour:
    """The market's money for one bidding group, product and hour, in SEK to the öre, and who earned it.

    ``capacity_payment_sek`` (FCR capacity), ``activation_payment_sek`` (mFRR activation energy, FCR-N
    energy) and ``repayment_sek`` (repayment and sanction for non-delivery, a positive amount paid back).
    """

    group_id: str
    product: str
    hour_start_at: datetime
    capacity_payment_sek: Decimal
    activation_payment_sek: Decimal
    repayment_sek: Decimal
    contributions: tuple[EvContribution, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        where = f"reserve_hour[{self.group_id} {self.product} {self.hour_start_at.isoformat()}]"
        object.__setattr__(self, "hour_start_at", ensure_utc(self.hour_start_at, field=f"{where}.hour_start_at"))
        for name in ("capacity_payment_sek", "activation_payment_sek", "repayment_sek"):
            value: Decimal = getattr(self, name)
            if value != value.quantize(ORE):
                msg = f"{where}.{name}: {value} is not a whole number of öre"
                raise SettlementInputError(msg)
            if value < 0:
                msg = f"{where}.{name}: must be >= 0 (a repayment is a positive amount paid back)"
                raise SettlementInputError(msg)
        ids = [c.ev_id for c in self.contributions]
        if len(set(ids)) != len(ids):
            msg = f"{where}.contributions: an EV is listed twice"
            raise SettlementInputError(msg)

    @property
    def net_sek(self) -> Decimal:
        """What the market pays net for the hour (may be negative)."""
        return self.capacity_payment_sek + self.activation_payment_sek - self.repayment_sek


@dataclass(frozen=True, slots=True)
class ReserveAllocation:
    """One market hour's money split over the EVs; what no EV earned stays with the aggregator."""

    hour: ReserveHour
    capacity_sek: Mapping[str, Decimal]
    activation_sek: Mapping[str, Decimal]
    repayment_sek: Mapping[str, Decimal]
    unallocated_sek: Decimal
    repayment_rule: str

    def net_sek(self, ev_id: str) -> Decimal:
        """The EV's capacity and activation shares minus the repayment it caused."""
        return (
            self.capacity_sek.get(ev_id, ZERO)
            + self.activation_sek.get(ev_id, ZERO)
            - self.repayment_sek.get(ev_id, ZERO)
        )

    @property
    def ev_ids(self) -> list[str]:
        return sorted(set(self.capacity_sek) | set(self.activation_sek) | set(self.repayment_sek))


def allocate_reserve_hour(hour: ReserveHour) -> ReserveAllocation:
    """Split one market hour's money over its EVs by contribution.

    * capacity payment: by capacity-hours maintained (``held_kwh``);
    * activation payment: by activated energy delivered (``activated_kwh``);
    * repayment: by the capacity-hours each EV failed to hold (``shortfall_kwh``); when no EV fell
      short (the group under-delivered while every EV held its share), by capacity-hours maintained.

    A payment nobody contributed to is unallocated (kept by the aggregator, and a repayment nobody
    caused is borne by it). Every split is largest-remainder in öre, so
    ``sum(net_sek) + unallocated_sek == hour.net_sek`` exactly.
    """
    held = {c.ev_id: c.held_kwh for c in hour.contributions}
    activated = {c.ev_id: c.activated_kwh for c in hour.contributions}
    shortfall = {c.ev_id: c.shortfall_kwh for c in hour.contributions}
    unallocated = ZERO

    def split(total: Decimal, weights: Mapping[str, Decimal]) -> dict[str, Decimal]:
        if total == 0 or sum(weights.values(), ZERO) == 0:
            return {}
        return {k: v for k, v in allocate(total, weights).items() if v != 0}

    capacity = split(hour.capacity_payment_sek, held)
    if hour.capacity_payment_sek and not capacity:
        unallocated += hour.capacity_payment_sek
    activation = split(hour.activation_payment_sek, activated)
    if hour.activation_payment_sek and not activation:
        unallocated += hour.activation_payment_sek
    rule = "shortfall"
    repayment = split(hour.repayment_sek, shortfall)
    if hour.repayment_sek and not repayment:
        rule = "held"
        repayment = split(hour.repayment_sek, held)
        if not repayment:
            rule = "unallocated"
            unallocated -= hour.repayment_sek
    return ReserveAllocation(hour, capacity, activation, repayment, unallocated, rule)
