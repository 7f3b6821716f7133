"""Price feeds: the common price value, price sources, and the platform's hourly day-ahead CSV.

One reader per format, each in its own module of this package, each naming the line or element and
the field of bad input:

* :func:`parse_price_csv` (here): the platform's hourly CSV (``utc_start,SE1,SE2,SE3,SE4``, EUR/MWh),
  the layout of the reference day-ahead series; :func:`read_day_ahead_hourly` gives one area by hour.
* :mod:`~v2g.adapters.feeds.entsoe`: ENTSO-E A44 day-ahead prices (XML).
* :mod:`~v2g.adapters.feeds.nordpool`: the Nord Pool day-ahead prices API response (JSON).
* :mod:`~v2g.adapters.feeds.mimer`: Svenska kraftnät Mimer's FCR export (CSV).
* :mod:`~v2g.adapters.feeds.energinet`: the Energinet FCR and mFRR capacity exports, as the market
  simulator's :class:`~v2g.markets.prices.PriceSeries` (or hourly floats for generated fleets).
* :mod:`~v2g.adapters.feeds.planner_prices`: the planner's ``PRICES.csv`` and ``FCR.csv``, as the
  planner's price tuples.

The parsers of published documents return :class:`PricePoint` values on UTC intervals and raise
:class:`FeedError`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Protocol

from v2g.units import HOUR, ensure_utc, parse_utc


def shipped(name: str) -> Path:
    """A recorded file shipped with the platform (``adapters/feeds/data``)."""
    return Path(str(resources.files("v2g.adapters.feeds") / "data" / name))


class FeedError(ValueError):
    """Input a feed could not read; the message names where and why."""


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A price on ``[start_at, end_at)`` for ``area`` (bidding zone) and ``product``.

    Energy prices are EUR/MWh (``product="day_ahead"``); capacity prices EUR/MW per hour
    (``fcr_n``, ``fcr_d_up``, ``fcr_d_down``).
    """

    area: str
    product: str
    start_at: datetime
    end_at: datetime
    price: float

    @property
    def price_eur_per_mwh(self) -> float:
        return self.price


class PriceSource(Protocol):
    """Anything that yields price points for an interval (files, APIs)."""

    def prices(self, start_at: datetime, end_at: datetime) -> list[PricePoint]: ...


@dataclass
class StaticPriceSource:
    """A price source over already parsed points (a file, a fixture, a cached API response)."""

    points: Sequence[PricePoint]

    def prices(self, start_at: datetime, end_at: datetime) -> list[PricePoint]:
        start_at, end_at = ensure_utc(start_at, field="start_at"), ensure_utc(end_at, field="end_at")
        return [p for p in self.points if p.end_at > start_at and p.start_at < end_at]


def quarter_prices(points: Iterable[PricePoint]) -> dict[datetime, float]:
    """Prices per quarter-hour start: hourly values apply to all four quarters of the hour."""
    out: dict[datetime, float] = {}
    for p in points:
        at = p.start_at
        while at < p.end_at:
            out[at] = p.price
            at += timedelta(minutes=15)
    return out


def parse_number(text: str, where: str, field: str) -> float:
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError as exc:
        msg = f"{where}: {field} {text!r} is not a number"
        raise FeedError(msg) from exc
    if value != value or value in (float("inf"), float("-inf")):
        msg = f"{where}: {field} {text!r} is not a finite number"
        raise FeedError(msg)
    return value


def parse_price_csv(text: str, areas: Sequence[str] = ("SE1", "SE2", "SE3", "SE4")) -> list[PricePoint]:
    """The hourly CSV layout ``utc_start,SE1,...`` (EUR/MWh); empty cells are skipped."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames is None or "utc_start" not in reader.fieldnames:
        msg = "line 1: header must start with utc_start"
        raise FeedError(msg)
    missing = [a for a in areas if a not in reader.fieldnames]
    if missing:
        msg = f"line 1: no column for area(s) {', '.join(missing)}"
        raise FeedError(msg)
    out: list[PricePoint] = []
    for line, row in enumerate(reader, start=2):
        try:
            start = parse_utc(row["utc_start"], field="utc_start")
        except ValueError as exc:
            msg = f"line {line}: {exc}"
            raise FeedError(msg) from exc
        for area in areas:
            cell = row.get(area) or ""
            if cell.strip():
                out.append(PricePoint(area, "day_ahead", start, start + HOUR, parse_number(cell, f"line {line}", area)))
    return out


def read_day_ahead_hourly(path: Path, area: str = "SE3") -> dict[datetime, float]:
    """Hourly day-ahead prices (EUR/MWh) of one area from a platform CSV, by UTC hour start."""
    points = parse_price_csv(path.read_text(encoding="utf-8"), areas=(area,))
    return {p.start_at: p.price for p in points}
