"""SQL storage of market operations (SQLAlchemy Core) on one connection."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, RowMapping, and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from v2g.adapters.db.tables.markets import (
    bidding_group_capacity,
    bidding_group_members,
    bidding_groups,
    delivery_records,
    market_bids,
    market_commitments,
    prequal_results,
)
from v2g.dispatch.verification import DeliveryRecord
from v2g.fleet.model import PriceArea
from v2g.markets.bids import Bid, BiddingGroup, BidRuleError, BidStatus, ControlMode
from v2g.markets.commitments import Commitment
from v2g.markets.rules import Product
from v2g.prequal.report import PrequalResult
from v2g.services.actors.ports import DuplicateError
from v2g.services.markets.ports import GroupMember, StoredBid, StoredPrequal


class SqlMarketStore:
    """Implements :class:`v2g.services.markets.ports.MarketStore`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # ---------------------------------------------------------------- groups
    def add_group(self, group: BiddingGroup, created_at: datetime) -> None:
        self.conn.execute(
            insert(bidding_groups).values(
                id=group.id,
                bsp_org_id=group.bsp_org_id,
                price_area=group.price_area.value,
                control_mode=group.control_mode.value,
                active=group.active,
                created_at=created_at,
            )
        )
        for product, mw in group.prequalified_mw.items():
            self.set_prequalified(group.id, product, mw)
        for ev_id in group.ev_ids:
            self.add_member(GroupMember(group.id, ev_id, ev_id, created_at))

    def _group_from_row(self, row: dict[str, object]) -> BiddingGroup:
        gid = str(row["id"])
        caps = self.conn.execute(
            select(bidding_group_capacity).where(bidding_group_capacity.c.group_id == gid)
        ).mappings()
        return BiddingGroup(
            id=gid,
            bsp_org_id=str(row["bsp_org_id"]),
            price_area=PriceArea(str(row["price_area"])),
            control_mode=ControlMode(str(row["control_mode"])),
            prequalified_mw={Product(c["product"]): float(c["prequalified_mw"]) for c in caps},
            ev_ids=tuple(m.ev_id for m in self.members(gid)),
            active=bool(row["active"]),
        )

    def group(self, group_id: str) -> BiddingGroup | None:
        row = self.conn.execute(select(bidding_groups).where(bidding_groups.c.id == group_id)).mappings().first()
        return self._group_from_row(dict(row)) if row else None

    def groups_of(self, bsp_org_id: str) -> list[BiddingGroup]:
        rows = self.conn.execute(
            select(bidding_groups).where(bidding_groups.c.bsp_org_id == bsp_org_id).order_by(bidding_groups.c.id)
        ).mappings()
        return [self._group_from_row(dict(r)) for r in rows]

    def group_ids_of(self, bsp_org_id: str) -> list[str]:
        t = bidding_groups
        query = select(t.c.id).where(t.c.bsp_org_id == bsp_org_id).order_by(t.c.id)
        return [str(gid) for gid in self.conn.execute(query).scalars()]

    def all_groups(self) -> list[BiddingGroup]:
        rows = self.conn.execute(select(bidding_groups).order_by(bidding_groups.c.id)).mappings()
        return [self._group_from_row(dict(r)) for r in rows]

    def set_prequalified(self, group_id: str, product: Product, mw: float) -> None:
        table = bidding_group_capacity
        key = and_(table.c.group_id == group_id, table.c.product == product.value)
        if self.conn.execute(select(table.c.group_id).where(key)).first():
            self.conn.execute(update(table).where(key).values(prequalified_mw=mw))
        else:
            self.conn.execute(insert(table).values(group_id=group_id, product=product.value, prequalified_mw=mw))

    def deactivate_group(self, group_id: str, at: datetime) -> None:
        self.conn.execute(
            update(bidding_groups).where(bidding_groups.c.id == group_id).values(active=False, deregistered_at=at)
        )

    # ---------------------------------------------------------------- members
    def add_member(self, member: GroupMember) -> bool:
        """Add (or re-add) an EV; returns False when it is already an active member."""
        t = bidding_group_members
        key = and_(t.c.group_id == member.group_id, t.c.ev_id == member.ev_id)
        row = self.conn.execute(select(t).where(key)).mappings().first()
        if row is None:
            self.conn.execute(
                insert(t).values(
                    group_id=member.group_id,
                    ev_id=member.ev_id,
                    charger_id=member.charger_id,
                    joined_at=member.joined_at,
                    left_at=None,
                )
            )
            return True
        if row["left_at"] is None:
            return False
        self.conn.execute(
            update(t).where(key).values(left_at=None, joined_at=member.joined_at, charger_id=member.charger_id)
        )
        return True

    def members(self, group_id: str, *, active_only: bool = True) -> list[GroupMember]:
        t = bidding_group_members
        q = select(t).where(t.c.group_id == group_id)
        if active_only:
            q = q.where(t.c.left_at.is_(None))
        return [GroupMember(**dict(r)) for r in self.conn.execute(q.order_by(t.c.ev_id)).mappings()]

    def group_of_ev(self, ev_id: str) -> GroupMember | None:
        t = bidding_group_members
        row = self.conn.execute(select(t).where(t.c.ev_id == ev_id, t.c.left_at.is_(None))).mappings().first()
        return GroupMember(**dict(row)) if row else None

    def remove_member(self, group_id: str, ev_id: str, at: datetime) -> bool:
        t = bidding_group_members
        result = self.conn.execute(
            update(t).where(t.c.group_id == group_id, t.c.ev_id == ev_id, t.c.left_at.is_(None)).values(left_at=at)
        )
        return bool(result.rowcount)

    # ---------------------------------------------------------------- bids and commitments
    def bids(self, group_id: str) -> list[Bid]:
        rows = self.conn.execute(
            select(market_bids).where(market_bids.c.group_id == group_id).order_by(market_bids.c.delivery_start_at)
        ).mappings()
        return [_bid(r) for r in rows]

    def bids_between(self, start_at: datetime, end_at: datetime) -> list[Bid]:
        t = market_bids.c
        rows = self.conn.execute(
            select(market_bids)
            .where(t.delivery_start_at >= start_at, t.delivery_start_at < end_at)
            .order_by(t.delivery_start_at, t.id)
        ).mappings()
        return [_bid(r) for r in rows]

    def save_bids(self, bids: Sequence[Bid], refused: Sequence[tuple[Bid, BidRuleError]] = ()) -> None:
        """Insert new bids or update the status of known ones; refused bids keep the rule broken.

        A bid is known by its group and id (ids are unique per BSP organisation); an id the BSP already
        used in another group answers :class:`DuplicateError`, as does an insert racing another one.
        """
        items: list[tuple[Bid, BidRuleError | None]] = [(b, None) for b in bids]
        items += [(b, e) for b, e in refused]
        owners: dict[str, str] = {}
        for bid, error in items:
            key = and_(market_bids.c.group_id == bid.group_id, market_bids.c.id == bid.id)
            exists = self.conn.execute(select(market_bids.c.id).where(key)).first()
            if exists and error is not None:
                continue  # a refused duplicate never overwrites the bid it duplicates
            if exists:
                self.conn.execute(
                    update(market_bids)
                    .where(key)
                    .values(status=bid.status.value, auction=bid.auction, submitted_at=bid.submitted_at)
                )
                continue
            if bid.group_id not in owners:
                owner = self.conn.execute(
                    select(bidding_groups.c.bsp_org_id).where(bidding_groups.c.id == bid.group_id)
                ).scalar_one_or_none()
                if owner is None:
                    msg = f"bid[{bid.id}].group_id: unknown bidding group {bid.group_id!r}"
                    raise ValueError(msg)
                owners[bid.group_id] = str(owner)
            values = {
                "id": bid.id,
                "bsp_org_id": owners[bid.group_id],
                "group_id": bid.group_id,
                "product": bid.product.value,
                "price_area": bid.price_area.value,
                "delivery_start_at": bid.delivery_start_at,
                "volume_mw": bid.volume_mw,
                "price_eur_per_mw_h": bid.price_eur_per_mw_h,
                "status": bid.status.value,
                "auction": bid.auction,
                "submitted_at": bid.submitted_at,
                "refused_rule": error.rule if error else None,
                "refused_field": error.field_name if error else None,
                "refused_reason": str(error) if error else None,
            }
            try:
                with self.conn.begin_nested():
                    self.conn.execute(insert(market_bids).values(**values))
            except IntegrityError as exc:
                msg = f"bid[{bid.id}].id: the BSP already has a bid with this id"
                raise DuplicateError(msg) from exc

    def lock_group(self, group_id: str) -> None:
        """Hold the group until the transaction ends, so submissions for it run one after another."""
        t = bidding_groups
        if self.conn.dialect.name == "sqlite":  # a write takes SQLite's database lock at once
            self.conn.execute(update(t).where(t.c.id == group_id).values(active=t.c.active))
        else:
            self.conn.execute(select(t.c.id).where(t.c.id == group_id).with_for_update())

    def owned_bid(self, bsp_org_id: str, bid_id: str) -> StoredBid | None:
        """The BSP's bid with this id, with the refusal it got (if any)."""
        row = (
            self.conn.execute(
                select(market_bids).where(market_bids.c.bsp_org_id == bsp_org_id, market_bids.c.id == bid_id)
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return StoredBid(_bid(row), row["refused_rule"], row["refused_field"], row["refused_reason"])

    def set_clearing(self, bid: Bid, price_eur_per_mw_h: Decimal | None) -> None:
        """Record the simulator's or TSO's answer to a bid."""
        self.conn.execute(
            update(market_bids)
            .where(market_bids.c.group_id == bid.group_id, market_bids.c.id == bid.id)
            .values(status=bid.status.value, clearing_price_eur_per_mw_h=price_eur_per_mw_h)
        )

    def save_commitments(self, commitments: Sequence[Commitment]) -> None:
        for c in commitments:
            t = market_commitments.c
            if self.conn.execute(select(t.id).where(t.group_id == c.group_id, t.id == c.id)).first():
                continue  # the same acceptance reported twice is stored once
            self.conn.execute(
                insert(market_commitments).values(
                    id=c.id,
                    bid_id=c.bid_id,
                    group_id=c.group_id,
                    product=c.product.value,
                    price_area=c.price_area.value,
                    start_at=c.start_at,
                    end_at=c.end_at,
                    mw=c.mw,
                    price_eur_per_mw_h=c.price_eur_per_mw_h,
                )
            )

    def commitments(self, group_id: str, start_at: datetime, end_at: datetime) -> list[Commitment]:
        t = market_commitments
        rows = self.conn.execute(
            select(t)
            .where(t.c.group_id == group_id, t.c.end_at > start_at, t.c.start_at < end_at)
            .order_by(t.c.start_at)
        ).mappings()
        return [_commitment(r) for r in rows]

    def commitments_between(self, start_at: datetime, end_at: datetime) -> list[Commitment]:
        t = market_commitments
        rows = self.conn.execute(
            select(t).where(t.c.end_at > start_at, t.c.start_at < end_at).order_by(t.c.start_at, t.c.id)
        ).mappings()
        return [_commitment(r) for r in rows]

    # ---------------------------------------------------------------- delivery and prequal
    def save_delivery(self, records: Sequence[DeliveryRecord]) -> None:
        t = delivery_records
        for r in records:
            key = and_(t.c.group_id == r.group_id, t.c.product == r.product.value, t.c.hour_start_at == r.hour_start_at)
            values = {
                "committed_mw": r.committed_mw,
                "required_mwh": r.required_mwh,
                "delivered_mwh": r.delivered_mwh,
                "availability": r.availability,
                "mean_abs_deviation_mw": r.mean_abs_deviation_mw,
                "undelivered_fraction": r.undelivered_fraction,
                "capacity_payment_eur": r.capacity_payment_eur,
                "repayment_eur": r.repayment_eur,
                "ev_contribution_json": json.dumps(r.ev_contribution_mwh, sort_keys=True),
                "seconds": r.seconds,
                "shortfall_mwh": r.shortfall_mwh,
            }
            if self.conn.execute(select(t.c.group_id).where(key)).first():
                self.conn.execute(update(t).where(key).values(**values))
            else:
                self.conn.execute(
                    insert(t).values(
                        group_id=r.group_id, product=r.product.value, hour_start_at=r.hour_start_at, **values
                    )
                )

    def delivery(self, group_id: str) -> list[DeliveryRecord]:
        t = delivery_records
        rows = self.conn.execute(
            select(t).where(t.c.group_id == group_id).order_by(t.c.hour_start_at, t.c.product)
        ).mappings()
        return [_delivery(r) for r in rows]

    def delivery_between(self, start_at: datetime, end_at: datetime) -> list[DeliveryRecord]:
        t = delivery_records
        rows = self.conn.execute(
            select(t)
            .where(t.c.hour_start_at >= start_at, t.c.hour_start_at < end_at)
            .order_by(t.c.hour_start_at, t.c.group_id, t.c.product)
        ).mappings()
        return [_delivery(r) for r in rows]

    def save_prequal(self, result: PrequalResult) -> None:
        self.conn.execute(
            insert(prequal_results).values(
                group_id=result.group_id,
                product=result.product.value,
                passed=result.passed,
                units=result.units,
                unit_type=result.unit_type,
                control_mode=result.control_mode,
                tested_capacity_kw=result.tested_capacity_kw,
                qualified_capacity_kw=result.qualified_capacity_kw,
                started_at=result.started_at,
                requirements_json=json.dumps(
                    [
                        {"test": r.test, "id": r.id, "measured": r.measured, "limit": r.limit, "passed": r.passed}
                        for r in result.requirements
                    ]
                ),
            )
        )

    def prequal_results(self, group_id: str) -> list[StoredPrequal]:
        t = prequal_results
        rows = self.conn.execute(select(t).where(t.c.group_id == group_id).order_by(t.c.started_at, t.c.id)).mappings()
        return [
            StoredPrequal(
                r["group_id"], Product(r["product"]), bool(r["passed"]), r["qualified_capacity_kw"], r["started_at"]
            )
            for r in rows
        ]


def _bid(r: RowMapping) -> Bid:
    return Bid(
        id=r["id"],
        group_id=r["group_id"],
        product=Product(r["product"]),
        price_area=PriceArea(r["price_area"]),
        delivery_start_at=r["delivery_start_at"],
        volume_mw=r["volume_mw"],
        price_eur_per_mw_h=r["price_eur_per_mw_h"],
        status=BidStatus(r["status"]),
        auction=r["auction"],
        submitted_at=r["submitted_at"],
    )


def _commitment(r: RowMapping) -> Commitment:
    return Commitment(
        id=r["id"],
        bid_id=r["bid_id"],
        group_id=r["group_id"],
        product=Product(r["product"]),
        price_area=PriceArea(r["price_area"]),
        start_at=r["start_at"],
        end_at=r["end_at"],
        mw=r["mw"],
        price_eur_per_mw_h=r["price_eur_per_mw_h"],
    )


def _delivery(r: RowMapping) -> DeliveryRecord:
    return DeliveryRecord(
        group_id=r["group_id"],
        product=Product(r["product"]),
        hour_start_at=r["hour_start_at"],
        committed_mw=r["committed_mw"],
        required_mwh=r["required_mwh"],
        delivered_mwh=r["delivered_mwh"],
        availability=r["availability"],
        mean_abs_deviation_mw=r["mean_abs_deviation_mw"],
        undelivered_fraction=r["undelivered_fraction"],
        capacity_payment_eur=r["capacity_payment_eur"],
        repayment_eur=r["repayment_eur"],
        ev_contribution_mwh=json.loads(r["ev_contribution_json"]),
        seconds=r["seconds"],
        shortfall_mwh=r["shortfall_mwh"],
    )


def sql_market_tx(engine: Engine) -> Callable[[], AbstractContextManager[SqlMarketStore]]:
    """A unit of work over ``engine``: each ``with`` block is one transaction (rolled back on error)."""

    @contextmanager
    def market_tx() -> Iterator[SqlMarketStore]:
        with engine.begin() as conn:
            yield SqlMarketStore(conn)

    return market_tx


__all__ = ["SqlMarketStore", "sql_market_tx"]
