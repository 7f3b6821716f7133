"""Day-ahead and FCR price feeds: parsers for the layouts the platform reads, behind one interface.

* ``parse_price_csv``: the platform's hourly CSV (``utc_start,SE1,SE2,SE3,SE4``, EUR/MWh).
* ``parse_entsoe_xml``: an ENTSO-E Transparency Platform ``Publication_MarketDocument`` (A44,
  day-ahead prices), PT60M or PT15M periods, curve type A01 or A03 (repeated points omitted).
* ``parse_nordpool_json``: the Nord Pool day-ahead prices API response
  (``multiAreaEntries[].deliveryStart/deliveryEnd/entryPerArea``).
* ``parse_mimer_fcr_csv``: Svenska kraftnät Mimer's FCR export (semicolon separated, decimal comma,
  ``Period`` in Swedish local time, ``FCR-N Pris (EUR/MW)``, ``FCR-D upp Pris (EUR/MW)``,
  ``FCR-D ned Pris (EUR/MW)``); all-zero rows are periods without data and are dropped.

Every parser returns :class:`PricePoint` values on UTC intervals; bad input raises
:class:`FeedError` naming the line or element and the field.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from v2g.units import HOUR, STOCKHOLM, ensure_utc, parse_utc

ENTSOE_AREAS = {
    "10Y1001A1001A44P": "SE1",
    "10Y1001A1001A45N": "SE2",
    "10Y1001A1001A46L": "SE3",
    "10Y1001A1001A47J": "SE4",
}
FCR_PRODUCTS = {"FCR-N": "fcr_n", "FCR-D upp": "fcr_d_up", "FCR-D ned": "fcr_d_down"}


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


def _number(text: str, where: str, field: str) -> float:
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
                out.append(PricePoint(area, "day_ahead", start, start + HOUR, _number(cell, f"line {line}", area)))
    return out


_RESOLUTION = {"PT60M": timedelta(hours=1), "PT15M": timedelta(minutes=15), "PT30M": timedelta(minutes=30)}


def _strip_ns(tree: ET.Element) -> None:
    for el in tree.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]


def parse_entsoe_xml(text: str) -> list[PricePoint]:
    """ENTSO-E A44 day-ahead prices (``Publication_MarketDocument``)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        msg = f"document: not well-formed XML ({exc})"
        raise FeedError(msg) from exc
    _strip_ns(root)
    if root.tag == "Acknowledgement_MarketDocument":
        reason = root.findtext("Reason/text") or "no data"
        msg = f"document: ENTSO-E answered with an acknowledgement: {reason}"
        raise FeedError(msg)
    if root.tag != "Publication_MarketDocument":
        msg = f"document: root element {root.tag!r} is not Publication_MarketDocument"
        raise FeedError(msg)
    out: list[PricePoint] = []
    for ts_index, series in enumerate(root.findall("TimeSeries"), start=1):
        where = f"TimeSeries[{ts_index}]"
        domain = series.findtext("in_Domain.mRID") or series.findtext("out_Domain.mRID") or ""
        area = ENTSOE_AREAS.get(domain.strip(), domain.strip())
        curve = (series.findtext("curveType") or "A01").strip()
        for p_index, period in enumerate(series.findall("Period"), start=1):
            pwhere = f"{where}.Period[{p_index}]"
            try:
                start = parse_utc(period.findtext("timeInterval/start") or "", field=f"{pwhere}.timeInterval.start")
                end = parse_utc(period.findtext("timeInterval/end") or "", field=f"{pwhere}.timeInterval.end")
            except ValueError as exc:
                raise FeedError(str(exc)) from exc
            resolution = (period.findtext("resolution") or "").strip()
            step = _RESOLUTION.get(resolution)
            if step is None:
                msg = f"{pwhere}.resolution: {resolution!r} is not one of {', '.join(_RESOLUTION)}"
                raise FeedError(msg)
            slots = int((end - start) / step)
            values: dict[int, float] = {}
            for point in period.findall("Point"):
                pos_text = point.findtext("position") or ""
                position = int(_number(pos_text, pwhere, "Point.position"))
                if not 1 <= position <= slots:
                    msg = f"{pwhere}: Point.position {position} outside 1..{slots}"
                    raise FeedError(msg)
                values[position] = _number(point.findtext("price.amount") or "", pwhere, "price.amount")
            last: float | None = None
            for position in range(1, slots + 1):
                if position in values:
                    last = values[position]
                elif curve != "A03":
                    continue  # A01: a missing position has no price
                if last is None:
                    continue
                at = start + step * (position - 1)
                out.append(PricePoint(area, "day_ahead", at, at + step, last))
    return out


def parse_nordpool_json(text: str | bytes) -> list[PricePoint]:
    """The Nord Pool day-ahead prices API response (EUR/MWh per delivery period and area)."""
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        msg = f"document: not JSON ({exc})"
        raise FeedError(msg) from exc
    entries = data.get("multiAreaEntries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        msg = "document: multiAreaEntries missing or not a list"
        raise FeedError(msg)
    out: list[PricePoint] = []
    for i, entry in enumerate(entries):
        where = f"multiAreaEntries[{i}]"
        try:
            start = parse_utc(str(entry["deliveryStart"]), field=f"{where}.deliveryStart")
            end = parse_utc(str(entry["deliveryEnd"]), field=f"{where}.deliveryEnd")
            per_area = entry["entryPerArea"]
        except (KeyError, TypeError) as exc:
            msg = f"{where}: missing field {exc}"
            raise FeedError(msg) from exc
        except ValueError as exc:
            raise FeedError(str(exc)) from exc
        if end <= start:
            msg = f"{where}.deliveryEnd: not after deliveryStart"
            raise FeedError(msg)
        for area, price in per_area.items():
            out.append(PricePoint(area, "day_ahead", start, end, _number(str(price), where, f"entryPerArea.{area}")))
    return out


_MIMER_PRICE = re.compile(r"^(FCR-N|FCR-D upp|FCR-D ned) Pris \(EUR/MW\)$")


def parse_mimer_fcr_csv(text: str, area: str = "SE") -> list[PricePoint]:
    """Mimer's FCR capacity prices (EUR/MW per hour), one point per product and hour."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";")
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration as exc:
        msg = "line 1: empty file"
        raise FeedError(msg) from exc
    if "Period" not in header:
        msg = "line 1: no Period column"
        raise FeedError(msg)
    period_col = header.index("Period")
    price_cols = {i: FCR_PRODUCTS[m.group(1)] for i, h in enumerate(header) if (m := _MIMER_PRICE.match(h))}
    if not price_cols:
        msg = "line 1: no 'FCR-... Pris (EUR/MW)' column"
        raise FeedError(msg)
    out: list[PricePoint] = []
    for line, row in enumerate(reader, start=2):
        if not row or not row[period_col].strip():
            continue
        stamp = row[period_col].strip()
        try:
            local = datetime.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            if line > 2 and not any(ch.isdigit() for ch in stamp[:4]):
                continue  # a trailing summary row
            msg = f"line {line}: Period {stamp!r} is not 'YYYY-MM-DD HH:MM:SS'"
            raise FeedError(msg) from None
        start = ensure_utc(local.replace(tzinfo=STOCKHOLM))
        prices = {product: _number(row[i] or "0", f"line {line}", header[i]) for i, product in price_cols.items()}
        if all(v == 0 for v in prices.values()):
            continue  # Mimer renders periods without data as zeros
        for product, value in prices.items():
            out.append(PricePoint(area, product, start, start + HOUR, value))
    return out
