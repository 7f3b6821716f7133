"""Bid use cases: submission, the auction at the TSO market, clearing and pre-qualification results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from v2g.markets.bids import Bid, BidStatus, SubmissionResult, submit_bids
from v2g.markets.rules import MarketRules
from v2g.markets.simulator import ClearingResult
from v2g.prequal.report import PrequalResult
from v2g.services.markets.ports import MarketStore, TsoMarket


def submit(store: MarketStore, bids: Sequence[Bid], rules: MarketRules, *, now: datetime) -> SubmissionResult:
    """Validate and store bids; refused ones are stored too, with the rule they broke."""
    group_ids = {b.group_id for b in bids}
    groups = {g: grp for g in group_ids if (grp := store.group(g)) is not None}
    existing = [b for g in groups for b in store.bids(g)]
    result = submit_bids(bids, rules, now=now, groups=groups, existing=existing)
    store.save_bids(result.submitted, result.refused)
    return result


def run_auction(store: MarketStore, market: TsoMarket, group_id: str, auction: str) -> ClearingResult:
    """Send the group's submitted bids of ``auction`` to the market and store the answer."""
    pending = [b for b in store.bids(group_id) if b.status is BidStatus.SUBMITTED and b.auction == auction]
    result = market.clear(pending, auction)
    record_clearing(store, result)
    return result


def record_clearing(store: MarketStore, result: ClearingResult) -> None:
    """Store the auction's answers and the commitments it created."""
    store.save_bids([o.bid for o in result.outcomes])
    store.save_commitments(result.commitments)


def record_prequal(store: MarketStore, result: PrequalResult) -> None:
    """Store a pre-qualification run; a pass sets the group's prequalified capacity for the product."""
    store.save_prequal(result)
    if result.passed and store.group(result.group_id) is not None:
        store.set_prequalified(result.group_id, result.product, round(result.qualified_capacity_kw / 1000.0, 3))
