"""Reserve offers from the availability forecast: what the fleet bids before its EVs arrive.

At a gate closure the day's EVs are mostly not plugged in yet, so the offer for each hour is the
firm capacity of :func:`v2g.markets.availability.forecast_availability` over the plug-in history
known at that moment (and the owners' stated habits), priced at the provider's cost of holding it
(:func:`v2g.markets.offer_price.offer_price_eur_per_mw_h`), never at a clearing price.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta

from v2g.fleet.model import PriceArea
from v2g.markets.availability import OwnerHabit, PlugSession, forecast_availability
from v2g.markets.bids import ReserveOffer
from v2g.markets.offer_price import offer_price_eur_per_mw_h
from v2g.markets.rules import MarketRules, Product
from v2g.units import ensure_utc


class ForecastOffers:
    """Offers per product and local delivery day from the fleet's plug-in history."""

    def __init__(
        self,
        *,
        rules: MarketRules,
        history: Callable[[datetime], Sequence[PlugSession]],
        ev_kw: Callable[[], Mapping[str, float]],
        price_area: PriceArea,
        day_ahead_eur_per_mwh: Callable[[datetime], float] = lambda _hour: 0.0,
        habits: Callable[[], Mapping[str, OwnerHabit]] = dict,
        weeks: int = 8,
        confidence: float = 0.95,
    ) -> None:
        self.rules = rules
        self.history = history
        self.ev_kw = ev_kw
        self.price_area = price_area
        self.day_ahead = day_ahead_eur_per_mwh
        self.habits = habits
        self.weeks = weeks
        self.confidence = confidence

    def offers(self, product: Product, day: date, made_at: datetime) -> list[ReserveOffer]:
        """The firm capacity of each hour of local ``day`` as offers (empty hours left out)."""
        tz = self.rules.tz
        start = ensure_utc(datetime.combine(day, datetime.min.time(), tzinfo=tz))
        end = ensure_utc(datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz))
        hours = [start + timedelta(hours=h) for h in range(int((end - start).total_seconds() // 3600))]
        hours = [h for h in hours if self.rules.product_exists(product, h)]
        if not hours:
            return []
        forecast = forecast_availability(
            self.history(made_at),
            self.ev_kw(),
            hours,
            made_at=made_at,
            tz=tz,
            weeks=self.weeks,
            confidence=self.confidence,
            habits=self.habits(),
        )
        offers = []
        for hour, firm_kw in zip(forecast.hours, forecast.firm_kw, strict=True):
            if firm_kw <= 0:
                continue
            offers.append(
                ReserveOffer(
                    product=product,
                    delivery_start_at=hour,
                    price_area=self.price_area,
                    mw=firm_kw / 1000.0,
                    price_eur_per_mw_h=offer_price_eur_per_mw_h(self.rules.offer_cost, product, self.day_ahead(hour)),
                )
            )
        return offers
