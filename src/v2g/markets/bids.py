"""Bids, bidding groups and their validation against the market rules.

A refused bid raises :class:`BidRuleError`, whose ``rule`` names the rule broken (``min_volume``,
``gate_closure`` ...) and whose message names the bid, the field and the delivery period.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from v2g.fleet.model import PriceArea
from v2g.markets.rules import MarketRules, Product
from v2g.units import ensure_utc


class ControlMode(StrEnum):
    """How a providing group responds to frequency."""

    CENTRAL = "central"  # the platform measures frequency and sends setpoints
    LOCAL = "local"  # every charger follows its own frequency-to-power curve


class BidStatus(StrEnum):
    """Lifecycle of a bid."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    REFUSED = "refused"  # refused on submission (a rule broken)


class BidRuleError(ValueError):
    """A bid breaks a market rule; ``rule`` names it, the message says which field and why."""

    def __init__(self, bid_id: str, rule: str, field_name: str, reason: str, delivery_start_at: datetime | None = None):
        self.bid_id = bid_id
        self.rule = rule
        self.field_name = field_name
        period = f" for delivery {delivery_start_at.isoformat()}" if delivery_start_at is not None else ""
        super().__init__(f"bid[{bid_id}].{field_name}{period}: {reason} (rule: {rule})")


@dataclass(frozen=True, slots=True)
class BiddingGroup:
    """A providing group registered with the TSO: identical units in one price area."""

    id: str
    bsp_org_id: str
    price_area: PriceArea
    control_mode: ControlMode
    prequalified_mw: dict[Product, float] = field(default_factory=dict)
    ev_ids: tuple[str, ...] = ()
    active: bool = True

    def __post_init__(self) -> None:
        if not self.id:
            msg = "bidding_group.id: must not be empty"
            raise ValueError(msg)
        for product, mw in self.prequalified_mw.items():
            if mw < 0 or not math.isfinite(mw):
                msg = f"bidding_group[{self.id}].prequalified_mw[{product.value}]: {mw} must be a finite value >= 0"
                raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Bid:
    """One bid for one product, delivery period and price area.

    ``price_eur_per_mw_h`` is the capacity price (EUR per MW and hour) for FCR and the energy price
    (EUR/MWh) for mFRR. For mFRR ``volume_mw > 0`` is an up-bid (more export / less import) and
    ``volume_mw < 0`` a down-bid; capacity bids are always positive.
    """

    id: str
    group_id: str
    product: Product
    price_area: PriceArea
    delivery_start_at: datetime
    volume_mw: float
    price_eur_per_mw_h: Decimal
    status: BidStatus = BidStatus.DRAFT
    auction: str | None = None
    submitted_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "delivery_start_at", ensure_utc(self.delivery_start_at, field=f"bid[{self.id}].delivery_start_at")
        )
        if self.submitted_at is not None:
            object.__setattr__(
                self, "submitted_at", ensure_utc(self.submitted_at, field=f"bid[{self.id}].submitted_at")
            )


@dataclass(frozen=True, slots=True)
class ReserveOffer:
    """What the planner offers for one product, hour and price area (aggregated over its EVs)."""

    product: Product
    delivery_start_at: datetime
    price_area: PriceArea
    mw: float
    price_eur_per_mw_h: Decimal
    ev_kw: dict[str, float] = field(default_factory=dict)


def _refuse(bid: Bid, rule: str, field_name: str, reason: str) -> BidRuleError:
    return BidRuleError(bid.id, rule, field_name, reason, bid.delivery_start_at)


def _on_resolution(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) < 1e-6


