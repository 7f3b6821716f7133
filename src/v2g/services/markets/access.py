"""Who reads which market records (bidding groups, bids, commitments, delivery).

* The TSO runs the reserve markets and receives every BSP's bids: it reads every group. It is the only
  role that does (:data:`MARKET_WIDE_ROLES`).
* A BSP reads its own groups only.
* An aggregator operator reads the groups that hold (or held) an EV of a customer its organisation
  serves, and nothing of groups made only of other organisations' customers.
* Every other role reads nothing (403). A group the caller may not read answers 404, so its existence
  does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass

from v2g.markets.bids import BiddingGroup
from v2g.services.actors.ports import Principal
from v2g.services.markets.ports import MarketStore

MARKET_WIDE_ROLES = frozenset({"tso"})
AGGREGATOR_ROLE = "aggregator_operator"
READERS = frozenset({"bsp", AGGREGATOR_ROLE, *MARKET_WIDE_ROLES})


@dataclass(frozen=True, slots=True)
class MarketScope:
    """What one caller may read: every group, a BSP's own, or the groups of the EVs it serves."""

    role: str
    organisation_id: str
    served_ev_ids: frozenset[str] = frozenset()

    @classmethod
    def of(cls, who: Principal, served_ev_ids: frozenset[str] = frozenset()) -> MarketScope:
        return cls(who.role, who.organisation_id, served_ev_ids)

    @property
    def reads_market(self) -> bool:
        return self.role in READERS

    def sees(self, store: MarketStore, group: BiddingGroup) -> bool:
        """Whether the caller may read ``group`` and its bids, commitments and delivery."""
        if self.role in MARKET_WIDE_ROLES:
            return True
        if self.role == "bsp":
            return group.bsp_org_id == self.organisation_id
        if self.role == AGGREGATOR_ROLE:
            if self.served_ev_ids.intersection(group.ev_ids):
                return True
            members = store.members(group.id, active_only=False)
            return any(m.ev_id in self.served_ev_ids for m in members)
        return False

    def groups(self, store: MarketStore) -> list[BiddingGroup]:
        """The groups the caller may read."""
        if self.role == "bsp":
            return store.groups_of(self.organisation_id)
        if not self.reads_market:
            return []
        return [g for g in store.all_groups() if self.sees(store, g)]
