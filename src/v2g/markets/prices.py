"""Reserve price series: what the TSO market simulator clears bids against.

The series is built by the price feeds (:mod:`v2g.adapters.feeds.prices`, e.g. from the Energinet
exports); this module keeps the typed value and its pure look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from v2g.markets.rules import Product


@dataclass(frozen=True, slots=True)
class PriceSeries:
    """Marginal price (EUR per MW and hour, or EUR/MWh for energy) per product and period start (UTC)."""

    prices: dict[Product, dict[datetime, Decimal]]
    source: str

    def price(self, product: Product, period_start_at: datetime) -> Decimal | None:
        """Price of the period; hourly values apply to every quarter of their hour."""
        series = self.prices.get(product, {})
        value = series.get(period_start_at)
        if value is None:
            value = series.get(period_start_at.replace(minute=0, second=0, microsecond=0))
        return value

    def span(self) -> tuple[datetime, datetime]:
        """First and last period start over all products."""
        starts = [at for series in self.prices.values() for at in series]
        if not starts:
            msg = "price series: empty"
            raise ValueError(msg)
        return min(starts), max(starts)


def hours(start_at: datetime, count: int) -> list[datetime]:
    """``count`` consecutive hour starts from ``start_at``."""
    return [start_at + timedelta(hours=i) for i in range(count)]
