"""Owner economics with the shipped 2026 rules, every amount computed by hand in the comments.

Rules used (tariffs.yaml, January 2026): spot as given; supplier margin 5.0 öre/kWh; Ellevio energy
fee 30.0 öre/kWh, power charge 65.00 SEK/kW/month on the 3 highest daily peaks, grid benefit 5.0
öre/kWh; energy tax 36.0 öre/kWh; VAT 25 %; export fee 0; default contract: owner share 0.70,
wear allowance 30.0 öre/kWh discharged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from v2g.settlement.economics import ContractTerms, Line, power_charge, settle_ev_period
from v2g.settlement.metering import FillRule, MeterInterval, Quality
from v2g.settlement.money import SettlementInputError
from v2g.settlement.periods import SettlementPeriod
from v2g.settlement.tariffs import load_tariffs

BOOK = load_tariffs()
JAN = SettlementPeriod(2026, 1)
CONTRACT = ContractTerms.default(BOOK, JAN.first_day)


def iv(at: datetime, imp: str = "0", exp: str = "0") -> MeterInterval:
    return MeterInterval(at, Decimal(imp), Decimal(exp), Quality.MEASURED, Quality.MEASURED, (FillRule.REGISTER,), ())


def utc(day: int, hour: int, minute: int = 0, month: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def settle(intervals: list[MeterInterval], spot: dict[datetime, str], reserve: str = "0.00", **kw: object):  # type: ignore[no-untyped-def]
    args = {
        "period": JAN,
        "ev_id": "ev-1",
        "customer_id": "c-1",
        "intervals": intervals,
        "spot_ore_per_kwh": {k: Decimal(v) for k, v in spot.items()},
        "tariffs": BOOK,
        "dso_key": "ellevio",
        "contract": CONTRACT,
        "reserve_net_sek": Decimal(reserve),
    }
    args.update(kw)
    return settle_ev_period(**args)  # type: ignore[arg-type]


def test_a_month_by_hand() -> None:
    ivs = [
        iv(utc(5, 2, 0), imp="2.5"),  # spot 50 öre
        iv(utc(5, 2, 15), imp="2.5"),  # spot 50 öre  -> hour 02:00 on 5 Jan: 5.0 kWh = 5.0 kW
        iv(utc(6, 3, 0), imp="3.0"),  # spot 40 öre  -> 6 Jan peak 3.0 kW
        iv(utc(6, 17, 0), exp="2.0"),  # spot 200 öre, discharged (net -2.0: no peak)
        iv(utc(7, 4, 0), imp="1.0"),  # spot 30 öre  -> 7 Jan peak 1.0 kW
        iv(utc(8, 5, 0), imp="0.5"),  # spot 20 öre  -> 8 Jan peak 0.5 kW (4th day: not counted)
    ]
    spot = {utc(5, 2): "50", utc(5, 2, 15): "50", utc(6, 3): "40", utc(6, 17): "200", utc(7, 4): "30", utc(8, 5): "20"}
    s = settle(ivs, spot, reserve="100.01")
    # imported 2.5 + 2.5 + 3.0 + 1.0 + 0.5 = 9.5 kWh; exported 2.0 kWh
    assert (s.import_kwh, s.export_kwh) == (Decimal("9.5"), Decimal("2.0"))
    # spot: 2.5 x 0.50 + 2.5 x 0.50 + 3.0 x 0.40 + 1.0 x 0.30 + 0.5 x 0.20 = 4.10 SEK
    assert s.amount(Line.ENERGY_SPOT) == Decimal("4.10")
    # supplier margin: 9.5 x 0.05 = 0.475 -> 0.48 (half up)
    assert s.amount(Line.ENERGY_MARGIN) == Decimal("0.48")
    # DSO energy fee: 9.5 x 0.30 = 2.85
    assert s.amount(Line.GRID_ENERGY_FEE) == Decimal("2.85")
    # energy tax: 9.5 x 0.36 = 3.42
    assert s.amount(Line.ENERGY_TAX) == Decimal("3.42")
    # power charge: daily peaks 5.0, 3.0, 1.0 (0.5 is the 4th) -> (5 + 3 + 1) / 3 = 3.0 kW x 65 = 195.00
    assert s.power_charge.average_kw == Decimal("3")
    assert s.amount(Line.GRID_POWER_CHARGE) == Decimal("195.00")
    # VAT: 25 % of 4.10 + 0.48 + 2.85 + 195.00 + 3.42 = 205.85 -> 51.4625 -> 51.46
    assert s.amount(Line.VAT) == Decimal("51.46")
    # export: 2.0 x 2.00 = 4.00 to the owner; grid benefit 2.0 x 0.05 = 0.10; no export fee
    assert (s.amount(Line.EXPORT_SPOT), s.amount(Line.EXPORT_GRID_BENEFIT), s.amount(Line.EXPORT_FEE)) == (
        Decimal("4.00"),
        Decimal("0.10"),
        Decimal("0.00"),
    )
    # reserve: 0.70 x 100.01 = 70.007 -> 70.01 to the owner, 100.01 - 70.01 = 30.00 to the aggregator
    assert (s.amount(Line.RESERVE_OWNER), s.amount(Line.RESERVE_AGGREGATOR)) == (Decimal("70.01"), Decimal("30.00"))
    # wear allowance: 2.0 kWh discharged x 0.30 = 0.60
    assert s.amount(Line.WEAR_ALLOWANCE) == Decimal("0.60")
    # storage refund claim (recorded, not credited): 2.0 kWh x 0.36 = 0.72 SEK; no micro-production credit
    assert (s.storage_refund_claim_kwh, s.storage_refund_claim_sek, s.micro_production_credit_sek) == (
        Decimal("2.0"),
        Decimal("0.72"),
        Decimal(0),
    )
    # owner net: 4.00 + 0.10 + 70.01 + 0.60 - (4.10 + 0.48 + 2.85 + 195.00 + 3.42 + 51.46) = -182.60
    assert s.owner_net_sek == Decimal("-182.60")


def test_each_line_is_rounded_once_per_period_not_per_interval() -> None:
    # three quarters of 0.1 kWh: margin 0.1 x 0.05 = 0.005 SEK each. Rounded per interval that would be
    # 3 x 0.01 = 0.03; summed first it is 0.015 -> 0.02.
    ivs = [iv(utc(5, 10, 15 * k), imp="0.1") for k in range(3)]
    s = settle(ivs, {x.start_at: "0" for x in ivs})
    assert s.amount(Line.ENERGY_MARGIN) == Decimal("0.02")


def test_energy_tax_follows_the_local_date_across_new_year() -> None:
    # 2025-12-31 22:45 UTC is 23:45 in Stockholm (43.9 öre); 23:00 UTC is already 1 Jan 2026 (36.0 öre)
    dec = SettlementPeriod(2025, 12)
    old = settle([iv(utc(31, 22, 45, month=12, year=2025), imp="10")], {utc(31, 22, 45, 12, 2025): "0"}, period=dec)
    new = settle([iv(utc(31, 23, 0, month=12, year=2025), imp="10")], {utc(31, 23, 0, 12, 2025): "0"})
    # 10 kWh x 0.439 = 4.39 SEK; 10 kWh x 0.360 = 3.60 SEK
    assert (old.amount(Line.ENERGY_TAX), new.amount(Line.ENERGY_TAX)) == (Decimal("4.39"), Decimal("3.60"))
    assert old.period == dec
    assert JAN.start_at == utc(31, 23, 0, 12, 2025)


def test_negative_spot_pays_the_owner_for_charging_and_vat_follows() -> None:
    # 4 kWh at -25 öre: spot -1.00; margin 0.20, fee 1.20, tax 1.44, and the power charge on 4 kW / 3 =
    # 1.333.. kW x 65 = 86.666.. -> 86.67. VAT 25 % of (-1.00 + 0.20 + 1.20 + 86.67 + 1.44 = 88.51) = 22.1275 -> 22.13
    s = settle([iv(utc(10, 12), imp="4")], {utc(10, 12): "-25"})
    assert s.amount(Line.ENERGY_SPOT) == Decimal("-1.00")
    assert s.amount(Line.GRID_POWER_CHARGE) == Decimal("86.67")
    assert s.amount(Line.VAT) == Decimal("22.13")


def test_power_charge_counts_each_day_once() -> None:
    # 14 Jan: 6 kW at 07:00 and 5 kW at 19:00 (same day: only 6 counts); 15 Jan: 2 kW. Two peaks:
    # (6 + 2) / 2 = 4 kW x 10 SEK = 40 SEK
    ivs = [iv(utc(14, 7), imp="6"), iv(utc(14, 19), imp="5"), iv(utc(15, 8), imp="2")]
    charge = power_charge(ivs, 2, Decimal("10"))
    assert [kwh for _, kwh in charge.peaks] == [Decimal("6"), Decimal("2")]
    assert (charge.average_kw, charge.amount_sek) == (Decimal("4"), Decimal("40"))


def test_power_charge_nets_export_within_the_hour() -> None:
    # 11:00-11:15 imports 3 kWh, 11:15-11:30 exports 2 kWh: net 1 kWh in the hour -> peak 1 kW
    charge = power_charge([iv(utc(14, 11), imp="3"), iv(utc(14, 11, 15), exp="2")], 3, Decimal("65"))
    # (1 + 0 + 0) / 3 = 0.333.. kW x 65 = 21.666..
    assert charge.peaks == ((utc(14, 11), Decimal("1")),)
    assert charge.amount_sek.quantize(Decimal("0.01")) == Decimal("21.67")


def test_refuses_missing_prices_and_foreign_intervals() -> None:
    with pytest.raises(SettlementInputError, match=r"spot_ore_per_kwh: no price for the interval at 2026-01-05T02:00"):
        settle([iv(utc(5, 2), imp="1")], {})
    with pytest.raises(SettlementInputError, match=r"intervals: 2026-02-01T00:00:00\+00:00 is outside 2026-01"):
        settle([iv(utc(1, 0, month=2), imp="1")], {utc(1, 0, month=2): "1"})
    with pytest.raises(SettlementInputError, match=r"reserve_net_sek: 1\.001 is not a whole number of öre"):
        settle([], {}, reserve="1.001")
    with pytest.raises(SettlementInputError, match=r"contract.owner_revenue_share: 1.5 must be between 0 and 1"):
        ContractTerms(Decimal("1.5"), Decimal(0))
