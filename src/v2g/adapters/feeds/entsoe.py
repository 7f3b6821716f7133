"""ENTSO-E Transparency Platform day-ahead prices: a ``Publication_MarketDocument`` (A44), PT60M,
PT30M or PT15M periods, curve type A01 or A03 (repeated points omitted)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

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
