"""The offers file: every number dated and sourced, bad entries refused naming their place."""

from __future__ import annotations

from copy import deepcopy
from datetime import date, time
from importlib import resources
from typing import Any

import pytest
import yaml

from v2g.planning.model import Product, Strategy
from v2g.settlement.money import SettlementInputError
from v2g.settlement.offers import load_offers, parse_offers


def _raw() -> dict[str, Any]:
    text = resources.files("v2g.settlement").joinpath("offers.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def test_the_shipped_offers_are_smart_charging_charge_only_reserves_and_v2g() -> None:
    book = load_offers()
    assert [o.id for o in book.offers] == ["smart-charging", "v1g-reserves", "v2g-basic"]
    v2g = book.offer("v2g-basic")
    assert v2g.strategy is Strategy.V2G_SPOT
    assert v2g.shares_reserve_revenue
    assert v2g.discharges
    assert book.offer("v1g-reserves").fixed_fee_sek_per_month.at(date(2026, 6, 1)) == 35
    assert book.offer("smart-charging").reserve_products == ()
    assert book.clock("reserve_bid_from_local", date(2026, 1, 1)) == time(23, 0)
    assert set(book.reserve_prices_eur_per_mw_h) == {Product.FCR_N, Product.FCR_D_UP, Product.FCR_D_DOWN}


def test_every_number_has_a_source_and_a_date() -> None:
    book = load_offers()
    ranged = [*book.ranged.values(), *book.reserve_prices_eur_per_mw_h.values()]
    for r in ranged:
        assert r.source
        assert r.valid_from.year >= 2024
    for schedule in [*book.single.values(), *book.contract.values()] + [o.fixed_fee_sek_per_month for o in book.offers]:
        for entry in schedule.entries:
            assert entry.source
            assert entry.valid_from.year >= 2024


def test_an_unknown_offer_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(SettlementInputError, match=r"offer: no offer 'gold'.*smart-charging"):
        load_offers().offer("gold")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["assumptions"]["plug_in_share"].update(high="1.5"), "assumptions.plug_in_share: must lie"),
        (lambda d: d["assumptions"]["reserve_acceptance"].update(low="0.9"), "low 0.9 <= value 0.75"),
        (lambda d: d["assumptions"]["arrival_local"].update(value="5 pm"), "arrival_local.value: '5 pm' is not"),
        (lambda d: d["assumptions"].pop("daily_use_kwh"), "assumptions.daily_use_kwh: missing"),
        (lambda d: d["reserve_prices_eur_per_mw_h"]["fcr_n"].pop("source"), r"fcr_n\[0\]\.source: missing"),
        (lambda d: d["offers"][2].update(reserve_products=["ffr"]), r"offers\[2\]"),
        (lambda d: d["contract"].pop("notice_period_days"), "contract.notice_period_days: missing"),
    ],
)
def test_bad_entries_are_refused_naming_the_field(change: Any, message: str) -> None:
    data = deepcopy(_raw())
    change(data)
    with pytest.raises(SettlementInputError, match=message):
        parse_offers(data)
