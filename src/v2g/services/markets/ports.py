"""What market operations need from storage."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from v2g.dispatch.verification import DeliveryRecord
from v2g.markets.bids import Bid, BiddingGroup, BidRuleError
from v2g.markets.commitments import Commitment
from v2g.markets.rules import Product
from v2g.markets.simulator import ClearingResult
from v2g.prequal.report import PrequalResult


@dataclass(frozen=True, slots=True)
class GroupMember:
    """An EV (with its charger) in a bidding group."""

    group_id: str
    ev_id: str
    charger_id: str
    joined_at: datetime
    left_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredPrequal:
    """A stored pre-qualification outcome."""

    group_id: str
    product: Product
    passed: bool
    qualified_capacity_kw: float
    started_at: datetime


@dataclass(frozen=True, slots=True)
class StoredBid:
    """A stored bid and, when it was refused, the rule, field and message of the refusal."""

    bid: Bid
    refused_rule: str | None = None
    refused_field: str | None = None
    refused_reason: str | None = None


class MarketStore(Protocol):
    """Bidding groups, bids, commitments, delivery records and pre-qualification results."""

    def add_group(self, group: BiddingGroup, created_at: datetime) -> None: ...

    def group(self, group_id: str) -> BiddingGroup | None: ...

    def groups_of(self, bsp_org_id: str) -> list[BiddingGroup]: ...

    def group_ids_of(self, bsp_org_id: str) -> list[str]:
        """The ids of the BSP's groups (in id order) without loading their members."""
        ...

    def all_groups(self) -> list[BiddingGroup]: ...

    def set_prequalified(self, group_id: str, product: Product, mw: float) -> None: ...

    def deactivate_group(self, group_id: str, at: datetime) -> None: ...

    def add_member(self, member: GroupMember) -> bool: ...

    def members(self, group_id: str, *, active_only: bool = True) -> list[GroupMember]: ...

    def group_of_ev(self, ev_id: str) -> GroupMember | None: ...

    def remove_member(self, group_id: str, ev_id: str, at: datetime) -> bool: ...

    def bids(self, group_id: str) -> list[Bid]: ...

    def save_bids(self, bids: Sequence[Bid], refused: Sequence[tuple[Bid, BidRuleError]] = ()) -> None:
        """Insert new bids (:class:`DuplicateError` when the BSP already used the id) or update known ones."""
        ...

    def lock_group(self, group_id: str) -> None:
        """Hold the group for the rest of the transaction (submissions for it run one at a time)."""
        ...

    def owned_bid(self, bsp_org_id: str, bid_id: str) -> StoredBid | None:
        """The BSP organisation's bid with this id (bid ids are unique per BSP), if any."""
        ...

    def save_commitments(self, commitments: Sequence[Commitment]) -> None: ...

    def commitments(self, group_id: str, start_at: datetime, end_at: datetime) -> list[Commitment]: ...

    def save_delivery(self, records: Sequence[DeliveryRecord]) -> None: ...

    def delivery(self, group_id: str) -> list[DeliveryRecord]: ...

    # listings across every group, for the operator's view (the caller filters by organisation)
    def bids_between(self, start_at: datetime, end_at: datetime) -> list[Bid]:
        """Bids of every group delivering in ``[start_at, end_at)``, by delivery start."""
        ...

    def commitments_between(self, start_at: datetime, end_at: datetime) -> list[Commitment]:
        """Commitments of every group overlapping ``[start_at, end_at)``, by start."""
        ...

    def delivery_between(self, start_at: datetime, end_at: datetime) -> list[DeliveryRecord]:
        """Delivery records of every group for hours starting in ``[start_at, end_at)``."""
        ...

    def save_prequal(self, result: PrequalResult) -> None: ...

    def prequal_results(self, group_id: str) -> list[StoredPrequal]: ...


MarketTx = Callable[[], AbstractContextManager[MarketStore]]
"""A unit of work over the market store: ``with market_tx() as store:`` is one transaction."""


class TsoMarket(Protocol):
    """A market adapter: where submitted bids are cleared (the TSO's platform, or the simulator).

    :class:`v2g.markets.simulator.TsoMarketSimulator` implements it against recorded prices.
    """

    def clear(self, bids: Sequence[Bid], auction: str) -> ClearingResult: ...
