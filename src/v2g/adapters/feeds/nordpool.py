"""Nord Pool day-ahead prices: the API response (``multiAreaEntries[].deliveryStart/deliveryEnd/entryPerArea``)."""

from __future__ import annotations

import json
from typing import Any

from v2g.adapters.feeds.prices import FeedError, PricePoint, parse_number
from v2g.units import parse_utc


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
            out.append(
                PricePoint(area, "day_ahead", start, end, parse_number(str(price), where, f"entryPerArea.{area}"))
            )
    return out
