"""Svenska kraftnät Mimer exports: FCR auction results and mFRR capacity market results.

**FCR** (``PrimaryRegulation/DownloadText``), as published: semicolon separated, decimal comma,
``Datum`` in Swedish local time (the autumn hour that repeats appears twice, in order), one row
per hour with the market-wide marginal price and total volume of each product and the volume per
zone::

    Datum;FCR-N Pris (EUR/MW);Total;SE1 FCRN;...;FCR-D upp Pris (EUR/MW);Total FCRD upp;...
    ...;FCR-D ned Pris (EUR/MW);Total FCRD ned;...

Mimer exports one auction (``auctionTypeId``: the early or the late D-1 auction) or the
volume-weighted total of both; the caller says which one a file holds (``auction``). The same
results re-shaped to one UTC row per hour (``utc,fcr_n_price_eur_per_mw_h,fcr_n_volume_mw,...``,
the layout of the reference series) are read by the same function.

**mFRR capacity** (``ManualFrequencyRestorationReserveCM/DownloadText``): ``Period`` (local time),
``Elområde`` (``SN1``..``SN4`` or ``SE1``..``SE4``), ``mFRR Upp Pris (EUR/MW)``, ``mFRR Upp Volym (MW)``,
``mFRR Ned Pris (EUR/MW)``, ``mFRR Ned Volym (MW)``.

Rows whose prices are all zero or empty are periods without results and are dropped; a trailing
summary row (text in the time column) is skipped; anything else malformed raises
:class:`FeedError` naming the line and the column.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from v2g.adapters.feeds.prices import FeedError, PricePoint, parse_number
from v2g.units import HOUR, STOCKHOLM, ensure_utc, parse_utc

FCR_PRODUCTS = {"FCR-N": "fcr_n", "FCR-D upp": "fcr_d_up", "FCR-D ned": "fcr_d_down"}
_FCR_VOLUME = {"fcr_n": "Total", "fcr_d_up": "Total FCRD upp", "fcr_d_down": "Total FCRD ned"}
MFRR_CM_PRODUCTS = {"mFRR Upp": "mfrr_cm_up", "mFRR Ned": "mfrr_cm_down"}
_MIMER_ZONES = {"SN1": "SE1", "SN2": "SE2", "SN3": "SE3", "SN4": "SE4"}
AUCTIONS = ("total", "auction_1", "auction_2")


@dataclass(frozen=True, slots=True)
class AuctionResult:
    """One product's result for one hour: marginal price (EUR/MW per hour) and volume bought (MW)."""

    product: str
    start_at: datetime
    price_eur_per_mw_h: float
    volume_mw: float | None
    auction: str = "total"
    area: str = "SE"

    def point(self) -> PricePoint:
        return PricePoint(self.area, self.product, self.start_at, self.start_at + HOUR, self.price_eur_per_mw_h)


