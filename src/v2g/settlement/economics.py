"""Owner economics: what an EV's metered energy, its reserve work and its battery wear are worth to
its owner, per interval and per settlement period, line by line.

Per interval (unrounded SEK, for statements):

* ``energy.spot``            imported kWh x the day-ahead price of the interval (spot, öre/kWh)
* ``energy.supplier_margin`` imported kWh x the supplier's margin
* ``grid.energy_fee``        imported kWh x the DSO's energy fee
* ``tax.energy``             imported kWh x the energy tax of the local date
* ``export.spot``            exported kWh x spot (paid to the owner; negative when spot is)
* ``export.supplier_fee``    exported kWh x the supplier's export fee (charged to the owner)
* ``export.grid_benefit``    exported kWh x the DSO's grid benefit (nätnytta, paid to the owner)
* storage refund claim       exported kWh x the energy tax of the local date: the tax the owner may
  claim back for energy fed back after storage; recorded, never credited.

Per period: the lines above summed and rounded once to the öre; ``grid.power_charge`` (the average
of the month's highest hourly net imports on N different local days, x the DSO's SEK per kW and
month); ``tax.vat`` = VAT rate x the sum of the rounded import lines (energy, margin, grid fees,
energy tax), rounded; ``reserve.owner_share`` = the contract's share of the reserve revenue
allocated to the EV, rounded, and ``reserve.aggregator_share`` the rest; ``wear.allowance`` =
exported kWh x the contract's allowance per kWh, rounded. Export compensation, reserve revenue and
the allowance carry no VAT (a private owner is not liable for VAT on them). The micro-production tax
credit is never applied: it covers renewable production only and ends with 2025.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from v2g.settlement.metering import MeterInterval, quality_counts
from v2g.settlement.money import ZERO, SettlementInputError, round_ore
from v2g.settlement.periods import SettlementPeriod, local_date
from v2g.settlement.tariffs import DsoTariff, TariffBook
from v2g.units import floor_hour

_HUNDRED = Decimal(100)
_TEN = Decimal(10)
_EUR_CENT = Decimal("0.01")


def spot_ore_per_kwh(eur_per_mwh: Decimal, sek_per_eur: Decimal) -> Decimal:
    """A day-ahead price in öre/kWh: EUR/MWh taken to the cent (as Nord Pool publishes it), x SEK/EUR,
    / 1000 kWh per MWh x 100 öre per SEK. 61.25 EUR/MWh at 11.47 SEK/EUR is 70.25375 öre/kWh."""
    return eur_per_mwh.quantize(_EUR_CENT, rounding=ROUND_HALF_UP) * sek_per_eur / _TEN


def eur_to_sek(amount_eur: Decimal, sek_per_eur: Decimal) -> Decimal:
    """A market amount in SEK, rounded once to the öre before it is split."""
    return round_ore(amount_eur * sek_per_eur)


class Line(StrEnum):
    """A line of an owner's settlement; each flows from a payer to a payee (see :mod:`v2g.settlement.ledger`)."""

    ENERGY_SPOT = "energy.spot"
    ENERGY_MARGIN = "energy.supplier_margin"
    GRID_ENERGY_FEE = "grid.energy_fee"
    GRID_POWER_CHARGE = "grid.power_charge"
    ENERGY_TAX = "tax.energy"
    VAT = "tax.vat"
    EXPORT_SPOT = "export.spot"
    EXPORT_FEE = "export.supplier_fee"
    EXPORT_GRID_BENEFIT = "export.grid_benefit"
    RESERVE_OWNER = "reserve.owner_share"
    RESERVE_AGGREGATOR = "reserve.aggregator_share"
    WEAR_ALLOWANCE = "wear.allowance"


INTERVAL_LINES = (
    Line.ENERGY_SPOT,
    Line.ENERGY_MARGIN,
    Line.GRID_ENERGY_FEE,
    Line.ENERGY_TAX,
    Line.EXPORT_SPOT,
    Line.EXPORT_FEE,
    Line.EXPORT_GRID_BENEFIT,
)
VAT_BASE_LINES = (Line.ENERGY_SPOT, Line.ENERGY_MARGIN, Line.GRID_ENERGY_FEE, Line.GRID_POWER_CHARGE, Line.ENERGY_TAX)


@dataclass(frozen=True, slots=True)
class ContractTerms:
    """The owner's contract: their share of reserve revenue and the battery-wear allowance."""

    owner_revenue_share: Decimal
    wear_allowance_ore_per_kwh: Decimal
    source: str = "contract"

    def __post_init__(self) -> None:
        if not ZERO <= self.owner_revenue_share <= 1:
            msg = f"contract.owner_revenue_share: {self.owner_revenue_share} must be between 0 and 1"
            raise SettlementInputError(msg)
        if self.wear_allowance_ore_per_kwh < 0:
            msg = "contract.wear_allowance_ore_per_kwh: must be >= 0"
            raise SettlementInputError(msg)

    @classmethod
    def default(cls, tariffs: TariffBook, day: date) -> ContractTerms:
        """The default terms of ``tariffs.yaml`` on ``day``."""
        return cls(
            tariffs.owner_revenue_share.at(day),
            tariffs.wear_allowance_ore_per_kwh.at(day),
            "contract_default (tariffs.yaml)",
        )