def validate_bid(
    bid: Bid,
    rules: MarketRules,
    *,
    now: datetime,
    group: BiddingGroup | None,
    known_bid_ids: Iterable[str] = (),
    group_volume_mw: float = 0.0,
    controller_mw: Mapping[Product, float] | None = None,
) -> str:
    """Check ``bid`` against the rules at time ``now``; return the auction it goes to or raise :class:`BidRuleError`.

    ``group_volume_mw`` is the volume the same group already has bid for the same product and period
    (so the prequalified capacity holds over all of its bids). ``controller_mw`` is what is already
    bid for the period, per product, behind the same controller: every centrally controlled group
    of the platform shares the central controller (and SvK's central-control allocation), a locally
    controlled group is its own (by default: this group's ``group_volume_mw``).
    """
    now = ensure_utc(now, field="now")
    pr = rules[bid.product]
    if bid.id in set(known_bid_ids):
        raise _refuse(bid, "duplicate", "id", "a bid with this id was already submitted")
    if group is None:
        raise _refuse(bid, "unknown_group", "group_id", f"{bid.group_id!r} is not a registered bidding group")
    if not group.active:
        raise _refuse(bid, "group_inactive", "group_id", f"bidding group {group.id!r} is deregistered")
    if group.price_area != bid.price_area:
        raise _refuse(
            bid,
            "price_area",
            "price_area",
            f"{bid.price_area.value} differs from the group's price area {group.price_area.value}",
        )
    if not math.isfinite(bid.volume_mw):
        raise _refuse(bid, "volume", "volume_mw", "must be a finite number")
    if pr.kind == "capacity" and bid.volume_mw <= 0:
        raise _refuse(bid, "volume", "volume_mw", f"{bid.volume_mw} MW: capacity bids must be positive")
    if abs(bid.volume_mw) < pr.min_bid_mw - 1e-9:
        raise _refuse(
            bid,
            "min_volume",
            "volume_mw",
            f"{abs(bid.volume_mw)} MW is below the {pr.name} minimum of {pr.min_bid_mw} MW",
        )
    if not _on_resolution(abs(bid.volume_mw), pr.bid_resolution_mw):
        raise _refuse(
            bid, "resolution", "volume_mw", f"{bid.volume_mw} MW is not a multiple of {pr.bid_resolution_mw} MW"
        )
    if not bid.price_eur_per_mw_h.is_finite():
        raise _refuse(bid, "price", "price_eur_per_mw_h", "must be a finite number")
    if pr.kind == "capacity" and bid.price_eur_per_mw_h < 0:
        raise _refuse(bid, "price", "price_eur_per_mw_h", f"{bid.price_eur_per_mw_h}: capacity prices must be >= 0")
    start = bid.delivery_start_at
    local = start.astimezone(rules.tz)
    if (
        (local.minute % pr.period_minutes if pr.period_minutes < 60 else local.minute)
        or local.second
        or local.microsecond
    ):
        raise _refuse(
            bid,
            "period",
            "delivery_start_at",
            f"{pr.name} is sold in {pr.period_minutes}-minute periods; not a period start",
        )
    opens = pr.bidding_opens_at(start, rules.tz)
    if now < opens:
        raise _refuse(
            bid, "bidding_window", "submitted_at", f"bidding opens {opens.isoformat()}, now {now.isoformat()}"
        )
    open_auctions = [(name, gct) for name, gct in pr.gate_closures(start, rules.tz) if now < gct]
    if not open_auctions:
        last = pr.gate_closures(start, rules.tz)[-1][1]
        raise _refuse(bid, "gate_closure", "submitted_at", f"too late: the last gate closed {last.isoformat()}")
    if pr.kind == "capacity":
        capacity = group.prequalified_mw.get(bid.product, 0.0)
        total = group_volume_mw + bid.volume_mw
        if total > capacity + 1e-9:
            raise _refuse(
                bid,
                "prequalification",
                "volume_mw",
                f"{total:.1f} MW for the period exceeds the group's prequalified {pr.name} {capacity:.1f} MW",
            )
        behind = dict(controller_mw) if controller_mw is not None else {bid.product: group_volume_mw}
        behind[bid.product] = behind.get(bid.product, 0.0) + bid.volume_mw
        broken = _controller_limit(group, behind, bid.product, rules)
        if broken is not None:
            raise _refuse(bid, broken[0], "volume_mw", broken[1])
    return open_auctions[0][0]


