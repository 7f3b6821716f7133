"""Each term of the quick value indication on its own: nights a year, sellable reserve per hour, revenue."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

import numpy as np
import pytest

from v2g.planning.model import PRODUCTS, Product
from v2g.planning.rules import load_rules
from v2g.services.planning.value_terms import (
    HourState,
    hourly_states,
    nights_per_year,
    reserve_eur,
    sellable_kw,
)

RULES = load_rules()
SEVEN = 7.0
PRICES = {Product.FCR_N: Decimal("25"), Product.FCR_D_UP: Decimal("4"), Product.FCR_D_DOWN: Decimal("7")}
N_DEAR = {Product.FCR_N: Decimal("25"), Product.FCR_D_UP: Decimal("1"), Product.FCR_D_DOWN: Decimal("1")}


def _state(**kw: float) -> HourState:
    base = {
        "p_kw": 0.0,
        "soc_low_kwh": 60.0,
        "soc_high_kwh": 60.0,
        "min_soc_kwh": 15.0,
        "battery_kwh": 77.0,
        "max_charge_kw": 11.0,
        "max_discharge_kw": 10.0,
    }
    return HourState(**(base | kw))


def test_nights_a_year_come_from_the_owners_departures_and_the_plugged_in_share() -> None:
    weekdays = (time(7),) * 5 + (None, None)
    assert nights_per_year(weekdays, Decimal(1)) == Decimal(5) / 7 * Decimal("365.25")
    assert nights_per_year((time(7),) * 7, Decimal("0.7")) == Decimal("365.25") * Decimal("0.7")
    assert nights_per_year((None,) * 7, Decimal(1)) == 0  # no departure, no night the EV can be planned for
    with pytest.raises(ValueError, match="plug_in_share"):
        nights_per_year(weekdays, Decimal("1.2"))
    with pytest.raises(ValueError, match="departures"):
        nights_per_year(weekdays[:6], Decimal(1))


def test_an_idle_v2g_ev_sells_fcr_n_of_min_up_down_over_the_ler_power_factor() -> None:
    sold = sellable_kw(_state(), PRODUCTS, RULES, PRICES)
    assert sold == {Product.FCR_N: pytest.approx(10.0 / RULES.fcr_n_power_range_factor)}  # min(10, 11) / 1.34


def test_fcr_n_is_symmetric_so_planned_charging_leaves_less_room_to_charge_more() -> None:
    sold = sellable_kw(_state(p_kw=6.0), PRODUCTS, RULES, N_DEAR)
    assert sold[Product.FCR_N] == pytest.approx(5.0 / RULES.fcr_n_power_range_factor)  # down = 11 - 6


def test_fcr_n_needs_an_hour_of_energy_above_the_minimum_soc() -> None:
    sold = sellable_kw(_state(soc_low_kwh=18.0), PRODUCTS, RULES, N_DEAR)
    assert sold[Product.FCR_N] == pytest.approx(3.0 / RULES.fcr_n_endurance_h)


def test_the_hour_sells_fcr_d_when_the_two_fcr_d_prices_pay_more_than_fcr_n() -> None:
    # charging at 6 kW leaves 5 kW down: FCR-N 3.7 kW x 25 < FCR-D up 16 kW x 4 + down 5 kW x 7
    charging = sellable_kw(_state(p_kw=6.0), PRODUCTS, RULES, PRICES)
    assert charging == {Product.FCR_D_UP: pytest.approx(16.0), Product.FCR_D_DOWN: pytest.approx(5.0)}
    dear_d = {Product.FCR_N: Decimal("5"), Product.FCR_D_UP: Decimal("20"), Product.FCR_D_DOWN: Decimal("20")}
    sold = sellable_kw(_state(), PRODUCTS, RULES, dear_d)
    assert sold == {Product.FCR_D_UP: pytest.approx(10.0), Product.FCR_D_DOWN: pytest.approx(11.0)}


def test_a_charge_only_ev_sells_down_only_with_two_hours_of_room_and_up_only_while_charging() -> None:
    v1g = (Product.FCR_D_UP, Product.FCR_D_DOWN)
    idle = sellable_kw(_state(max_discharge_kw=0.0, soc_high_kwh=70.0), v1g, RULES, PRICES)
    assert idle[Product.FCR_D_UP] == 0.0
    assert idle[Product.FCR_D_DOWN] == pytest.approx(3.5)  # (77 - 70) kWh over the 2 h a charge-only unit must hold
    charging = sellable_kw(_state(max_discharge_kw=0.0, p_kw=4.0, soc_high_kwh=40.0), v1g, RULES, PRICES)
    assert charging[Product.FCR_D_UP] == pytest.approx(4.0)  # it can stop charging
    assert charging[Product.FCR_D_DOWN] == pytest.approx(7.0)


def test_no_reserve_product_in_the_offer_sells_nothing() -> None:
    assert sellable_kw(_state(), (), RULES, PRICES) == {}


def test_reserve_revenue_is_capacity_times_price_times_accepted_share() -> None:
    hours = [{Product.FCR_N: 7.5}] * 7
    expected = Decimal("7.5") / 1000 * 25 * 7 * Decimal("0.75")
    assert reserve_eur(hours, PRICES, Decimal("0.75")) == expected
    assert reserve_eur([], PRICES, Decimal(1)) == 0
    with pytest.raises(ValueError, match="reserve_acceptance"):
        reserve_eur(hours, PRICES, Decimal("1.5"))


def test_hourly_states_read_the_plans_power_and_the_energy_range_of_each_hour() -> None:
    p = np.array([0.0] * 4 + [8.0, 8.0, 0.0, 0.0] + [0.0] * 4)
    soc = np.concatenate([[50.0] * 5, [52.0, 54.0, 54.0], [54.0] * 5])
    states = hourly_states(p, soc, 4, 5, min_soc_kwh=15.0, battery_kwh=77.0, max_charge_kw=11.0, max_discharge_kw=10.0)
    assert len(states) == 2  # the horizon holds two whole hours from quarter 4
    assert states[0].p_kw == pytest.approx(4.0)
    assert (states[0].soc_low_kwh, states[0].soc_high_kwh) == (50.0, 54.0)
    assert states[1].p_kw == 0.0
