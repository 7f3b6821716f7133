"""Svenska kraftnät Mimer's FCR export: semicolon separated, decimal comma, ``Period`` in Swedish local
time, ``FCR-N Pris (EUR/MW)``, ``FCR-D upp Pris (EUR/MW)``, ``FCR-D ned Pris (EUR/MW)``; all-zero rows
are periods without data and are dropped."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

from v2g.adapters.feeds.prices import FeedError, PricePoint, parse_number
from v2g.units import HOUR, STOCKHOLM, ensure_utc

FCR_PRODUCTS = {"FCR-N": "fcr_n", "FCR-D upp": "fcr_d_up", "FCR-D ned": "fcr_d_down"}

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
        prices = {product: parse_number(row[i] or "0", f"line {line}", header[i]) for i, product in price_cols.items()}
        if all(v == 0 for v in prices.values()):
            continue  # Mimer renders periods without data as zeros
        for product, value in prices.items():
            out.append(PricePoint(area, product, start, start + HOUR, value))
    return out