def _controller_limit(
    group: BiddingGroup, behind_mw: Mapping[Product, float], product: Product, rules: MarketRules
) -> tuple[str, str] | None:
    """The controller limit ``behind_mw`` (volumes per product behind one controller, this bid
    included) breaks, as (rule, reason), or None."""
    spof = rules.single_point_of_failure
    pr = rules[product]
    total = behind_mw.get(product, 0.0)
    central = group.control_mode is ControlMode.CENTRAL
    allocation = rules.central_control.allocation_mw.get(product)
    if central and allocation is not None and total > allocation + 1e-9:
        return (
            "central_control_allocation",
            f"{total:.1f} MW of centrally controlled {pr.name} over all central groups exceeds the platform's "
            f"{allocation:g} MW share of SvK's central-control cap",
        )
    where = "the central controller" if central else f"group {group.id}"
    if total > spof.per_product_mw + 1e-9:
        return (
            "single_point_of_failure",
            f"{total:.1f} MW of {pr.name} behind {where} exceeds the {spof.per_product_mw:g} MW "
            "single-point-of-failure limit",
        )
    for direction, products in (
        ("up", (Product.FCR_N, Product.FCR_D_UP)),
        ("down", (Product.FCR_N, Product.FCR_D_DOWN)),
    ):
        if product not in products:
            continue
        combined = sum(behind_mw.get(p, 0.0) for p in products)
        if combined > spof.combined_per_direction_mw + 1e-9:
            return (
                "single_point_of_failure_combined",
                f"{combined:.1f} MW of FCR-N and FCR-D {direction} behind {where} exceeds the combined "
                f"{spof.combined_per_direction_mw:g} MW limit",
            )
    return None


def capacity_headroom_mw(
    group: BiddingGroup,
    product: Product,
    rules: MarketRules,
    held_mw: float = 0.0,
    controller_mw: Mapping[Product, float] | None = None,
) -> float:
    """What ``group`` may still bid of capacity ``product`` for one period when it holds ``held_mw`` there
    and its controller holds ``controller_mw`` per product (default: only this group's ``held_mw``):
    its prequalified capacity, the platform's central-control allocation (centrally controlled
    groups) and the single-point-of-failure limits, less what is already bid (never below 0)."""
    behind = dict(controller_mw) if controller_mw is not None else {product: held_mw}
    spof = rules.single_point_of_failure
    room = [group.prequalified_mw.get(product, 0.0) - held_mw, spof.per_product_mw - behind.get(product, 0.0)]
    if group.control_mode is ControlMode.CENTRAL:
        allocation = rules.central_control.allocation_mw.get(product)
        if allocation is not None:
            room.append(allocation - behind.get(product, 0.0))
    for products in ((Product.FCR_N, Product.FCR_D_UP), (Product.FCR_N, Product.FCR_D_DOWN)):
        if product in products:
            room.append(spof.combined_per_direction_mw - sum(behind.get(p, 0.0) for p in products))
    return max(0.0, min(room))


def bids_from_offers(
    offers: Sequence[ReserveOffer],
    group: BiddingGroup,
    rules: MarketRules,
    *,
    id_prefix: str,
    existing: Sequence[Bid] = (),
) -> list[Bid]:
    """Turn planner offers into bids: capacity offers capped at what the group may still bid for the
    period (its prequalified capacity and the TSO's limits, less its ``existing`` submitted or accepted
    bids), rounded down to the bid resolution, dropped below the minimum volume."""
    held: dict[tuple[Product, datetime], float] = {}
    for b in existing:
        if b.group_id == group.id and b.status in (BidStatus.SUBMITTED, BidStatus.ACCEPTED):
            held[(b.product, b.delivery_start_at)] = held.get((b.product, b.delivery_start_at), 0.0) + abs(b.volume_mw)
    bids: list[Bid] = []
    for offer in sorted(offers, key=lambda o: (o.delivery_start_at, o.product.value)):
        pr = rules[offer.product]
        mw = abs(offer.mw)
        if pr.kind == "capacity":
            key = (offer.product, offer.delivery_start_at)
            mw = min(mw, capacity_headroom_mw(group, offer.product, rules, held.get(key, 0.0)))
        steps = math.floor(mw / pr.bid_resolution_mw + 1e-9)
        volume = round(steps * pr.bid_resolution_mw, 6)
        if volume < pr.min_bid_mw - 1e-9:
            continue
        if pr.kind == "capacity":
            key = (offer.product, offer.delivery_start_at)
            held[key] = held.get(key, 0.0) + volume
        if offer.mw < 0:
            volume = -volume
        stamp = offer.delivery_start_at.strftime("%Y%m%dT%H%M")
        bids.append(
            Bid(
                id=f"{id_prefix}-{offer.product.value}-{stamp}",
                group_id=group.id,
                product=offer.product,
                price_area=offer.price_area,
                delivery_start_at=offer.delivery_start_at,
                volume_mw=volume,
                price_eur_per_mw_h=offer.price_eur_per_mw_h,
            )
        )
    return bids


