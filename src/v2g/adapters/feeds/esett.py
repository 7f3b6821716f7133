"""eSett open data: imbalance prices and mFRR activation prices (``EXP14/Prices``).

The Nordic imbalance settlement publishes, per market balance area (``mba``) and imbalance
settlement period, one record with ``timestampUTC`` (period start), ``timestamp`` (local),
``mba``, ``imblSalesPrice`` and ``imblPurchasePrice`` (equal in the single-price model, EUR/MWh),
``upRegPrice`` and ``downRegPrice`` (the mFRR up- and down-regulation activation prices, EUR/MWh),
``mainDirRegPowerPerMBA`` (-1, 0, 1), ``imblSpotDifferencePrice`` and further components. The API
answers a JSON list of these records; the CSV download has the same field names as columns. An
empty price (not yet published) is skipped.

The period length is taken from the spacing of one area's records (15 minutes since the Nordic
15-minute imbalance settlement period of 22 May 2023; hourly before); a single record counts as
15 minutes.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from v2g.adapters.feeds.prices import FeedError, PricePoint, parse_number
from v2g.units import QUARTER, parse_utc

# eSett's ``mba`` is the area name or its EIC code
ESETT_AREAS = {
    "10Y1001A1001A44P": "SE1",
    "10Y1001A1001A45N": "SE2",
    "10Y1001A1001A46L": "SE3",
    "10Y1001A1001A47J": "SE4",
    "10YFI-1--------U": "FI",
    "10YFI_1________U": "FI",
}
ESETT_PRICES = {"imblSalesPrice": "imbalance", "upRegPrice": "mfrr_up", "downRegPrice": "mfrr_down"}


def _records(text: str | bytes) -> list[tuple[str, dict[str, Any]]]:
    raw = text.decode("utf-8-sig") if isinstance(text, bytes) else text.lstrip("\ufeff")
    stripped = raw.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            data: Any = json.loads(stripped)
        except ValueError as exc:
            msg = f"document: not JSON ({exc})"
            raise FeedError(msg) from exc
        if isinstance(data, dict):
            data = data.get("data")
        if not isinstance(data, list):
            msg = "document: not a list of EXP14 records"
            raise FeedError(msg)
        out = []
        for i, record in enumerate(data):
            if not isinstance(record, dict):
                msg = f"record[{i}]: not an object"
                raise FeedError(msg)
            out.append((f"record[{i}]", record))
        return out
    reader = csv.DictReader(io.StringIO(raw), delimiter=";" if raw.split("\n", 1)[0].count(";") else ",")
    return [(f"line {line}", dict(row)) for line, row in enumerate(reader, start=2)]


def parse_esett_prices(text: str | bytes) -> list[PricePoint]:
    """Imbalance prices (``imbalance``) and mFRR activation prices (``mfrr_up``, ``mfrr_down``), EUR/MWh."""
    records = _records(text)
    if not records:
        msg = "document: no records"
        raise FeedError(msg)
    parsed: list[tuple[str, datetime, dict[str, float]]] = []
    for where, record in records:
        stamp = record.get("timestampUTC")
        if stamp in (None, ""):
            msg = f"{where}: timestampUTC is missing"
            raise FeedError(msg)
        try:
            start = parse_utc(str(stamp), field=f"{where}: timestampUTC")
        except ValueError as exc:
            raise FeedError(str(exc)) from exc
        mba = str(record.get("mba") or "").strip()
        if not mba:
            msg = f"{where}: mba is missing"
            raise FeedError(msg)
        values: dict[str, float] = {}
        for field, product in ESETT_PRICES.items():
            value = record.get(field)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            values[product] = parse_number(str(value), where, field)
        parsed.append((ESETT_AREAS.get(mba, mba), start, values))
    starts: dict[str, list[datetime]] = defaultdict(list)
    for area, start, _ in parsed:
        starts[area].append(start)
    step: dict[str, timedelta] = {}
    for area, times in starts.items():
        ordered = sorted(set(times))
        gaps = [b - a for a, b in itertools.pairwise(ordered)]
        step[area] = min(gaps) if gaps else QUARTER
    return [
        PricePoint(area, product, start, start + step[area], value)
        for area, start, values in parsed
        for product, value in values.items()
    ]
