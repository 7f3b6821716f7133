"""Settlement periods are Swedish local months; prices and market money are converted exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from v2g.settlement.economics import eur_to_sek, spot_ore_per_kwh
from v2g.settlement.money import SettlementInputError, decimal_of, round_ore
from v2g.settlement.periods import SettlementPeriod


def test_a_period_is_a_local_month_in_utc() -> None:
    jan = SettlementPeriod.parse("2026-01")
    # CET is UTC+1: 1 Jan 00:00 local = 31 Dec 23:00 UTC
    assert jan.start_at == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert jan.end_at == datetime(2026, 1, 31, 23, tzinfo=UTC)
    # summer time starts 29 Mar 2026 (23 h) and ends 25 Oct 2026 (25 h)
    assert SettlementPeriod(2026, 3).end_at - SettlementPeriod(2026, 3).start_at == timedelta(hours=31 * 24 - 1)
    assert SettlementPeriod(2026, 10).end_at - SettlementPeriod(2026, 10).start_at == timedelta(hours=31 * 24 + 1)
    assert (jan.previous().code, jan.next().code, SettlementPeriod(2026, 12).next().code) == (
        "2025-12",
        "2026-02",
        "2027-01",
    )
    assert SettlementPeriod.containing(datetime(2026, 1, 31, 23, 30, tzinfo=UTC)).code == "2026-02"
    assert len(SettlementPeriod(2024, 2).days()) == 29


def test_bad_periods_name_the_field() -> None:
    with pytest.raises(SettlementInputError, match=r"period: '2026-1' is not a month as YYYY-MM"):
        SettlementPeriod.parse("2026-1")
    with pytest.raises(SettlementInputError, match=r"period\.month: 13 is not 1-12"):
        SettlementPeriod(2026, 13)


def test_price_and_money_conversion_by_hand() -> None:
    # 61.25 EUR/MWh x 11.47 SEK/EUR = 702.5375 SEK/MWh = 0.7025375 SEK/kWh = 70.25375 öre/kWh
    assert spot_ore_per_kwh(Decimal("61.25"), Decimal("11.47")) == Decimal("70.25375")
    # a price is taken to the cent first: 61.254 -> 61.25
    assert spot_ore_per_kwh(Decimal("61.254"), Decimal("11.47")) == Decimal("70.25375")
    # 12.345 EUR x 11.47 = 141.59715 SEK -> 141.60 (rounded once, before it is split)
    assert eur_to_sek(Decimal("12.345"), Decimal("11.47")) == Decimal("141.60")
    # ties go away from zero, as on an invoice
    assert (round_ore(Decimal("0.005")), round_ore(Decimal("-0.005")), round_ore(Decimal("0.0049"))) == (
        Decimal("0.01"),
        Decimal("-0.01"),
        Decimal("0.00"),
    )


def test_floats_enter_through_their_shortest_repr_and_nan_is_refused() -> None:
    assert decimal_of(0.1, field="x") == Decimal("0.1")
    with pytest.raises(SettlementInputError, match=r"meter\.value: nan is not a finite number"):
        decimal_of(float("nan"), field="meter.value")
