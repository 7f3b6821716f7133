"""Recorded prices and frequency replayed onto the platform's dates."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from v2g.adapters.feeds.frequency import RecordedFrequencyDay
from v2g.adapters.feeds.prices import FeedError, shipped
from v2g.adapters.feeds.replay import SHIPPED_DAY_AHEAD, RecordedMarketData
from v2g.fleet.model import PriceArea
from v2g.markets.rules import Product as MarketProduct
from v2g.planning.model import Product


def _recorded(at: datetime) -> float:
    with shipped(SHIPPED_DAY_AHEAD).open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["utc"] == at.strftime("%Y-%m-%dT%H:%M:%SZ"):
                return float(row["se3_eur_per_mwh"])
    raise AssertionError(at)


def test_day_ahead_replays_the_same_weekday_and_time() -> None:
    data = RecordedMarketData()
    at = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)  # a Thursday
    prices = data.day_ahead_eur_per_mwh(PriceArea.SE3, at, 4)
    recorded = datetime(2025, 12, 4, 16, 0, tzinfo=UTC)  # the Thursday of the recording
    assert prices == tuple(_recorded(recorded + timedelta(minutes=15 * k)) for k in range(4))
    assert "recorded 2025-12-04" in data.describe(at)["day_ahead"]
    for days in range(0, 400, 37):
        t = at + timedelta(days=days, hours=days % 24)
        assert data._day_ahead.recorded_at(t).weekday() == t.weekday()


def test_the_planner_forecasts_reserve_prices_from_the_week_before_the_clearing() -> None:
    data = RecordedMarketData()
    at = datetime(2026, 11, 17, 3, 0, tzinfo=UTC)
    planner = data.reserve_eur_per_mw_h(Product.FCR_N, at, 3)
    week_before = at - timedelta(days=7)
    series = data.reserve_series(week_before, at + timedelta(hours=3))
    cleared_then = [float(series.price(MarketProduct.FCR_N, week_before + timedelta(hours=h)) or 0) for h in range(3)]
    assert cleared_then == pytest.approx(planner, abs=1e-6)
    cleared_now = [float(series.price(MarketProduct.FCR_N, at + timedelta(hours=h)) or 0) for h in range(3)]
    assert cleared_now != pytest.approx(planner, abs=1e-6)  # the plan does not see the prices it bids into
    assert all(p > 0 for p in planner)


def test_a_file_without_the_price_column_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "prices.csv"
    bad.write_text("utc,price\n2025-10-01T00:00:00Z,1\n", encoding="utf-8")
    with pytest.raises(FeedError, match=r"prices\.csv: line 1: no '<area>_eur_per_mwh' column"):
        RecordedMarketData(day_ahead_csv=bad)


def test_the_recorded_frequency_day_is_read_by_time_of_day() -> None:
    feed = RecordedFrequencyDay()
    assert len(feed.f_hz) == 86400
    assert feed.f_hz_at(datetime(2026, 11, 17, 0, 0, 5, tzinfo=UTC)) == feed.f_hz[5]
    assert feed.f_hz_at(datetime(2030, 1, 1, 23, 59, 59, tzinfo=UTC)) == feed.f_hz[86399]
    assert float(feed.f_hz.min()) > 49.8
    assert float(feed.f_hz.max()) < 50.2
