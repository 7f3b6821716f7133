"""Planner rules from configuration and the price file readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from v2g.adapters.feeds.planner_prices import read_planner_day_ahead_csv as parse_prices
from v2g.adapters.feeds.planner_prices import read_planner_reserve_csv as parse_reserve_prices
from v2g.fleet.model import PriceArea
from v2g.planning import PlanningInputError, Product, load_rules

START = datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_packaged_rules_carry_the_nordic_numbers() -> None:
    rules = load_rules()
    assert rules.fcr_n_power_range_factor == pytest.approx(1.34)
    assert rules.fcr_n_endurance_h == pytest.approx(1.0)
    assert rules.fcr_d_endurance_h == pytest.approx(1 / 3)
    assert rules.fcr_d_nem_power_factor == pytest.approx(0.2)
    assert (rules.min_bid_mw, rules.bid_granularity_mw, rules.confidence) == (0.1, 0.1, 0.95)
    # 36 öre/kWh energy tax at 11.47 SEK/EUR; VAT 25 % on spot + grid fee + tax
    assert rules.energy_tax_eur_per_kwh == pytest.approx(0.36 / 11.47)
    assert rules.import_price_eur_per_kwh(100.0) == pytest.approx((0.1 + 0.25 / 11.47 + 0.36 / 11.47) * 1.25)
    assert rules.export_price_eur_per_kwh(100.0) == pytest.approx(0.1 + 0.05 / 11.47 + 0.36 / 11.47)


def test_bad_rules_name_the_field() -> None:
    with pytest.raises(PlanningInputError, match=r"rules.yaml: missing fcr.fcr_n.power_range_factor"):
        load_rules("currency: {sek_per_eur: 11}\nfcr: {fcr_n: {}}\n")
    with pytest.raises(PlanningInputError, match=r"rules.confidence: 1.0 must lie strictly between 0 and 1"):
        load_rules().with_options(confidence=1.0)


def test_prices_at_quarter_and_hour_resolution() -> None:
    quarters = "start_at,SE3,SE4\n" + "".join(
        f"{(START + timedelta(minutes=15 * k)).isoformat()},{k},{2 * k}\n" for k in range(8)
    )
    prices = parse_prices(quarters, START, 8)
    assert prices[PriceArea.SE3] == tuple(float(k) for k in range(8))
    assert prices[PriceArea.SE4][7] == 14.0
    hours = "start_at,SE3\n2026-11-25T12:00:00Z,10\n2026-11-25T13:00:00Z,20\n"
    assert parse_prices(hours, START, 8) == {PriceArea.SE3: (10.0, 20.0)}
    with pytest.raises(PlanningInputError, match=r"prices.SE3 at 2026-11-25T13:00:00\+00:00: 'x' is not a number"):
        parse_prices("start_at,SE3\n2026-11-25T12:00:00Z,10\n2026-11-25T13:00:00Z,x\n", START, 8)
    with pytest.raises(PlanningInputError, match=r"naive datetime"):
        parse_prices("start_at,SE3\n2026-11-25T12:00:00,10\n", START, 4)


def test_reserve_prices() -> None:
    text = "hour_start_at,fcr_n,fcr_d_up\n2026-11-25T12:00:00Z,30,5\n2026-11-25T13:00:00Z,31,6\n"
    assert parse_reserve_prices(text, START, 2) == {Product.FCR_N: (30.0, 31.0), Product.FCR_D_UP: (5.0, 6.0)}
    with pytest.raises(PlanningInputError, match=r"reserve prices.fcr_n: no price for 2026-11-25T14:00:00\+00:00"):
        parse_reserve_prices(text, START, 3)
