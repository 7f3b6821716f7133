"""The reserve commitments in force (what the plans must hold and dispatch must deliver), and the delivery kept."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from v2g.dispatch.verification import DeliveryRecord
from v2g.fleet.model import PriceArea
from v2g.markets.commitments import Commitment
from v2g.markets.rules import FCR_PRODUCTS
from v2g.planning.model import Product as PlanProduct
from v2g.planning.model import ReserveCommitment
from v2g.services.markets.ports import MarketStore
from v2g.units import HOUR, floor_hour


@dataclass(frozen=True)
class MarketCommitments:
    """Commitments of the BSP's bidding groups, from the market records."""

    market_tx: Callable[[], AbstractContextManager[MarketStore]]
    bsp_org_id: str

    def commitments(self, start_at: datetime, end_at: datetime) -> list[Commitment]:
        """Every commitment of the BSP's active groups overlapping ``[start_at, end_at)``."""
        with self.market_tx() as store:
            return [c for gid in store.group_ids_of(self.bsp_org_id) for c in store.commitments(gid, start_at, end_at)]

    def reserve_commitments(self, start_at: datetime, end_at: datetime) -> Sequence[ReserveCommitment]:
        """The planner's input: FCR capacity sold per price area, product and hour (kW)."""
        held: dict[tuple[PriceArea, PlanProduct, datetime], float] = defaultdict(float)
        for c in self.commitments(start_at, end_at):
            if c.product not in FCR_PRODUCTS:
                continue
            at = max(floor_hour(c.start_at), floor_hour(start_at))
            while at < min(c.end_at, end_at):
                held[(c.price_area, PlanProduct(c.product.value), at)] += abs(c.mw) * 1000.0
                at += HOUR
        return [ReserveCommitment(area, product, at, kw) for (area, product, at), kw in sorted(held.items())]


@dataclass(frozen=True)
class MarketDelivery:
    """The verified delivery of each hour, in the market records (frequency dispatch's delivery log)."""

    market_tx: Callable[[], AbstractContextManager[MarketStore]]

    def delivered(self, hour_start_at: datetime) -> list[DeliveryRecord]:
        with self.market_tx() as store:
            return [
                r
                for r in store.delivery_between(hour_start_at, hour_start_at + HOUR)
                if r.hour_start_at == hour_start_at
            ]

    def save(self, records: Sequence[DeliveryRecord]) -> None:
        with self.market_tx() as store:
            store.save_delivery(records)
