"""The shipped rules: each number by date with its source; bad files are refused naming the place."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import yaml

from v2g.settlement.money import SettlementInputError
from v2g.settlement.tariffs import Confidence, load_tariffs, parse_tariffs

BOOK = load_tariffs()


def test_energy_tax_changes_on_new_year_by_the_local_date() -> None:
    tax = BOOK.energy_tax_ore_per_kwh
    assert tax.at(date(2024, 6, 1)) == Decimal("42.8")
    assert tax.at(date(2025, 12, 31)) == Decimal("43.9")
    # 43.9 - 7.9 öre cut = 36.0 öre/kWh excl. VAT from 1 Jan 2026 (45.0 incl. 25 % VAT)
    assert tax.at(date(2026, 1, 1)) == Decimal("36.0")
    assert tax.at(date(2026, 1, 1)) * (1 + BOOK.vat_rate.at(date(2026, 1, 1))) == Decimal("45.000")
    assert tax.entry(date(2026, 1, 1)).confidence is Confidence.MEDIUM
    with pytest.raises(SettlementInputError, match=r"energy_tax_ore_per_kwh: no value before 2024-01-01"):
        tax.at(date(2023, 12, 31))


def test_vat_micro_production_credit_and_storage_refund() -> None:
    assert BOOK.vat_rate.at(date(2026, 3, 1)) == Decimal("0.25")
    assert BOOK.micro_production_credit_ore_per_kwh.at(date(2025, 12, 31)) == Decimal("60")
    assert BOOK.micro_production_credit_ore_per_kwh.at(date(2026, 1, 1)) == Decimal("0")
    assert BOOK.storage_refund.at(date(2026, 1, 1)) == Decimal("1")


def test_dso_tariffs_are_per_dso() -> None:
    ellevio = BOOK.dso("ellevio")
    day = date(2026, 1, 1)
    assert (ellevio.energy_fee_ore_per_kwh.at(day), ellevio.power_charge_sek_per_kw_month.at(day)) == (
        Decimal("30.0"),
        Decimal("65.00"),
    )
    assert ellevio.peaks(day) == 3
    # Göteborg Energi's 43.75 SEK/kW appears to include VAT: 43.75 / 1.25 = 35.00 excl. VAT
    assert BOOK.dso("goteborg_energi").power_charge_sek_per_kw_month.at(day) == Decimal("43.75") / Decimal("1.25")
    with pytest.raises(SettlementInputError, match=r"dso_tariff: no tariff 'nobody' .*known: ellevio, goteborg_energi"):
        BOOK.dso("nobody")


def test_every_number_has_a_source_and_the_uncertain_ones_are_listed() -> None:
    for schedule in BOOK.schedules():
        for entry in schedule.entries:
            assert entry.source.strip(), schedule.name
    uncertain = {name for name, _ in BOOK.uncertain()}
    assert "currency.sek_per_eur" in uncertain
    assert "dsos.ellevio.power_charge_sek_per_kw_month" in uncertain
    assert "energy_tax_ore_per_kwh" not in uncertain  # medium and confident only


def _doc() -> dict[str, Any]:
    from importlib import resources

    text = resources.files("v2g.settlement").joinpath("tariffs.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def test_a_float_in_the_file_is_refused_because_it_would_not_be_exact() -> None:
    doc = _doc()
    doc["vat_rate"][0]["value"] = 0.25
    with pytest.raises(SettlementInputError, match=r"vat_rate\[0\]\.value: write 0.25 as a quoted string"):
        parse_tariffs(doc)


def test_a_number_without_a_source_is_refused() -> None:
    doc = _doc()
    doc["dsos"]["ellevio"]["energy_fee_ore_per_kwh"][0]["source"] = " "
    with pytest.raises(
        SettlementInputError, match=r"dsos\.ellevio\.energy_fee_ore_per_kwh\[0\]\.source: must not be empty"
    ):
        parse_tariffs(doc)


def test_dates_must_increase() -> None:
    doc = _doc()
    doc["energy_tax_ore_per_kwh"][2]["valid_from"] = date(2024, 6, 1)
    with pytest.raises(
        SettlementInputError, match="energy_tax_ore_per_kwh: valid_from dates must be strictly increasing"
    ):
        parse_tariffs(doc)
