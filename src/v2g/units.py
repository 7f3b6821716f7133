"""Units, money and UTC time helpers.

Conventions used across the platform:

* Quantities carry their unit in the name: ``p_kw``, ``soc_kwh``, ``price_eur_per_mwh``, ``dt_h``.
* Datetimes are timezone-aware and in UTC inside the platform; Swedish local time is for display only.
* Money is :class:`decimal.Decimal`, quantised to the currency's minor unit with banker's rounding
  avoided (``ROUND_HALF_UP``), as on an invoice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)
DT_QUARTER_H = 0.25
QUARTERS_PER_HOUR = 4
QUARTERS_PER_DAY = 96
STOCKHOLM = ZoneInfo("Europe/Stockholm")

_CENT = Decimal("0.01")
_MILLI = Decimal("0.001")


class NaiveDatetimeError(ValueError):
    """A datetime without timezone reached code that only accepts aware UTC datetimes."""


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def ensure_utc(at: datetime, *, field: str = "datetime") -> datetime:
    """Return ``at`` converted to UTC; refuse naive datetimes, naming ``field``."""
    if at.tzinfo is None or at.utcoffset() is None:
        msg = f"{field}: naive datetime {at.isoformat()} (a timezone is required, e.g. +00:00)"
        raise NaiveDatetimeError(msg)
    return at.astimezone(UTC)


def parse_utc(text: str, *, field: str = "datetime") -> datetime:
    """Parse an ISO 8601 string (``Z`` accepted) into an aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        msg = f"{field}: {text!r} is not an ISO 8601 datetime"
        raise ValueError(msg) from exc
    return ensure_utc(parsed, field=field)


def floor_quarter(at: datetime) -> datetime:
    """The start of the UTC quarter-hour that contains ``at``."""
    at = ensure_utc(at)
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def ceil_quarter(at: datetime) -> datetime:
    """The first UTC quarter-hour boundary at or after ``at``."""
    floored = floor_quarter(at)
    return floored if floored == ensure_utc(at) else floored + QUARTER


def floor_hour(at: datetime) -> datetime:
    """The start of the UTC hour that contains ``at``."""
    return ensure_utc(at).replace(minute=0, second=0, microsecond=0)


def quarter_grid(start: datetime, end: datetime) -> list[datetime]:
    """Quarter-hour starts in ``[start, end)``; both ends must lie on quarter boundaries."""
    start, end = ensure_utc(start, field="start"), ensure_utc(end, field="end")
    for name, value in (("start", start), ("end", end)):
        if value != floor_quarter(value):
            msg = f"{name}: {value.isoformat()} is not on a quarter-hour boundary"
            raise ValueError(msg)
    if end < start:
        msg = f"end {end.isoformat()} is before start {start.isoformat()}"
        raise ValueError(msg)
    return list(iter_quarters(start, end))


def iter_quarters(start: datetime, end: datetime) -> Iterator[datetime]:
    """Iterate quarter-hour starts from ``start`` (inclusive) to ``end`` (exclusive)."""
    at = start
    while at < end:
        yield at
        at += QUARTER


def quarter_index(start: datetime, at: datetime) -> int:
    """Index of the quarter that contains ``at`` on a grid beginning at ``start``."""
    return int((ensure_utc(at) - ensure_utc(start)) // QUARTER)


def to_local(at: datetime) -> datetime:
    """Swedish local time (Europe/Stockholm), for display."""
    return ensure_utc(at).astimezone(STOCKHOLM)


def format_local(at: datetime) -> str:
    """``2026-11-25 14:15 CET`` style text for people in Sweden."""
    local = to_local(at)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def energy_kwh(p_kw: float, dt_h: float) -> float:
    """Energy of a constant power over a duration."""
    return p_kw * dt_h


def money(value: Decimal | int | str, places: Decimal = _CENT) -> Decimal:
    """A Decimal amount quantised to cents (or ``places``), half up. Floats are refused."""
    if isinstance(value, float):
        msg = "money: floats are not accepted, pass a Decimal, int or str"
        raise TypeError(msg)
    return Decimal(value).quantize(places, rounding=ROUND_HALF_UP)


def money_from_float(value: float, places: Decimal = _MILLI) -> Decimal:
    """Convert a solver's float result into Decimal money at an explicit precision."""
    return Decimal(repr(value)).quantize(places, rounding=ROUND_HALF_UP)


def eur_per_mwh_to_eur_per_kwh(price_eur_per_mwh: float) -> float:
    """Price conversion: EUR/MWh to EUR/kWh."""
    return price_eur_per_mwh / 1000.0
