"""ENTSO-E Transparency Platform day-ahead prices: the API's ``Publication_MarketDocument`` (A44),
PT60M, PT30M or PT15M periods, curve type A01 or A03 (repeated points omitted), and the platform's
CSV export (:func:`parse_entsoe_csv`)."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from v2g.adapters.feeds.prices import FeedError, PricePoint, parse_number
from v2g.units import parse_utc

ENTSOE_AREAS = {
    "10Y1001A1001A44P": "SE1",
    "10Y1001A1001A45N": "SE2",
    "10Y1001A1001A46L": "SE3",
    "10Y1001A1001A47J": "SE4",
}

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
                position = int(parse_number(pos_text, pwhere, "Point.position"))
                if not 1 <= position <= slots:
                    msg = f"{pwhere}: Point.position {position} outside 1..{slots}"
                    raise FeedError(msg)
                values[position] = parse_number(point.findtext("price.amount") or "", pwhere, "price.amount")
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


_LOCAL = ZoneInfo("Europe/Brussels")  # the platform's "CET/CEST"


def _mtu_time(text: str, utc: bool, where: str, previous: datetime | None) -> datetime:
    stamp = text.strip()
    offset = None
    for suffix, hours in (("(CEST)", 2), ("(CET)", 1)):
        if stamp.endswith(suffix):
            stamp, offset = stamp[: -len(suffix)].strip(), hours
    try:
        naive = datetime.strptime(stamp, "%d/%m/%Y %H:%M:%S" if stamp.count(":") == 2 else "%d/%m/%Y %H:%M")
    except ValueError as exc:
        msg = f"{where}: {text.strip()!r} is not 'DD/MM/YYYY HH:MM:SS'"
        raise FeedError(msg) from exc
    if utc:
        return naive.replace(tzinfo=UTC)
    if offset is not None:
        return (naive - timedelta(hours=offset)).replace(tzinfo=UTC)
    at = naive.replace(tzinfo=_LOCAL).astimezone(UTC)
    if previous is not None and at <= previous:  # the repeated autumn hour: its second pass
        at = naive.replace(tzinfo=_LOCAL, fold=1).astimezone(UTC)
    return at


def parse_entsoe_csv(text: str, area: str | None = None) -> list[PricePoint]:
    """Day-ahead prices from a Transparency Platform CSV export (EUR/MWh).

    The export has an ``MTU (CET/CEST)`` or ``MTU (UTC)`` column (``"DD/MM/YYYY HH:MM:SS - DD/MM/YYYY
    HH:MM:SS"``, the end time names the period length: 15 or 60 minutes), the price column
    ``Day-ahead Price (EUR/MWh)`` (``[EUR/MWh]`` in older exports) and the bidding zone as an
    ``Area`` column (``BZN|SE3``) or, in older exports, a ``BZN|SE3`` column. The reference series'
    UTC re-shaping (``utc,resolution,se3_eur_per_mwh,...``) is read too. Empty or ``n/e`` prices
    are skipped.
    """
    body = text.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(body))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration as exc:
        msg = "line 1: empty file"
        raise FeedError(msg) from exc
    rows = [(line, row) for line, row in enumerate(reader, start=2) if any(c.strip() for c in row)]
    if header and header[0] == "utc":
        return _reshaped(header, rows)
    mtu = next((i for i, h in enumerate(header) if h.startswith("MTU")), None)
    price = next((i for i, h in enumerate(header) if h.startswith("Day-ahead Price")), None)
    if mtu is None or price is None:
        msg = "line 1: needs an 'MTU (...)' and a 'Day-ahead Price (EUR/MWh)' column"
        raise FeedError(msg)
    utc = "UTC" in header[mtu]
    area_col = header.index("Area") if "Area" in header else None
    fixed = next((h.split("|", 1)[1] for h in header if h.startswith("BZN|")), area)
    out: list[PricePoint] = []
    previous: dict[str, datetime] = {}
    for line, row in rows:
        where = f"line {line}"
        cell = row[mtu].strip() if mtu < len(row) else ""
        if " - " not in cell:
            msg = f"{where}: {header[mtu]} {cell!r} is not 'start - end'"
            raise FeedError(msg)
        zone = (row[area_col].strip().split("|")[-1] if area_col is not None and area_col < len(row) else fixed) or ""
        if not zone:
            msg = f"{where}: no bidding zone (no Area column, and none given)"
            raise FeedError(msg)
        if area is not None and zone != area:
            continue
        value = row[price].strip() if price < len(row) else ""
        if not value or value.lower() == "n/e":
            continue
        first, last = cell.split(" - ", 1)
        start = _mtu_time(first, utc, f"{where}: {header[mtu]}", previous.get(zone))
        end = _mtu_time(last, utc, f"{where}: {header[mtu]}", start)
        if end <= start:
            msg = f"{where}: {header[mtu]} ends before it starts"
            raise FeedError(msg)
        previous[zone] = start
        out.append(PricePoint(zone, "day_ahead", start, end, parse_number(value, where, header[price])))
    return out


def _reshaped(header: list[str], rows: list[tuple[int, list[str]]]) -> list[PricePoint]:
    columns = [(i, h.removesuffix("_eur_per_mwh").upper()) for i, h in enumerate(header) if h.endswith("_eur_per_mwh")]
    if not columns:
        msg = "line 1: no '<area>_eur_per_mwh' column"
        raise FeedError(msg)
    res_col = header.index("resolution") if "resolution" in header else None
    out: list[PricePoint] = []
    for line, row in rows:
        where = f"line {line}"
        try:
            start = parse_utc(row[0], field=f"{where}: utc")
        except ValueError as exc:
            raise FeedError(str(exc)) from exc
        resolution = row[res_col].strip() if res_col is not None and res_col < len(row) else "PT60M"
        step = _RESOLUTION.get(resolution)
        if step is None:
            msg = f"{where}: resolution {resolution!r} is not one of {', '.join(_RESOLUTION)}"
            raise FeedError(msg)
        for i, zone in columns:
            value = row[i].strip() if i < len(row) else ""
            if value:
                out.append(PricePoint(zone, "day_ahead", start, start + step, parse_number(value, where, header[i])))
    return out