@dataclass(frozen=True, slots=True)
class IntervalEconomics:
    """One interval's amounts, unrounded SEK (a statement shows them; the ledger posts period totals)."""

    interval: MeterInterval
    spot_ore_per_kwh: Decimal
    amounts_sek: Mapping[Line, Decimal]
    storage_refund_kwh: Decimal
    storage_refund_sek: Decimal


def interval_economics(
    interval: MeterInterval, spot_ore_per_kwh: Decimal, tariffs: TariffBook, dso: DsoTariff
) -> IntervalEconomics:
    """The amounts of one interval from its energy, the spot price and the rules of its local date."""
    day = local_date(interval.start_at)
    imp, exp = interval.import_kwh, interval.export_kwh
    tax = tariffs.energy_tax_ore_per_kwh.at(day)
    amounts = {
        Line.ENERGY_SPOT: imp * spot_ore_per_kwh / _HUNDRED,
        Line.ENERGY_MARGIN: imp * tariffs.import_margin_ore_per_kwh.at(day) / _HUNDRED,
        Line.GRID_ENERGY_FEE: imp * dso.energy_fee_ore_per_kwh.at(day) / _HUNDRED,
        Line.ENERGY_TAX: imp * tax / _HUNDRED,
        Line.EXPORT_SPOT: exp * spot_ore_per_kwh / _HUNDRED,
        Line.EXPORT_FEE: exp * tariffs.export_fee_ore_per_kwh.at(day) / _HUNDRED,
        Line.EXPORT_GRID_BENEFIT: exp * dso.grid_benefit_ore_per_kwh.at(day) / _HUNDRED,
    }
    refund = tariffs.storage_refund.at(day) == 1
    return IntervalEconomics(
        interval=interval,
        spot_ore_per_kwh=spot_ore_per_kwh,
        amounts_sek=amounts,
        storage_refund_kwh=exp if refund else ZERO,
        storage_refund_sek=exp * tax / _HUNDRED if refund else ZERO,
    )


@dataclass(frozen=True, slots=True)
class PowerCharge:
    """The DSO's power charge: the average of the month's highest hourly net imports on different days."""

    peaks: tuple[tuple[datetime, Decimal], ...]  # (hour start, kWh in the hour = average kW), highest first
    peaks_counted: int
    average_kw: Decimal
    sek_per_kw_month: Decimal
    amount_sek: Decimal  # unrounded


def power_charge(intervals: Iterable[MeterInterval], peaks_counted: int, sek_per_kw_month: Decimal) -> PowerCharge:
    """Hourly net import (import - export over the hour's quarters); each local day's highest hour;
    the ``peaks_counted`` highest days averaged (a day without a positive peak counts as 0)."""
    if peaks_counted < 1:
        msg = "power_charge_peaks: must be >= 1"
        raise SettlementInputError(msg)
    hourly: dict[datetime, Decimal] = defaultdict(lambda: ZERO)
    for iv in intervals:
        hourly[floor_hour(iv.start_at)] += iv.import_kwh - iv.export_kwh
    best_of_day: dict[date, tuple[datetime, Decimal]] = {}
    for hour in sorted(hourly):
        kwh = hourly[hour]
        if kwh <= 0:
            continue
        day = local_date(hour)
        if day not in best_of_day or kwh > best_of_day[day][1]:
            best_of_day[day] = (hour, kwh)
    peaks = sorted(best_of_day.values(), key=lambda p: (-p[1], p[0]))[:peaks_counted]
    average = sum((kwh for _, kwh in peaks), ZERO) / Decimal(peaks_counted)
    return PowerCharge(tuple(peaks), peaks_counted, average, sek_per_kw_month, average * sek_per_kw_month)


@dataclass(frozen=True, slots=True)
class LineAmount:
    """A line of the period: amount in SEK to the öre (what the payer pays the payee), its quantity and basis."""

    line: Line
    amount_sek: Decimal
    quantity: Decimal | None = None
    unit: str = ""
    basis: str = ""


@dataclass(frozen=True, slots=True)
class EvPeriodSettlement:
    """Everything one EV's owner is settled for one period."""

    period: SettlementPeriod
    ev_id: str
    customer_id: str
    dso_key: str
    lines: tuple[LineAmount, ...]
    intervals: tuple[IntervalEconomics, ...]
    power_charge: PowerCharge
    reserve_net_sek: Decimal
    import_kwh: Decimal
    export_kwh: Decimal
    storage_refund_claim_kwh: Decimal
    storage_refund_claim_sek: Decimal
    micro_production_credit_sek: Decimal
    quality: Mapping[str, int] = field(default_factory=dict)

    def amount(self, line: Line) -> Decimal:
        """The line's amount (0 when the line is absent)."""
        return sum((la.amount_sek for la in self.lines if la.line is line), ZERO)

    @property
    def owner_net_sek(self) -> Decimal:
        """What the owner receives, net: positive when the period pays the owner."""
        paid = (Line.EXPORT_SPOT, Line.EXPORT_GRID_BENEFIT, Line.RESERVE_OWNER, Line.WEAR_ALLOWANCE)
        owed = (*VAT_BASE_LINES, Line.VAT, Line.EXPORT_FEE)
        return sum((self.amount(x) for x in paid), ZERO) - sum((self.amount(x) for x in owed), ZERO)


