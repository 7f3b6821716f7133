from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from v2g import units


def test_quarter_grid_covers_a_day_in_utc() -> None:
    start = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)  # Swedish DST change day: still 96 UTC quarters
    grid = units.quarter_grid(start, start + timedelta(days=1))
    assert len(grid) == units.QUARTERS_PER_DAY
    assert grid[1] - grid[0] == units.QUARTER
    assert all(q.tzinfo is UTC for q in grid)


def test_quarter_grid_refuses_unaligned_and_naive() -> None:
    with pytest.raises(ValueError, match=r"start: .* not on a quarter-hour boundary"):
        units.quarter_grid(datetime(2026, 1, 1, 0, 7, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    with pytest.raises(units.NaiveDatetimeError, match="end: naive datetime"):
        units.quarter_grid(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2))


def test_floor_and_ceil_quarter_convert_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    at = datetime(2026, 1, 1, 10, 7, 30, tzinfo=cet)
    assert units.floor_quarter(at) == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    assert units.ceil_quarter(at) == datetime(2026, 1, 1, 9, 15, tzinfo=UTC)
    assert units.ceil_quarter(datetime(2026, 1, 1, 9, 15, tzinfo=UTC)) == datetime(2026, 1, 1, 9, 15, tzinfo=UTC)
    assert units.quarter_index(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, 5, tzinfo=UTC)) == 4


def test_local_display_follows_swedish_dst() -> None:
    assert units.format_local(datetime(2026, 1, 15, 12, 0, tzinfo=UTC)) == "2026-01-15 13:00 CET"
    assert units.format_local(datetime(2026, 7, 15, 12, 0, tzinfo=UTC)) == "2026-07-15 14:00 CEST"


def test_money_is_decimal_and_refuses_floats() -> None:
    assert units.money("1.005") == Decimal("1.01")
    assert units.money_from_float(0.1 + 0.2) == Decimal("0.300")
    with pytest.raises(TypeError, match="floats are not accepted"):
        units.money(0.1)  # type: ignore[arg-type]


def test_parse_utc_accepts_z_and_names_field() -> None:
    assert units.parse_utc("2026-11-25T06:00:00Z") == datetime(2026, 11, 25, 6, tzinfo=UTC)
    with pytest.raises(ValueError, match="departure_at: 'tomorrow' is not an ISO 8601 datetime"):
        units.parse_utc("tomorrow", field="departure_at")