def _table(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    body = text.lstrip("\ufeff")
    first = body.split("\n", 1)[0]
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration as exc:
        msg = "line 1: empty file"
        raise FeedError(msg) from exc
    return header, [(line, row) for line, row in enumerate(reader, start=2) if any(c.strip() for c in row)]


class _LocalClock:
    """Swedish local hour stamps in file order to UTC: the repeated autumn hour is the second one."""

    def __init__(self) -> None:
        self.last: datetime | None = None

    def utc(self, stamp: str, line: int, column: str) -> datetime | None:
        text = stamp.strip()
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
            try:
                local = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            if line > 2 and not any(ch.isdigit() for ch in text[:4]):
                return None  # a trailing summary row ("Totalt")
            msg = f"line {line}: {column} {text!r} is not 'YYYY-MM-DD HH:MM[:SS]'"
            raise FeedError(msg)
        at = ensure_utc(local.replace(tzinfo=STOCKHOLM))
        if self.last is not None and at <= self.last:
            again = ensure_utc(local.replace(tzinfo=STOCKHOLM, fold=1))
            if again > self.last:
                at = again
        self.last = at
        return at


def _cell(row: list[str], index: int) -> str:
    return row[index].strip() if index < len(row) else ""


def parse_mimer_fcr_csv(text: str, *, auction: str = "total") -> list[AuctionResult]:
    """FCR-N, FCR-D up and FCR-D down results per hour from a Mimer FCR export (or its UTC re-shaping)."""
    if auction not in AUCTIONS:
        msg = f"auction: {auction!r} is not one of {', '.join(AUCTIONS)}"
        raise FeedError(msg)
    header, rows = _table(text)
    if header and header[0] == "utc":
        return _reshaped_fcr(header, rows, auction)
    if "Datum" not in header:
        msg = "line 1: no Datum column (not a Mimer FCR export)"
        raise FeedError(msg)
    time_col = header.index("Datum")
    prices: dict[int, str] = {}
    volumes: dict[str, int] = {}
    for i, name in enumerate(header):
        for label, product in FCR_PRODUCTS.items():
            if name == f"{label} Pris (EUR/MW)":
                prices[i] = product
        for product, column in _FCR_VOLUME.items():
            if name == column:
                volumes[product] = i
    if not prices:
        msg = "line 1: no 'FCR-... Pris (EUR/MW)' column"
        raise FeedError(msg)
    clock = _LocalClock()
    out: list[AuctionResult] = []
    for line, row in rows:
        start = clock.utc(_cell(row, time_col), line, "Datum")
        if start is None:
            continue
        values = {p: parse_number(_cell(row, i) or "0", f"line {line}", header[i]) for i, p in prices.items()}
        if all(v == 0 for v in values.values()):
            continue  # Mimer renders periods without results as zeros
        for product, price in values.items():
            vol_col = volumes.get(product)
            volume = (
                parse_number(_cell(row, vol_col), f"line {line}", header[vol_col])
                if vol_col is not None and _cell(row, vol_col)
                else None
            )
            out.append(AuctionResult(product, start, price, volume, auction))
    return out


def _reshaped_fcr(header: list[str], rows: list[tuple[int, list[str]]], auction: str) -> list[AuctionResult]:
    columns = {p: (f"{p}_price_eur_per_mw_h", f"{p}_volume_mw") for p in FCR_PRODUCTS.values()}
    if not any(price in header for price, _ in columns.values()):
        msg = "line 1: no '<product>_price_eur_per_mw_h' column"
        raise FeedError(msg)
    out: list[AuctionResult] = []
    for line, row in rows:
        try:
            start = parse_utc(_cell(row, 0), field=f"line {line}: utc")
        except ValueError as exc:
            raise FeedError(str(exc)) from exc
        for product, (price_col, volume_col) in columns.items():
            if price_col not in header:
                continue
            text = _cell(row, header.index(price_col))
            if not text:
                continue  # no result for the product (FCR-D down before it existed)
            price = parse_number(text, f"line {line}", price_col)
            vol_text = _cell(row, header.index(volume_col)) if volume_col in header else ""
            volume = parse_number(vol_text, f"line {line}", volume_col) if vol_text else None
            out.append(AuctionResult(product, start, price, volume, auction))
    return out


def read_mimer_fcr(path: Path, *, auction: str = "total") -> list[AuctionResult]:
    """A Mimer FCR export file (UTF-8, with or without a byte-order mark); errors name the file."""
    try:
        return parse_mimer_fcr_csv(path.read_text(encoding="utf-8-sig"), auction=auction)
    except FeedError as exc:
        msg = f"{path.name}: {exc}"
        raise FeedError(msg) from exc


def fcr_prices_by_hour(results: list[AuctionResult]) -> dict[str, dict[datetime, float]]:
    """Price (EUR/MW per hour) per product and UTC hour start."""
    out: dict[str, dict[datetime, float]] = {p: {} for p in FCR_PRODUCTS.values()}
    for r in results:
        out[r.product][r.start_at] = r.price_eur_per_mw_h
    return out


def read_fcr_hourly(path: Path) -> dict[datetime, tuple[float, float, float]]:
    """Hourly FCR-N, FCR-D up and FCR-D down prices (EUR/MW per hour) for generated fleets; an hour
    without an FCR-D down result (before the product existed) gets 0 for it, never a proxy."""
    by_product = fcr_prices_by_hour(read_mimer_fcr(path))
    return {
        at: (n, by_product["fcr_d_up"].get(at, 0.0), by_product["fcr_d_down"].get(at, 0.0))
        for at, n in by_product["fcr_n"].items()
    }


def parse_mimer_mfrr_cm_csv(text: str) -> list[AuctionResult]:
    """mFRR capacity results (up and down, EUR/MW per hour and MW) per zone and hour."""
    header, rows = _table(text)
    if "Period" not in header:
        msg = "line 1: no Period column (not a Mimer mFRR capacity export)"
        raise FeedError(msg)
    zone_col = next((i for i, h in enumerate(header) if h.startswith("Elomr")), None)
    if zone_col is None:
        msg = "line 1: no Elområde column"
        raise FeedError(msg)
    time_col = header.index("Period")
    columns: dict[str, tuple[int, int | None]] = {}
    for label, product in MFRR_CM_PRODUCTS.items():
        price_name, volume_name = f"{label} Pris (EUR/MW)", f"{label} Volym (MW)"
        if price_name in header:
            columns[product] = (
                header.index(price_name),
                header.index(volume_name) if volume_name in header else None,
            )
    if not columns:
        msg = "line 1: no 'mFRR Upp/Ned Pris (EUR/MW)' column"
        raise FeedError(msg)
    clocks: dict[str, _LocalClock] = {}
    out: list[AuctionResult] = []
    for line, row in rows:
        zone_text = _cell(row, zone_col)
        zone = _MIMER_ZONES.get(zone_text, zone_text)
        if not zone:
            msg = f"line {line}: {header[zone_col]} is empty"
            raise FeedError(msg)
        start = clocks.setdefault(zone, _LocalClock()).utc(_cell(row, time_col), line, "Period")
        if start is None:
            continue
        for product, (price_col, volume_col) in columns.items():
            text = _cell(row, price_col)
            if not text:
                continue
            price = parse_number(text, f"line {line}", header[price_col])
            volume = None
            if volume_col is not None and _cell(row, volume_col):
                volume = parse_number(_cell(row, volume_col), f"line {line}", header[volume_col])
            out.append(AuctionResult(product, start, price, volume, "total", zone))
    return out
