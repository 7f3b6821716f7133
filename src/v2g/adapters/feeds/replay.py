"""Recorded prices replayed onto the platform's clock: the default price feed of the demo and the twin.

A recorded series covers a few weeks. A time outside it is mapped into it by whole weeks (so a
Tuesday evening is priced by a recorded Tuesday evening), and every value handed out says which
recorded date it came from. Day-ahead prices are the SE3 15-minute series (used for every price
area: the sources of a plan say so); reserve prices are the Svk Mimer FCR auction results.

FCR auctions clear after the plan is made, so the planner must not see the clearing prices it bids
into: its reserve prices are a forecast, the clearing prices of the same hour one week earlier
(``RESERVE_FORECAST_LAG``); the market simulator clears the bids at the recorded prices of the
delivery hour itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from v2g.adapters.feeds.entsoe import parse_entsoe_csv
from v2g.adapters.feeds.mimer import fcr_prices_by_hour, read_mimer_fcr
from v2g.adapters.feeds.prices import FeedError, shipped
from v2g.fleet.model import PriceArea
from v2g.markets.prices import PriceSeries
from v2g.markets.rules import Product as MarketProduct
from v2g.planning.model import Product
from v2g.units import HOUR, QUARTER, ensure_utc, floor_hour, floor_quarter

WEEK = timedelta(days=7)
RESERVE_FORECAST_LAG = WEEK  # the planner's reserve price forecast: the same hour a week before
SHIPPED_DAY_AHEAD = "se3_dayahead_2025-10_2025-12.csv"
SHIPPED_FCR = "svk_mimer_fcr_hourly_2025-04_2025-06.csv"
FCR_COLUMNS = {
    Product.FCR_N: "fcr_n_price_eur_per_mw_h",
    Product.FCR_D_UP: "fcr_d_up_price_eur_per_mw_h",
    Product.FCR_D_DOWN: "fcr_d_down_price_eur_per_mw_h",
}


def _day_ahead(path: Path) -> dict[datetime, float]:
    try:
        points = parse_entsoe_csv(path.read_text(encoding="utf-8-sig"))
    except FeedError as exc:
        msg = f"{path.name}: {exc}"
        raise FeedError(msg) from exc
    areas = sorted({p.area for p in points})
    if not points:
        msg = f"{path.name}: no day-ahead prices"
        raise FeedError(msg)
    return {p.start_at: p.price for p in points if p.area == ("SE3" if "SE3" in areas else areas[0])}


def _fcr(path: Path) -> dict[Product, dict[datetime, float]]:
    by_product = fcr_prices_by_hour(read_mimer_fcr(path))
    out = {p: by_product[p.value] for p in FCR_COLUMNS}
    for product, series in out.items():
        if not series:
            msg = f"{path.name}: no {product.value} prices"
            raise FeedError(msg)
    return out


@dataclass(frozen=True)
class _Recording:
    values: dict[datetime, float]
    step: timedelta
    first_at: datetime
    weeks: int  # whole weeks covered

    @classmethod
    def of(cls, values: dict[datetime, float], step: timedelta, what: str) -> _Recording:
        first_at, last_at = min(values), max(values)
        weeks = int((last_at + step - first_at) / WEEK)
        if weeks < 1:
            msg = f"{what}: the recording covers less than one week ({first_at} to {last_at})"
            raise FeedError(msg)
        return cls(values, step, first_at, weeks)

    def recorded_at(self, at: datetime) -> datetime:
        """The recorded time that stands for ``at`` (same weekday and time of day)."""
        shift = (at - self.first_at) // WEEK
        return at - WEEK * (shift - shift % self.weeks)

    def value(self, at: datetime) -> float:
        recorded = self.recorded_at(at)
        value = self.values.get(recorded)
        if value is None:  # a hole in the recording: the nearest earlier value of the same week
            earlier = recorded
            while value is None and earlier > recorded - WEEK:
                earlier -= self.step
                value = self.values.get(earlier)
        return 0.0 if value is None else value


class RecordedMarketData:
    """Day-ahead and FCR prices replayed from recorded files (a ``PriceProvider`` of the planning cycle)."""

    def __init__(self, day_ahead_csv: Path | None = None, fcr_csv: Path | None = None) -> None:
        self.day_ahead_path = day_ahead_csv or shipped(SHIPPED_DAY_AHEAD)
        self.fcr_path = fcr_csv or shipped(SHIPPED_FCR)
        day_ahead = _day_ahead(self.day_ahead_path)
        step = QUARTER if any(at.minute for at in list(day_ahead)[:8]) else HOUR
        self._day_ahead = _Recording.of(day_ahead, step, self.day_ahead_path.name)
        fcr = _fcr(self.fcr_path)
        self._fcr = {p: _Recording.of(fcr[p], HOUR, self.fcr_path.name) for p in FCR_COLUMNS}

    # ------------------------------------------------------------------ PriceProvider
    def day_ahead_eur_per_mwh(self, area: PriceArea, start_at: datetime, n_quarters: int) -> tuple[float, ...]:
        start_at = floor_quarter(ensure_utc(start_at, field="start_at"))
        return tuple(self._day_ahead.value(start_at + QUARTER * k) for k in range(n_quarters))

    def reserve_eur_per_mw_h(self, product: Product, start_at: datetime, n_hours: int) -> tuple[float, ...]:
        recording = self._fcr.get(product)
        if recording is None:  # mFRR: no recorded series shipped, so no revenue is planned on it
            return (0.0,) * n_hours
        start_at = floor_hour(ensure_utc(start_at, field="start_at")) - RESERVE_FORECAST_LAG
        return tuple(recording.value(start_at + HOUR * h) for h in range(n_hours))

    # ------------------------------------------------------------------ provenance
    def describe(self, start_at: datetime) -> dict[str, str]:
        """Which recorded dates stand for ``start_at`` (shown with every plan made on these prices)."""
        da = self._day_ahead.recorded_at(floor_quarter(start_at))
        fcr = self._fcr[Product.FCR_N].recorded_at(floor_hour(start_at))
        return {
            "day_ahead": f"SE3 day-ahead recorded {da:%Y-%m-%d} ({self.day_ahead_path.name}), replayed by whole weeks",
            "reserves": (
                f"Svk Mimer FCR results recorded {fcr:%Y-%m-%d} ({self.fcr_path.name}), replayed by weeks; "
                "the planner forecasts them by the same hour a week before"
            ),
        }

    def reserve_series(self, start_at: datetime, end_at: datetime) -> PriceSeries:
        """The FCR clearing prices of ``[start_at, end_at)`` on the platform's dates (for the market simulator)."""
        prices: dict[MarketProduct, dict[datetime, Decimal]] = {}
        at0 = floor_hour(ensure_utc(start_at, field="start_at"))
        for product, recording in self._fcr.items():
            series: dict[datetime, Decimal] = {}
            at = at0
            while at < end_at:
                series[at] = Decimal(str(round(recording.value(at), 6)))
                at += HOUR
            prices[MarketProduct(product.value)] = series
        return PriceSeries(prices, f"{self.fcr_path.name}, replayed by whole weeks")


class ReplayedReserveSeries:
    """The market simulator's clearing prices on the platform's clock, extended as time goes on."""

    def __init__(self, data: RecordedMarketData, days: int = 3) -> None:
        self.data = data
        self.days = days
        self._series: PriceSeries | None = None

    def around(self, at: datetime) -> PriceSeries:
        """A price series covering ``at`` and the next ``days`` days (rebuilt when it runs out)."""
        at = floor_hour(ensure_utc(at, field="at"))
        series = self._series
        if series is None or not (series.span()[0] <= at and at + timedelta(days=self.days - 1) <= series.span()[1]):
            series = self._series = self.data.reserve_series(at - timedelta(days=1), at + timedelta(days=self.days))
        return series
