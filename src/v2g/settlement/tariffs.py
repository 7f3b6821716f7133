"""The owner-economics rules as data: dated schedules loaded from ``tariffs.yaml``.

Every number has a ``valid_from`` local date, a source and a confidence flag (C, M, U); code asks a
schedule for the value on a date and gets the entry with its source, so a statement can cite it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from v2g.settlement.money import SettlementInputError, decimal_of


class Confidence(StrEnum):
    """How sure the source is (see the header of ``tariffs.yaml``)."""

    CONFIDENT = "C"
    MEDIUM = "M"
    UNCERTAIN = "U"


@dataclass(frozen=True, slots=True)
class DatedValue:
    """One number of a schedule: valid from a local date until the next entry."""

    valid_from: date
    value: Decimal
    confidence: Confidence
    source: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A number that changes by date (energy tax, a DSO's fee, ...)."""

    name: str
    entries: tuple[DatedValue, ...]

    def __post_init__(self) -> None:
        if not self.entries:
            msg = f"{self.name}: no entries"
            raise SettlementInputError(msg)
        days = [e.valid_from for e in self.entries]
        if days != sorted(days) or len(set(days)) != len(days):
            msg = f"{self.name}: valid_from dates must be strictly increasing"
            raise SettlementInputError(msg)

    def entry(self, day: date) -> DatedValue:
        """The entry in force on local date ``day``."""
        found: DatedValue | None = None
        for e in self.entries:
            if e.valid_from <= day:
                found = e
        if found is None:
            msg = f"{self.name}: no value before {self.entries[0].valid_from.isoformat()} (asked for {day.isoformat()})"
            raise SettlementInputError(msg)
        return found

    def at(self, day: date) -> Decimal:
        """The value in force on local date ``day``."""
        return self.entry(day).value

    def changes_within(self, first: date, last: date) -> bool:
        """True when a new entry starts after ``first`` and on or before ``last``."""
        return any(first < e.valid_from <= last for e in self.entries)


@dataclass(frozen=True, slots=True)
class DsoTariff:
    """A DSO's grid tariff for the energy that passes the owner's meter."""

    key: str
    name: str
    energy_fee_ore_per_kwh: Schedule
    power_charge_sek_per_kw_month: Schedule
    power_charge_peaks: Schedule
    grid_benefit_ore_per_kwh: Schedule

    def peaks(self, day: date) -> int:
        """How many daily peaks the power charge averages."""
        return int(self.power_charge_peaks.at(day))


@dataclass(frozen=True, slots=True)
class MeteringRules:
    """Thresholds of the metering rules (see :mod:`v2g.settlement.metering`)."""

    max_measured_span_s: int
    max_power_hold_s: int
    interval_minutes: int
    sources: Mapping[str, str]

    def __post_init__(self) -> None:
        if self.max_measured_span_s <= 0:
            msg = "metering.max_measured_span_s: must be > 0"
            raise SettlementInputError(msg)
        if self.max_power_hold_s <= 0:
            msg = "metering.max_power_hold_s: must be > 0"
            raise SettlementInputError(msg)
        if self.interval_minutes != 15:
            msg = f"metering.interval_minutes: {self.interval_minutes}; settlement runs on 15-minute intervals"
            raise SettlementInputError(msg)


@dataclass(frozen=True, slots=True)
class TariffBook:
    """Every rule of owner economics, by date."""

    sek_per_eur: Schedule
    energy_tax_ore_per_kwh: Schedule
    vat_rate: Schedule
    micro_production_credit_ore_per_kwh: Schedule
    storage_refund: Schedule
    import_margin_ore_per_kwh: Schedule
    export_fee_ore_per_kwh: Schedule
    dsos: Mapping[str, DsoTariff]
    owner_revenue_share: Schedule
    wear_allowance_ore_per_kwh: Schedule
    metering: MeteringRules

    def dso(self, key: str) -> DsoTariff:
        """The tariff ``key``; an unknown key is an error naming it and the known ones."""
        try:
            return self.dsos[key]
        except KeyError:
            msg = f"dso_tariff: no tariff {key!r} in the settlement rules (known: {', '.join(sorted(self.dsos))})"
            raise SettlementInputError(msg) from None

    def schedules(self) -> Iterator[Schedule]:
        """Every schedule of the book (for documentation and checks)."""
        yield from (
            self.sek_per_eur,
            self.energy_tax_ore_per_kwh,
            self.vat_rate,
            self.micro_production_credit_ore_per_kwh,
            self.storage_refund,
            self.import_margin_ore_per_kwh,
            self.export_fee_ore_per_kwh,
            self.owner_revenue_share,
            self.wear_allowance_ore_per_kwh,
        )
        for tariff in self.dsos.values():
            yield from (
                tariff.energy_fee_ore_per_kwh,
                tariff.power_charge_sek_per_kw_month,
                tariff.power_charge_peaks,
                tariff.grid_benefit_ore_per_kwh,
            )

    def uncertain(self) -> list[tuple[str, DatedValue]]:
        """The entries flagged uncertain, to be checked before billing."""
        return [(s.name, e) for s in self.schedules() for e in s.entries if e.confidence is Confidence.UNCERTAIN]


