"""Energinet reserve price exports: "FcrReservesDK2" and the mFRR capacity market (hourly, newest row
first, UTF-8 with a byte-order mark).

The DK2 2021 series is a named historical scenario (``dk2_2021``): DK2 bought FCR-N and FCR-D up in
the Nordic market then, at 2021 prices. FCR-D down did not exist in 2021, so the scenario has no
FCR-D down price at all (a bid for it finds no clearing price and is rejected). Current Swedish
prices come from Svk's Mimer exports (:mod:`~v2g.adapters.feeds.mimer`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from v2g.adapters.feeds.prices import FeedError
from v2g.markets.prices import PriceSeries
from v2g.markets.rules import Product
from v2g.units import money


class PriceFileError(FeedError):
    """A price file is malformed; the message names the file, row and column."""


def _hour_utc(text: str, where: str) -> datetime:
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        msg = f"{where}: {text!r} is not an ISO datetime"
        raise PriceFileError(msg) from exc
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _decimal(text: str, where: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        msg = f"{where}: {text!r} is not a number"
        raise PriceFileError(msg) from exc
    if not value.is_finite():
        msg = f"{where}: {text!r} is not a finite number"
        raise PriceFileError(msg)
    return money(value)


def _rows(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            msg = f"{path.name}: missing column(s) {', '.join(missing)}"
            raise PriceFileError(msg)
        return list(reader)


def read_energinet_fcr(path: Path) -> dict[Product, dict[datetime, Decimal]]:
    """FCR-N and FCR-D up from the FcrReservesDK2 export (FCR-D down did not exist: none)."""
    out: dict[Product, dict[datetime, Decimal]] = {Product.FCR_N: {}, Product.FCR_D_UP: {}}
    for line, row in enumerate(_rows(path, ("HourUTC", "FCR_N_PriceEUR", "FCR_D_UpPriceEUR")), start=2):
        where = f"{path.name} row {line}"
        at = _hour_utc(row["HourUTC"], f"{where} HourUTC")
        out[Product.FCR_N][at] = _decimal(row["FCR_N_PriceEUR"], f"{where} FCR_N_PriceEUR")
        out[Product.FCR_D_UP][at] = _decimal(row["FCR_D_UpPriceEUR"], f"{where} FCR_D_UpPriceEUR")
    return out


def read_energinet_mfrr(path: Path) -> dict[Product, dict[datetime, Decimal]]:
    """mFRR up price per hour (EUR/MW) from the Energinet mFRR export."""
    series: dict[datetime, Decimal] = {}
    for line, row in enumerate(_rows(path, ("HourUTC", "mFRR_UpPriceEUR")), start=2):
        where = f"{path.name} row {line}"
        series[_hour_utc(row["HourUTC"], f"{where} HourUTC")] = _decimal(
            row["mFRR_UpPriceEUR"], f"{where} mFRR_UpPriceEUR"
        )
    return {Product.MFRR: series}


def load_price_series(fcr_csv: Path, mfrr_csv: Path | None = None) -> PriceSeries:
    """Price series for the simulator from the Energinet exports (the DK2 2021 historical scenario)."""
    prices: dict[Product, dict[datetime, Decimal]] = dict(read_energinet_fcr(fcr_csv))
    source = f"historical scenario dk2_2021: Energinet FcrReservesDK2 ({fcr_csv.name}); FCR-D down did not exist"
    if mfrr_csv is not None:
        prices.update(read_energinet_mfrr(mfrr_csv))
        source += f"; Energinet mFRR ({mfrr_csv.name})"
    return PriceSeries(prices=prices, source=source)