def settle_ev_period(
    *,
    period: SettlementPeriod,
    ev_id: str,
    customer_id: str,
    intervals: Sequence[MeterInterval],
    spot_ore_per_kwh: Mapping[datetime, Decimal],
    tariffs: TariffBook,
    dso_key: str,
    contract: ContractTerms,
    reserve_net_sek: Decimal,
) -> EvPeriodSettlement:
    """Settle one EV for one period from its intervals, the spot prices by interval start, the rules,
    the contract and the reserve revenue allocated to it (net of repayments, öre-exact)."""
    if reserve_net_sek != round_ore(reserve_net_sek):
        msg = f"reserve_net_sek: {reserve_net_sek} is not a whole number of öre"
        raise SettlementInputError(msg)
    first, last = period.first_day, period.last_day
    if tariffs.vat_rate.changes_within(first, last):
        msg = f"vat_rate: changes within {period}; a period must have one VAT rate"
        raise SettlementInputError(msg)
    dso = tariffs.dso(dso_key)
    rows: list[IntervalEconomics] = []
    for iv in intervals:
        if not period.start_at <= iv.start_at < period.end_at:
            msg = f"intervals: {iv.start_at.isoformat()} is outside {period}"
            raise SettlementInputError(msg)
        spot = spot_ore_per_kwh.get(iv.start_at)
        if spot is None:
            msg = f"spot_ore_per_kwh: no price for the interval at {iv.start_at.isoformat()}"
            raise SettlementInputError(msg)
        rows.append(interval_economics(iv, spot, tariffs, dso))
    import_kwh = sum((iv.import_kwh for iv in intervals), ZERO)
    export_kwh = sum((iv.export_kwh for iv in intervals), ZERO)

    def total(line: Line) -> Decimal:
        return round_ore(sum((r.amounts_sek[line] for r in rows), ZERO))

    lines: list[LineAmount] = []
    for line in (Line.ENERGY_SPOT, Line.ENERGY_MARGIN, Line.GRID_ENERGY_FEE, Line.ENERGY_TAX):
        lines.append(LineAmount(line, total(line), import_kwh, "kWh", "imported energy by interval"))
    charge = power_charge(intervals, dso.peaks(first), dso.power_charge_sek_per_kw_month.at(first))
    lines.append(
        LineAmount(
            Line.GRID_POWER_CHARGE,
            round_ore(charge.amount_sek),
            charge.average_kw,
            "kW",
            f"average of the {charge.peaks_counted} highest daily hourly peaks x {charge.sek_per_kw_month} SEK/kW",
        )
    )
    vat_rate = tariffs.vat_rate.at(first)
    vat_base = sum((la.amount_sek for la in lines if la.line in VAT_BASE_LINES), ZERO)
    lines.append(
        LineAmount(Line.VAT, round_ore(vat_base * vat_rate), vat_base, "SEK", f"{vat_rate} x the import lines")
    )
    for line in (Line.EXPORT_SPOT, Line.EXPORT_FEE, Line.EXPORT_GRID_BENEFIT):
        lines.append(LineAmount(line, total(line), export_kwh, "kWh", "exported energy by interval"))
    owner_share = round_ore(reserve_net_sek * contract.owner_revenue_share)
    lines.append(
        LineAmount(
            Line.RESERVE_OWNER,
            owner_share,
            reserve_net_sek,
            "SEK",
            f"{contract.owner_revenue_share} of the reserve revenue allocated ({contract.source})",
        )
    )
    lines.append(LineAmount(Line.RESERVE_AGGREGATOR, reserve_net_sek - owner_share, reserve_net_sek, "SEK", "the rest"))
    lines.append(
        LineAmount(
            Line.WEAR_ALLOWANCE,
            round_ore(export_kwh * contract.wear_allowance_ore_per_kwh / _HUNDRED),
            export_kwh,
            "kWh",
            f"{contract.wear_allowance_ore_per_kwh} öre per kWh discharged ({contract.source})",
        )
    )
    return EvPeriodSettlement(
        period=period,
        ev_id=ev_id,
        customer_id=customer_id,
        dso_key=dso_key,
        lines=tuple(lines),
        intervals=tuple(rows),
        power_charge=charge,
        reserve_net_sek=reserve_net_sek,
        import_kwh=import_kwh,
        export_kwh=export_kwh,
        storage_refund_claim_kwh=sum((r.storage_refund_kwh for r in rows), ZERO),
        storage_refund_claim_sek=round_ore(sum((r.storage_refund_sek for r in rows), ZERO)),
        micro_production_credit_sek=ZERO,
        quality=quality_counts(intervals),
    )