@dataclass(frozen=True, slots=True)
class SubmissionResult:
    """Outcome of submitting a batch: accepted for auction, or refused with the rule broken."""

    submitted: tuple[Bid, ...]
    refused: tuple[tuple[Bid, BidRuleError], ...]


def submit_bids(
    bids: Sequence[Bid],
    rules: MarketRules,
    *,
    now: datetime,
    groups: dict[str, BiddingGroup],
    existing: Sequence[Bid] = (),
) -> SubmissionResult:
    """Validate every bid; valid ones become SUBMITTED with their auction, invalid ones are refused.

    Nothing is lost: each input bid appears exactly once in the result.
    """
    known = {b.id for b in existing if b.status is not BidStatus.REFUSED}
    volume: dict[tuple[str, Product, datetime], float] = {}
    behind: dict[tuple[str, datetime], dict[Product, float]] = {}

    def add(b: Bid) -> None:
        key = (b.group_id, b.product, b.delivery_start_at)
        volume[key] = volume.get(key, 0.0) + abs(b.volume_mw)
        g = groups.get(b.group_id)
        if g is not None and rules[b.product].kind == "capacity":
            per = behind.setdefault((controller_of(g), b.delivery_start_at), {})
            per[b.product] = per.get(b.product, 0.0) + abs(b.volume_mw)

    for b in existing:
        if b.status in (BidStatus.SUBMITTED, BidStatus.ACCEPTED):
            add(b)
    submitted: list[Bid] = []
    refused: list[tuple[Bid, BidRuleError]] = []
    for bid in bids:
        key = (bid.group_id, bid.product, bid.delivery_start_at)
        try:
            auction = validate_bid(
                bid,
                rules,
                now=now,
                group=groups.get(bid.group_id),
                known_bid_ids=known,
                group_volume_mw=volume.get(key, 0.0),
                controller_mw=_behind(groups.get(bid.group_id), bid.delivery_start_at, behind),
            )
        except BidRuleError as exc:
            refused.append((_with(bid, status=BidStatus.REFUSED, submitted_at=now), exc))
            continue
        known.add(bid.id)
        add(bid)
        submitted.append(_with(bid, status=BidStatus.SUBMITTED, auction=auction, submitted_at=now))
    return SubmissionResult(tuple(submitted), tuple(refused))


def controller_of(group: BiddingGroup) -> str:
    """The controller a group's response depends on: the platform's central controller, or its own."""
    return "central" if group.control_mode is ControlMode.CENTRAL else f"group:{group.id}"


def _behind(
    group: BiddingGroup | None, start: datetime, behind: Mapping[tuple[str, datetime], dict[Product, float]]
) -> dict[Product, float] | None:
    if group is None:
        return None
    return dict(behind.get((controller_of(group), start), {}))


def _with(bid: Bid, *, status: BidStatus, submitted_at: datetime, auction: str | None = None) -> Bid:
    return replace(bid, status=status, submitted_at=submitted_at, auction=auction)


def period_end(bid: Bid, rules: MarketRules) -> datetime:
    """End of the bid's delivery period."""
    return bid.delivery_start_at + rules[bid.product].period


__all__ = [
    "Bid",
    "BidRuleError",
    "BidStatus",
    "BiddingGroup",
    "ControlMode",
    "ReserveOffer",
    "SubmissionResult",
    "bids_from_offers",
    "capacity_headroom_mw",
    "controller_of",
    "period_end",
    "submit_bids",
    "validate_bid",
]
