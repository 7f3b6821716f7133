"""Settlement periods: calendar months in Swedish local time, as UTC instants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from v2g.settlement.money import SettlementInputError
from v2g.units import STOCKHOLM, ensure_utc

_CODE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True, order=True)
class SettlementPeriod:
    """A calendar month in Swedish local time (an invoice month): ``2026-01`` runs from
    2026-01-01 00:00 CET to 2026-02-01 00:00 CET."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 2000 <= self.year <= 2200:
            msg = f"period.year: {self.year} is outside 2000-2200"
            raise SettlementInputError(msg)
        if not 1 <= self.month <= 12:
            msg = f"period.month: {self.month} is not 1-12"
            raise SettlementInputError(msg)

    @classmethod
    def parse(cls, code: str, *, field: str = "period") -> SettlementPeriod:
        """``YYYY-MM`` to a period."""
        m = _CODE.match(code.strip())
        if m is None:
            msg = f"{field}: {code!r} is not a month as YYYY-MM"
            raise SettlementInputError(msg)
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def containing(cls, at: datetime) -> SettlementPeriod:
        """The period whose local month contains ``at``."""
        local = ensure_utc(at).astimezone(STOCKHOLM)
        return cls(local.year, local.month)

    @property
    def code(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def __str__(self) -> str:
        return self.code

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self.next().first_day - timedelta(days=1)

    @property
    def start_at(self) -> datetime:
        """Local midnight of the first day, in UTC."""
        return local_midnight_utc(self.first_day)

    @property
    def end_at(self) -> datetime:
        """Local midnight of the first day of the next month, in UTC (exclusive)."""
        return self.next().start_at

    def next(self) -> SettlementPeriod:
        return SettlementPeriod(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> SettlementPeriod:
        return SettlementPeriod(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def days(self) -> list[date]:
        """The local days of the month."""
        return [self.first_day + timedelta(days=k) for k in range((self.last_day - self.first_day).days + 1)]


def local_midnight_utc(day: date) -> datetime:
    """Swedish local midnight at the start of ``day``, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=STOCKHOLM).astimezone(UTC)


def local_date(at: datetime) -> date:
    """The Swedish local date of an instant (tax and tariff dates are local dates)."""
    return ensure_utc(at).astimezone(STOCKHOLM).date()
