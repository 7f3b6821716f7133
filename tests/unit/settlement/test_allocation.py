"""Largest-remainder splits and the reserve revenue allocation, each with the arithmetic written out."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from v2g.settlement.allocation import (
    EvContribution,
    ReserveHour,
    allocate,
    allocate_reserve_hour,
    largest_remainder,
)
from v2g.settlement.money import KWH_QUANTUM, SettlementInputError

HOUR = datetime(2026, 1, 5, 17, tzinfo=UTC)


def test_thirds_of_a_hundred_kronor() -> None:
    # 10 000 öre / 3 = 3 333.33..: each gets 3 333, one öre is left; the remainders tie (.33..), so it
    # goes to the first key: 33.34 + 33.33 + 33.33 = 100.00
    assert allocate(Decimal("100.00"), {"ev-b": Decimal(1), "ev-a": Decimal(1), "ev-c": Decimal(1)}) == {
        "ev-a": Decimal("33.34"),
        "ev-b": Decimal("33.33"),
        "ev-c": Decimal("33.33"),
    }


def test_the_largest_remainder_gets_the_unit_left_over() -> None:
    # 1 000 öre by 2:1 -> 666.67 and 333.33: floors 666 + 333 = 999; remainders .67 and .33 -> 6.67, 3.33
    assert largest_remainder(Decimal("10.00"), [Decimal(2), Decimal(1)]) == [Decimal("6.67"), Decimal("3.33")]
    # a negative total splits like its absolute value
    assert largest_remainder(Decimal("-10.00"), [Decimal(2), Decimal(1)]) == [Decimal("-6.67"), Decimal("-3.33")]
    # energy: 0.0010 kWh in 3 equal parts of 0.1 Wh quanta -> 0.0004 + 0.0003 + 0.0003
    assert largest_remainder(Decimal("0.0010"), [Decimal(1)] * 3, KWH_QUANTUM) == [
        Decimal("0.0004"),
        Decimal("0.0003"),
        Decimal("0.0003"),
    ]


def test_split_refuses_what_cannot_be_split() -> None:
    with pytest.raises(SettlementInputError, match=r"total: 1\.001 is not a whole number of 0\.01"):
        largest_remainder(Decimal("1.001"), [Decimal(1)])
    with pytest.raises(SettlementInputError, match="weights: all zero"):
        largest_remainder(Decimal("1.00"), [Decimal(0), Decimal(0)])
    with pytest.raises(SettlementInputError, match="weights: must all be >= 0"):
        largest_remainder(Decimal("1.00"), [Decimal(1), Decimal(-1)])


def test_reserve_hour_is_shared_by_capacity_activation_and_the_repayment_each_caused() -> None:
    hour = ReserveHour(
        "g-1",
        "fcr_n",
        HOUR,
        capacity_payment_sek=Decimal("300.00"),
        activation_payment_sek=Decimal("12.34"),
        repayment_sek=Decimal("50.00"),
        contributions=(
            EvContribution("ev-a", held_kwh=Decimal("10"), activated_kwh=Decimal("1.0")),
            EvContribution("ev-b", held_kwh=Decimal("5"), activated_kwh=Decimal("3.0"), shortfall_kwh=Decimal("2")),
        ),
    )
    alloc = allocate_reserve_hour(hour)
    # capacity by capacity-hours 10:5 -> 200.00 / 100.00
    assert alloc.capacity_sek == {"ev-a": Decimal("200.00"), "ev-b": Decimal("100.00")}
    # activation by energy 1:3 -> 1 234 öre x 1/4 = 308.5, x 3/4 = 925.5; floors 308 + 925 = 1 233,
    # remainders tie at .5, the öre left goes to ev-a -> 3.09 / 9.25
    assert alloc.activation_sek == {"ev-a": Decimal("3.09"), "ev-b": Decimal("9.25")}
    # repayment by the capacity-hours each failed to hold: only ev-b fell short -> ev-b repays 50.00
    assert alloc.repayment_sek == {"ev-b": Decimal("50.00")}
    assert alloc.repayment_rule == "shortfall"
    # net: ev-a 200.00 + 3.09 = 203.09; ev-b 100.00 + 9.25 - 50.00 = 59.25; sum 262.34 = 300 + 12.34 - 50
    assert (alloc.net_sek("ev-a"), alloc.net_sek("ev-b")) == (Decimal("203.09"), Decimal("59.25"))
    assert alloc.net_sek("ev-a") + alloc.net_sek("ev-b") + alloc.unallocated_sek == hour.net_sek == Decimal("262.34")


def test_a_repayment_nobody_caused_is_shared_by_capacity_held() -> None:
    # every EV held its share, the group still under-delivered: 30.00 repaid 10:5 -> 20.00 / 10.00
    hour = ReserveHour(
        "g-1",
        "fcr_d_up",
        HOUR,
        Decimal("60.00"),
        Decimal("0.00"),
        Decimal("30.00"),
        (EvContribution("ev-a", held_kwh=Decimal("10")), EvContribution("ev-b", held_kwh=Decimal("5"))),
    )
    alloc = allocate_reserve_hour(hour)
    assert alloc.repayment_rule == "held"
    assert alloc.repayment_sek == {"ev-a": Decimal("20.00"), "ev-b": Decimal("10.00")}
    assert (alloc.net_sek("ev-a"), alloc.net_sek("ev-b")) == (Decimal("20.00"), Decimal("10.00"))


def test_money_no_ev_earned_stays_unallocated() -> None:
    hour = ReserveHour("g-1", "fcr_n", HOUR, Decimal("40.00"), Decimal("0.00"), Decimal("15.00"), ())
    alloc = allocate_reserve_hour(hour)
    assert alloc.ev_ids == []
    assert alloc.unallocated_sek == Decimal("25.00") == hour.net_sek
    assert alloc.repayment_rule == "unallocated"


def test_reserve_hour_input_checks_name_the_field() -> None:
    with pytest.raises(SettlementInputError, match=r"capacity_payment_sek: 1.005 is not a whole number of öre"):
        ReserveHour("g-1", "fcr_n", HOUR, Decimal("1.005"), Decimal(0), Decimal(0))
    with pytest.raises(SettlementInputError, match=r"repayment_sek: must be >= 0"):
        ReserveHour("g-1", "fcr_n", HOUR, Decimal(0), Decimal(0), Decimal("-1.00"))
    with pytest.raises(SettlementInputError, match=r"contribution\[ev-a\]\.held_kwh: must be >= 0"):
        EvContribution("ev-a", held_kwh=Decimal(-1))
    with pytest.raises(SettlementInputError, match="an EV is listed twice"):
        ReserveHour(
            "g-1", "fcr_n", HOUR, Decimal(0), Decimal(0), Decimal(0), (EvContribution("ev-a"), EvContribution("ev-a"))
        )