def _req(data: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(data, Mapping) or key not in data:
        msg = f"{where}.{key}: missing"
        raise SettlementInputError(msg)
    return data[key]


def _date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        msg = f"{where}.valid_from: {value!r} is not a date as YYYY-MM-DD"
        raise SettlementInputError(msg) from None


def _schedule(data: Any, name: str) -> Schedule:
    if not isinstance(data, list):
        msg = f"{name}: must be a list of dated entries"
        raise SettlementInputError(msg)
    entries = []
    for i, raw in enumerate(data):
        where = f"{name}[{i}]"
        value = _req(raw, "value", where)
        if isinstance(value, float):  # YAML floats would not be exact: quote the numbers
            msg = f"{where}.value: write {value!r} as a quoted string so it stays exact"
            raise SettlementInputError(msg)
        try:
            confidence = Confidence(str(_req(raw, "confidence", where)))
        except ValueError:
            msg = f"{where}.confidence: must be C, M or U"
            raise SettlementInputError(msg) from None
        source = str(_req(raw, "source", where)).strip()
        if not source:
            msg = f"{where}.source: must not be empty"
            raise SettlementInputError(msg)
        entries.append(
            DatedValue(
                valid_from=_date(_req(raw, "valid_from", where), where),
                value=decimal_of(str(value), field=f"{where}.value"),
                confidence=confidence,
                source=source,
                note=str(raw.get("note", "")),
            )
        )
    return Schedule(name, tuple(entries))


def parse_tariffs(data: Mapping[str, Any]) -> TariffBook:
    """Build the book from the parsed YAML document; every problem names its place in the file."""
    if _req(data, "version", "tariffs") != 1:
        msg = "tariffs.version: only version 1 is known"
        raise SettlementInputError(msg)
    supplier = _req(data, "supplier", "tariffs")
    contract = _req(data, "contract_default", "tariffs")
    dsos: dict[str, DsoTariff] = {}
    for key, raw in dict(_req(data, "dsos", "tariffs")).items():
        where = f"dsos.{key}"
        dsos[str(key)] = DsoTariff(
            key=str(key),
            name=str(_req(raw, "name", where)),
            energy_fee_ore_per_kwh=_schedule(
                _req(raw, "energy_fee_ore_per_kwh", where), f"{where}.energy_fee_ore_per_kwh"
            ),
            power_charge_sek_per_kw_month=_schedule(
                _req(raw, "power_charge_sek_per_kw_month", where), f"{where}.power_charge_sek_per_kw_month"
            ),
            power_charge_peaks=_schedule(_req(raw, "power_charge_peaks", where), f"{where}.power_charge_peaks"),
            grid_benefit_ore_per_kwh=_schedule(
                _req(raw, "grid_benefit_ore_per_kwh", where), f"{where}.grid_benefit_ore_per_kwh"
            ),
        )
        for e in dsos[str(key)].power_charge_peaks.entries:
            if e.value != int(e.value) or e.value < 1:
                msg = f"{where}.power_charge_peaks: {e.value} must be a whole number >= 1"
                raise SettlementInputError(msg)
    metering = _req(data, "metering", "tariffs")
    book = TariffBook(
        sek_per_eur=_schedule(
            _req(_req(data, "currency", "tariffs"), "sek_per_eur", "currency"), "currency.sek_per_eur"
        ),
        energy_tax_ore_per_kwh=_schedule(_req(data, "energy_tax_ore_per_kwh", "tariffs"), "energy_tax_ore_per_kwh"),
        vat_rate=_schedule(_req(data, "vat_rate", "tariffs"), "vat_rate"),
        micro_production_credit_ore_per_kwh=_schedule(
            _req(data, "micro_production_credit_ore_per_kwh", "tariffs"), "micro_production_credit_ore_per_kwh"
        ),
        storage_refund=_schedule(_req(data, "storage_refund", "tariffs"), "storage_refund"),
        import_margin_ore_per_kwh=_schedule(
            _req(supplier, "import_margin_ore_per_kwh", "supplier"), "supplier.import_margin_ore_per_kwh"
        ),
        export_fee_ore_per_kwh=_schedule(
            _req(supplier, "export_fee_ore_per_kwh", "supplier"), "supplier.export_fee_ore_per_kwh"
        ),
        dsos=dsos,
        owner_revenue_share=_schedule(
            _req(contract, "owner_revenue_share", "contract_default"), "contract_default.owner_revenue_share"
        ),
        wear_allowance_ore_per_kwh=_schedule(
            _req(contract, "wear_allowance_ore_per_kwh", "contract_default"),
            "contract_default.wear_allowance_ore_per_kwh",
        ),
        metering=MeteringRules(
            max_measured_span_s=int(_req(_req(metering, "max_measured_span_s", "metering"), "value", "metering")),
            max_power_hold_s=int(_req(_req(metering, "max_power_hold_s", "metering"), "value", "metering")),
            interval_minutes=int(_req(_req(metering, "interval_minutes", "metering"), "value", "metering")),
            sources={k: str(_req(v, "source", f"metering.{k}")) for k, v in dict(metering).items()},
        ),
    )
    for e in book.vat_rate.entries + book.owner_revenue_share.entries:
        if not Decimal(0) <= e.value <= Decimal(1):
            msg = f"vat_rate / owner_revenue_share: {e.value} must be a fraction between 0 and 1"
            raise SettlementInputError(msg)
    return book


def load_tariffs(path: Path | None = None) -> TariffBook:
    """The shipped ``tariffs.yaml``, or the file at ``path``."""
    if path is None:
        text = resources.files("v2g.settlement").joinpath("tariffs.yaml").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, Mapping):
        msg = "tariffs: the file is not a YAML mapping"
        raise SettlementInputError(msg)
    return parse_tariffs(data)
