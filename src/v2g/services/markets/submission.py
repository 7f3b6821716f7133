"""A BSP's bid submission: ids belong to the BSP organisation, and a submission is idempotent and safe
under parallel requests.

* A bid id is unique per BSP organisation; another BSP's ids are invisible and never collide.
* The same id with the same body answers what it answered the first time (submitted, or refused
  with the same rule), and nothing changes; the same id with a different body is a conflict
  (:class:`BidConflictError`, HTTP 409) and nothing of the request is stored. A refused bid stays
  refused: send the corrected bid under a new id.
* Submissions for one group run one after another (the group is held for the transaction); two
  requests racing to insert one id end with one stored bid, and the loser is answered from it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from v2g.markets.bids import Bid, BidStatus
from v2g.markets.rules import MarketRules
from v2g.services.actors.ports import DuplicateError
from v2g.services.markets.bidding import submit
from v2g.services.markets.ports import MarketStore, MarketTx

ATTEMPTS = 6


class BidConflictError(RuntimeError):
    """Bid ids the BSP already used for a different bid."""

    def __init__(self, bid_ids: Sequence[str]) -> None:
        self.bid_ids = tuple(bid_ids)
        super().__init__(
            f"id: bid id(s) {', '.join(self.bid_ids)} already used for a different bid; "
            "a bid id names one bid (send a changed bid under a new id)"
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused bid with the rule it broke, the field and the message."""

    bid: Bid
    rule: str
    field_name: str
    message: str


@dataclass(frozen=True, slots=True)
class BidAnswer:
    """What a submission answers, in the order the bids were sent."""

    submitted: tuple[Bid, ...]
    refused: tuple[Refusal, ...]


def same_bid(a: Bid, b: Bid) -> bool:
    """Whether two bids say the same thing (group, product, area, period, volume and price)."""
    return (
        a.group_id == b.group_id
        and a.product == b.product
        and a.price_area == b.price_area
        and a.delivery_start_at == b.delivery_start_at
        and a.volume_mw == b.volume_mw
        and a.price_eur_per_mw_h == b.price_eur_per_mw_h
    )


def submit_owned(
    market_tx: MarketTx,
    *,
    bsp_org_id: str,
    group_id: str,
    bids: Sequence[Bid],
    rules: MarketRules,
    now: datetime,
) -> BidAnswer:
    """Submit ``bids`` for the BSP's group ``group_id`` in one transaction (retried when a parallel
    request stored one of the ids first, or when SQLite is busy)."""
    for attempt in range(ATTEMPTS):
        try:
            with market_tx() as store:
                return _submit(store, bsp_org_id, group_id, bids, rules, now)
        except DuplicateError:
            if attempt == ATTEMPTS - 1:
                raise
        except BidConflictError:
            raise
        except Exception as exc:  # a locked SQLite database surfaces as a driver error
            if "database is locked" not in str(exc) or attempt == ATTEMPTS - 1:
                raise
        time.sleep(0.01 * (attempt + 1))
    msg = "unreachable"  # pragma: no cover
    raise RuntimeError(msg)


def _submit(
    store: MarketStore, bsp_org_id: str, group_id: str, bids: Sequence[Bid], rules: MarketRules, now: datetime
) -> BidAnswer:
    store.lock_group(group_id)
    first: dict[str, Bid] = {}
    answered: dict[str, Bid | Refusal] = {}
    conflicts: list[str] = []
    fresh: list[Bid] = []
    for bid in bids:
        if bid.id in first:
            if not same_bid(first[bid.id], bid):
                conflicts.append(bid.id)
            continue
        first[bid.id] = bid
        stored = store.owned_bid(bsp_org_id, bid.id)
        if stored is None:
            fresh.append(bid)
        elif not same_bid(stored.bid, bid):
            conflicts.append(bid.id)
        elif stored.bid.status is BidStatus.REFUSED:
            answered[bid.id] = Refusal(
                stored.bid, stored.refused_rule or "", stored.refused_field or "", stored.refused_reason or ""
            )
        else:
            answered[bid.id] = stored.bid
    if conflicts:
        raise BidConflictError(conflicts)
    result = submit(store, fresh, rules, now=now)
    for b in result.submitted:  # answered as stored, so a repeat answers exactly the same
        again = store.owned_bid(bsp_org_id, b.id)
        answered[b.id] = again.bid if again is not None else b
    answered.update({b.id: Refusal(b, e.rule, e.field_name, str(e)) for b, e in result.refused})
    ordered = [answered[i] for i in first]
    return BidAnswer(
        tuple(a for a in ordered if isinstance(a, Bid)), tuple(a for a in ordered if isinstance(a, Refusal))
    )
