"""The owner's monthly statement: every line explained in Swedish and English, a chart of the month,
the comparison with uncontrolled charging, and the ledger lines behind it; rendered as one HTML page.

The amounts are those the settlement run stored (the statement summary) and posted (the ledger);
nothing is priced twice except the comparison. **Uncontrolled charging** is what the same car
would have cost charged the usual way: every plug-in charges, at once and at the EV's full power,
the net energy it took during that plug-in (imported minus exported), and never discharges;
energy metered outside any recorded plug-in stays where it was. That profile is priced with the
same rules, month and tariffs (spot, supplier margin, grid fees with the power charge, energy tax,
VAT); no reserve revenue and no wear allowance.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

import jinja2

from v2g.settlement.economics import ContractTerms, EvPeriodSettlement, Line, settle_ev_period
from v2g.settlement.metering import FillRule, MeterInterval, PluggedPeriod, Quality
from v2g.settlement.money import KWH_QUANTUM, ZERO, round_ore
from v2g.settlement.periods import SettlementPeriod, local_date
from v2g.settlement.tariffs import TariffBook
from v2g.units import HOUR, QUARTER, STOCKHOLM, ensure_utc, floor_quarter

OWNER_PAYS = (
    Line.ENERGY_SPOT,
    Line.ENERGY_MARGIN,
    Line.GRID_ENERGY_FEE,
    Line.GRID_POWER_CHARGE,
    Line.ENERGY_TAX,
    Line.VAT,
    Line.EXPORT_FEE,
)
OWNER_GETS = (Line.EXPORT_SPOT, Line.EXPORT_GRID_BENEFIT, Line.RESERVE_OWNER, Line.WEAR_ALLOWANCE)
STATEMENT_ORDER = (
    Line.ENERGY_SPOT,
    Line.ENERGY_MARGIN,
    Line.ENERGY_TAX,
    Line.GRID_ENERGY_FEE,
    Line.GRID_POWER_CHARGE,
    Line.VAT,
    Line.EXPORT_SPOT,
    Line.EXPORT_FEE,
    Line.EXPORT_GRID_BENEFIT,
    Line.RESERVE_OWNER,
    Line.WEAR_ALLOWANCE,
)


# ---------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True)
class ReserveHourShare:
    """One EV's part of one verified market hour: capacity-hours held and its money."""

    hour_start_at: datetime
    group_id: str
    product: str
    held_kwh: Decimal
    capacity_sek: Decimal
    activation_sek: Decimal
    repayment_sek: Decimal


@dataclass(frozen=True, slots=True)
class OwnerLedgerLine:
    """One posting on the owner's account (a settlement, a correction, a payout or an invoice)."""

    key: str
    kind: str
    period: str
    settles: str
    line: str
    subject: str
    amount_sek: Decimal  # debit > 0: the owner owes more; credit < 0: the owner is owed more


@dataclass(frozen=True, slots=True)
class EvStatementData:
    """What one EV's part of a statement is made of."""

    summary: Mapping[str, Any]  # the settlement run's stored statement summary
    intervals: Sequence[MeterInterval]
    spot_ore_per_kwh: Mapping[datetime, Decimal]
    reserve: Sequence[ReserveHourShare] = ()
    plugged: Sequence[PluggedPeriod] = ()
    max_charge_kw: Decimal = Decimal(11)
    label: str = ""


# ---------------------------------------------------------------------------------------------- the comparison
def uncontrolled_intervals(
    intervals: Sequence[MeterInterval], plugged: Sequence[PluggedPeriod], max_charge_kw: Decimal
) -> list[MeterInterval]:
    """The same month charged uncontrolled (see the module docstring): per plug-in, its net energy at
    full power from the moment it started; nothing exported."""
    if max_charge_kw <= 0:
        msg = f"max_charge_kw: {max_charge_kw} must be > 0"
        raise ValueError(msg)
    if not intervals:
        return []
    start, end = intervals[0].start_at, intervals[-1].start_at + QUARTER
    imp: dict[datetime, Decimal] = {iv.start_at: iv.import_kwh for iv in intervals}
    net_left: dict[datetime, Decimal] = {iv.start_at: iv.import_kwh - iv.export_kwh for iv in intervals}
    out: dict[datetime, Decimal] = dict.fromkeys(imp, ZERO)
    covered: set[datetime] = set()
    spans = sorted(
        (max(ensure_utc(p.start_at), start), min(ensure_utc(p.end_at) if p.end_at else end, end)) for p in plugged
    )
    for s, e in spans:
        if e <= s:
            continue
        quarters = []
        q = floor_quarter(s)
        while q < e:
            if q in net_left and q not in covered:
                quarters.append(q)
            q += QUARTER
        net = sum((net_left[q] for q in quarters), ZERO)
        covered.update(quarters)
        remaining = max(net, ZERO)
        q = floor_quarter(s)
        while remaining > 0 and q < e:
            lo, hi = max(q, s), min(q + QUARTER, e)
            room = (max_charge_kw * Decimal((hi - lo) // timedelta(seconds=1)) / Decimal(3600)).quantize(KWH_QUANTUM)
            take = min(room, remaining)
            if q in out:
                out[q] += take
                remaining -= take
            q += QUARTER
    for at in imp:
        if at not in covered:
            out[at] += imp[at]  # energy outside any recorded plug-in stays where it was
    return [
        MeterInterval(at, out[at], ZERO, Quality.ESTIMATED, Quality.ESTIMATED, (FillRule.REGISTER,), ())
        for at in sorted(out)
    ]


@dataclass(frozen=True, slots=True)
class Comparison:
    """The month as it was against the same car charged uncontrolled."""

    uncontrolled_cost_sek: Decimal  # what the owner would have paid
    actual_energy_cost_sek: Decimal  # what the owner paid for energy and grid, less export compensation
    v2g_income_sek: Decimal  # reserve share and wear allowance
    uncontrolled: EvPeriodSettlement

    @property
    def actual_net_sek(self) -> Decimal:
        """The owner's net outlay with the service (negative: the month paid the owner)."""
        return self.actual_energy_cost_sek - self.v2g_income_sek

    @property
    def saving_sek(self) -> Decimal:
        return self.uncontrolled_cost_sek - self.actual_net_sek


def compare_uncontrolled(
    data: EvStatementData, period: SettlementPeriod, tariffs: TariffBook, amounts: Mapping[Line, Decimal]
) -> Comparison:
    """Price the uncontrolled profile with the same rules and compare it with the amounts settled."""
    profile = uncontrolled_intervals(data.intervals, data.plugged, data.max_charge_kw)
    settled = settle_ev_period(
        period=period,
        ev_id=str(data.summary["ev_id"]),
        customer_id=str(data.summary["customer_id"]),
        intervals=profile,
        spot_ore_per_kwh=data.spot_ore_per_kwh,
        tariffs=tariffs,
        dso_key=str(data.summary["dso_tariff"]),
        contract=ContractTerms(ZERO, ZERO, "uncontrolled charging"),
        reserve_net_sek=ZERO,
    )
    uncontrolled = sum((settled.amount(x) for x in OWNER_PAYS), ZERO)
    paid = sum((amounts.get(x, ZERO) for x in OWNER_PAYS), ZERO)
    export = amounts.get(Line.EXPORT_SPOT, ZERO) + amounts.get(Line.EXPORT_GRID_BENEFIT, ZERO)
    income = amounts.get(Line.RESERVE_OWNER, ZERO) + amounts.get(Line.WEAR_ALLOWANCE, ZERO)
    return Comparison(uncontrolled, paid - export, income, settled)


# ---------------------------------------------------------------------------------------------- the chart
@dataclass(frozen=True, slots=True)
class Chart:
    """An inline SVG of the month, hour by hour."""

    width: int
    height: int
    plot: tuple[int, int, int, int]  # left, top, right, bottom
    import_path: str
    export_path: str
    price_path: str
    reserve_rects: tuple[tuple[float, float], ...]  # x, width
    zero_y: float
    day_ticks: tuple[tuple[float, str], ...]
    energy_ticks: tuple[tuple[float, str], ...]
    price_ticks: tuple[tuple[float, str], ...]
    max_kwh: Decimal
    reserve_hours: int


def _nice(value: float) -> float:
    for step in (0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if value <= step:
            return float(step)
    return float(int(value) + 1)


def month_chart(
    period: SettlementPeriod,
    intervals: Sequence[MeterInterval],
    spot_ore_per_kwh: Mapping[datetime, Decimal],
    reserve: Sequence[ReserveHourShare],
) -> Chart:
    """Charging (up) and discharging (down) kWh per hour, the hours with reserve held shaded, and the
    hourly spot price as a line on its own scale."""
    width, height = 960, 300
    left, top, right, bottom = 56, 16, width - 56, height - 34
    n = int((period.end_at - period.start_at) / HOUR)
    imp, exp = [0.0] * n, [0.0] * n
    for iv in intervals:
        h = int((iv.start_at - period.start_at) / HOUR)
        if 0 <= h < n:
            imp[h] += float(iv.import_kwh)
            exp[h] += float(iv.export_kwh)
    price_sum: dict[int, float] = defaultdict(float)
    price_n: dict[int, int] = defaultdict(int)
    for at, ore in spot_ore_per_kwh.items():
        h = int((at - period.start_at) / HOUR)
        if 0 <= h < n:
            price_sum[h] += float(ore)
            price_n[h] += 1
    prices = [price_sum[h] / price_n[h] if price_n[h] else None for h in range(n)]
    peak = _nice(max([*imp, *exp, 0.5]))
    mid = top + (bottom - top) * 0.6  # charging gets 60 % of the height, discharging the rest
    up_scale, down_scale = (mid - top) / peak, (bottom - mid) / peak
    step = (right - left) / n

    def bars(values: list[float], sign: int, scale: float) -> str:
        parts = []
        for h, v in enumerate(values):
            if v > 0:
                x = left + h * step
                y = mid - v * scale if sign > 0 else mid
                parts.append(
                    f"M{x:.2f} {y:.2f}h{max(step - 0.2, 0.6):.2f}v{v * scale:.2f}h-{max(step - 0.2, 0.6):.2f}z"
                )
        return "".join(parts)

    known = [p for p in prices if p is not None]
    lo = min(known, default=0.0)
    hi = max(known, default=1.0)
    lo, hi = (min(lo, 0.0), _nice(hi if hi > 0 else 1.0))
    points: list[str] = []
    for h, p in enumerate(prices):
        if p is not None:
            y = bottom - (p - lo) / (hi - lo) * (bottom - top)
            points.append(f"{'M' if not points else 'L'}{left + (h + 0.5) * step:.2f} {y:.2f}")
    held_hours = sorted({int((r.hour_start_at - period.start_at) / HOUR) for r in reserve if r.held_kwh > 0})
    rects = tuple((left + h * step, max(step, 3.0)) for h in held_hours if 0 <= h < n)  # visible when alone
    ticks = []
    for day in period.days():
        h = int((datetime(day.year, day.month, day.day, tzinfo=STOCKHOLM) - period.start_at) / HOUR)
        if day.day == 1 or day.day % 5 == 0:
            ticks.append((left + h * step, str(day.day)))
    energy_ticks = (
        (mid - peak * up_scale, f"{peak:g}"),
        (mid, "0"),
        (mid + peak * down_scale, f"{peak:g}"),
    )
    price_ticks = tuple((bottom - (v - lo) / (hi - lo) * (bottom - top), f"{v:g}") for v in (lo, (lo + hi) / 2, hi))
    return Chart(
        width=width,
        height=height,
        plot=(left, top, right, bottom),
        import_path=bars(imp, 1, up_scale),
        export_path=bars(exp, -1, down_scale),
        price_path="".join(points),
        reserve_rects=rects,
        zero_y=mid,
        day_ticks=tuple(ticks),
        energy_ticks=energy_ticks,
        price_ticks=price_ticks,
        max_kwh=Decimal(str(peak)),
        reserve_hours=len(rects),
    )


# ---------------------------------------------------------------------------------------------- the lines
def sek_sv(amount: Decimal) -> str:
    """``1 234,56 kr`` (Swedish: space for thousands, decimal comma)."""
    text = f"{abs(amount):,.2f}".replace(",", " ").replace(".", ",")
    return ("−" if amount < 0 else "") + text + " kr"


def sek_en(amount: Decimal) -> str:
    return ("−" if amount < 0 else "") + f"SEK {abs(amount):,.2f}"


def num_sv(value: Decimal, places: int = 2) -> str:
    return f"{value:,.{places}f}".replace(",", " ").replace(".", ",")


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One line as the owner reads it: + paid to the owner, − charged."""

    line: str
    title_sv: str
    title_en: str
    text_sv: str
    text_en: str
    owner_sek: Decimal


def _texts(line: Line, la: Mapping[str, Any], summary: Mapping[str, Any], tariffs: TariffBook) -> tuple[str, ...]:
    """Title and explanation, Swedish and English, of one line with its numbers."""
    period = SettlementPeriod.parse(str(summary["period"]))
    day = period.first_day
    dso = tariffs.dso(str(summary["dso_tariff"]))
    kwh_in, kwh_out = Decimal(str(summary["import_kwh"])), Decimal(str(summary["export_kwh"]))
    qty = Decimal(str(la["quantity"])) if la.get("quantity") is not None else ZERO
    contract = summary.get("contract", {})
    share = Decimal(str(contract.get("owner_revenue_share", "0")))
    wear = Decimal(str(contract.get("wear_allowance_ore_per_kwh", "0")))
    n_peaks = dso.peaks(day)
    peaks = [Decimal(p[1]) for p in summary.get("power_charge", {}).get("peaks", [])]
    peaks += [ZERO] * (n_peaks - len(peaks))  # a day without a peak counts as 0
    peak_kw = "; ".join(num_sv(p, 2) for p in peaks)
    peak_kw_en = ", ".join(f"{p:.2f}" for p in peaks)
    vat = format((tariffs.vat_rate.at(day) * 100).normalize(), "f")
    t = {
        Line.ENERGY_SPOT: (
            "Energi till spotpris",
            "Energy at spot price",
            f"{num_sv(kwh_in, 3)} kWh laddat, varje kvart till sitt spotpris (Nord Pool) i kronor.",
            f"{kwh_in:.3f} kWh charged, each quarter-hour at its day-ahead spot price (Nord Pool), in SEK.",
        ),
        Line.ENERGY_MARGIN: (
            "Elhandlarens påslag",
            "Supplier margin",
            f"{num_sv(kwh_in, 3)} kWh × {num_sv(tariffs.import_margin_ore_per_kwh.at(day), 1)} öre/kWh.",
            f"{kwh_in:.3f} kWh × {tariffs.import_margin_ore_per_kwh.at(day):.1f} öre/kWh.",
        ),
        Line.ENERGY_TAX: (
            "Energiskatt",
            "Energy tax",
            f"{num_sv(kwh_in, 3)} kWh × {num_sv(tariffs.energy_tax_ore_per_kwh.at(day), 1)} öre/kWh (lagstadgad).",
            f"{kwh_in:.3f} kWh × {tariffs.energy_tax_ore_per_kwh.at(day):.1f} öre/kWh (statutory).",
        ),
        Line.GRID_ENERGY_FEE: (
            "Elnät: överföringsavgift",
            "Grid: energy fee",
            f"{num_sv(kwh_in, 3)} kWh × {num_sv(dso.energy_fee_ore_per_kwh.at(day), 1)} öre/kWh ({dso.name}).",
            f"{kwh_in:.3f} kWh × {dso.energy_fee_ore_per_kwh.at(day):.1f} öre/kWh ({dso.name}).",
        ),
        Line.GRID_POWER_CHARGE: (
            "Elnät: effektavgift",
            "Grid: power charge",
            f"Medel av månadens {n_peaks} högsta timeffekter på olika dagar ({peak_kw} kW; en dag utan "
            f"laddning räknas som 0) = {num_sv(qty, 3)} kW × "
            f"{num_sv(dso.power_charge_sek_per_kw_month.at(day), 2)} kr/kW. Mätt på laddaren, inte hela huset.",
            f"Average of the month's {n_peaks} highest hourly loads on different days ({peak_kw_en} kW; a day "
            f"without charging counts as 0) = {qty:.3f} kW "
            f"× SEK {dso.power_charge_sek_per_kw_month.at(day):.2f}/kW. Measured at the charger, not the whole house.",
        ),
        Line.VAT: (
            f"Moms {vat} %",
            f"VAT {vat} %",
            f"{vat} % på energi, påslag, energiskatt och nätavgifter ({sek_sv(qty)}).",
            f"{vat} % of energy, margin, energy tax and grid fees ({sek_en(qty)}).",
        ),
        Line.EXPORT_SPOT: (
            "Ersättning för levererad el",
            "Export compensation",
            f"{num_sv(kwh_out, 3)} kWh urladdat till nätet, varje kvart till sitt spotpris. Ingen moms.",
            f"{kwh_out:.3f} kWh discharged to the grid, each quarter-hour at its spot price. No VAT.",
        ),
        Line.EXPORT_FEE: (
            "Elhandlarens avgift för såld el",
            "Supplier's export fee",
            f"{num_sv(kwh_out, 3)} kWh × {num_sv(tariffs.export_fee_ore_per_kwh.at(day), 1)} öre/kWh.",
            f"{kwh_out:.3f} kWh × {tariffs.export_fee_ore_per_kwh.at(day):.1f} öre/kWh.",
        ),
        Line.EXPORT_GRID_BENEFIT: (
            "Nätnytta",
            "Grid benefit",
            f"{num_sv(kwh_out, 3)} kWh × {num_sv(dso.grid_benefit_ore_per_kwh.at(day), 1)} öre/kWh från nätägaren.",
            f"{kwh_out:.3f} kWh × {dso.grid_benefit_ore_per_kwh.at(day):.1f} öre/kWh from the grid operator.",
        ),
        Line.RESERVE_OWNER: (
            "Din andel av reservintäkterna",
            "Your share of reserve revenue",
            f"{num_sv(share * 100, 0)} % av {sek_sv(qty)} som stödtjänstmarknaden (FCR) betalade för din bils bidrag: "
            "fördelat efter kapacitetstimmar som bilen höll, efter återbetalningar.",
            f"{share * 100:.0f} % of {sek_en(qty)} the reserve market (FCR) paid for your car's part: allocated by the "
            "capacity-hours the car held, after repayments.",
        ),
        Line.WEAR_ALLOWANCE: (
            "Ersättning för batterislitage",
            "Battery-wear allowance",
            f"{num_sv(kwh_out, 3)} kWh urladdat × {num_sv(wear, 1)} öre/kWh enligt ditt avtal.",
            f"{kwh_out:.3f} kWh discharged × {wear:.1f} öre/kWh under your contract.",
        ),
    }
    return t[line]


def statement_lines(summary: Mapping[str, Any], tariffs: TariffBook) -> list[StatementLine]:
    """The owner's lines in reading order, with the sign the owner sees (+ paid to the owner)."""
    by_line = {str(x["line"]): x for x in summary["lines"]}
    out = []
    for line in STATEMENT_ORDER:
        la = by_line.get(line.value)
        if la is None:
            continue
        amount = Decimal(str(la["amount_sek"]))
        owner = amount if line in OWNER_GETS else -amount
        title_sv, title_en, text_sv, text_en = _texts(line, la, summary, tariffs)
        out.append(StatementLine(line.value, title_sv, title_en, text_sv, text_en, owner))
    return out


# ---------------------------------------------------------------------------------------------- the statement
@dataclass(frozen=True, slots=True)
class EvStatement:
    """One EV's part of the statement."""

    ev_id: str
    label: str
    lines: tuple[StatementLine, ...]
    owner_net_sek: Decimal
    import_kwh: Decimal
    export_kwh: Decimal
    aggregator_share_sek: Decimal
    reserve_net_sek: Decimal
    reserve_capacity_sek: Decimal
    reserve_repayment_sek: Decimal
    reserve_hours: int
    refund_claim_kwh: Decimal
    refund_claim_sek: Decimal
    comparison: Comparison
    chart: Chart
    quality: Mapping[str, int]
    rules: tuple[Mapping[str, str], ...]
    contract_source: str


@dataclass(frozen=True, slots=True)
class OwnerStatement:
    """A customer's statement for one month."""

    period: SettlementPeriod
    customer_id: str
    customer_name: str
    evs: tuple[EvStatement, ...]
    ledger: tuple[OwnerLedgerLine, ...] = ()
    created_at: datetime | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def owner_net_sek(self) -> Decimal:
        return sum((ev.owner_net_sek for ev in self.evs), ZERO)

    @property
    def saving_sek(self) -> Decimal:
        return sum((ev.comparison.saving_sek for ev in self.evs), ZERO)

    @property
    def earnings_sek(self) -> Decimal:
        """What the owner is paid: the statement lines in the owner's favour."""
        return sum((x.owner_sek for ev in self.evs for x in ev.lines if x.owner_sek > 0), ZERO)

    @property
    def costs_sek(self) -> Decimal:
        """What the owner pays: the statement lines against the owner, as a positive amount."""
        return -sum((x.owner_sek for ev in self.evs for x in ev.lines if x.owner_sek < 0), ZERO)

    @property
    def uncontrolled_cost_sek(self) -> Decimal:
        return sum((ev.comparison.uncontrolled_cost_sek for ev in self.evs), ZERO)

    @property
    def ledger_net_sek(self) -> Decimal:
        """The settlement and corrections of this month on the owner's account (what the owner owes, +;
        is owed, −), not its payout or invoice."""
        settled = ("settlement", "correction")
        return sum((x.amount_sek for x in self.ledger if x.settles == self.period.code and x.kind in settled), ZERO)

    def to_json(self) -> dict[str, Any]:
        """The statement as JSON-ready data (amounts as strings, exact)."""
        return {
            "period": self.period.code,
            "customer_id": self.customer_id,
            "owner_net_sek": str(self.owner_net_sek),
            "uncontrolled_cost_sek": str(self.uncontrolled_cost_sek),
            "saving_sek": str(self.saving_sek),
            "evs": [
                {
                    "ev_id": ev.ev_id,
                    "import_kwh": str(ev.import_kwh),
                    "export_kwh": str(ev.export_kwh),
                    "owner_net_sek": str(ev.owner_net_sek),
                    "lines": [
                        {"line": x.line, "owner_sek": str(x.owner_sek), "sv": x.text_sv, "en": x.text_en}
                        for x in ev.lines
                    ],
                    "reserve": {
                        "hours": ev.reserve_hours,
                        "capacity_sek": str(ev.reserve_capacity_sek),
                        "repayment_sek": str(ev.reserve_repayment_sek),
                        "net_sek": str(ev.reserve_net_sek),
                        "aggregator_share_sek": str(ev.aggregator_share_sek),
                    },
                    "energy_tax_refund_claim": {
                        "kwh": str(ev.refund_claim_kwh),
                        "sek": str(ev.refund_claim_sek),
                        "credited": False,
                    },
                    "comparison": {
                        "uncontrolled_cost_sek": str(ev.comparison.uncontrolled_cost_sek),
                        "actual_net_sek": str(ev.comparison.actual_net_sek),
                        "saving_sek": str(ev.comparison.saving_sek),
                    },
                    "quality": dict(ev.quality),
                }
                for ev in self.evs
            ],
            "ledger": [
                {
                    "key": x.key,
                    "kind": x.kind,
                    "period": x.period,
                    "settles": x.settles,
                    "line": x.line,
                    "subject": x.subject,
                    "amount_sek": str(x.amount_sek),
                }
                for x in self.ledger
            ],
        }


def build_ev_statement(data: EvStatementData, tariffs: TariffBook) -> EvStatement:
    """One EV's part: its lines explained, the chart, the comparison with uncontrolled charging."""
    summary = data.summary
    period = SettlementPeriod.parse(str(summary["period"]))
    amounts = {Line(str(x["line"])): Decimal(str(x["amount_sek"])) for x in summary["lines"]}
    lines = statement_lines(summary, tariffs)
    refund = summary.get("storage_refund_claim", {})
    return EvStatement(
        ev_id=str(summary["ev_id"]),
        label=data.label or str(summary["ev_id"]),
        lines=tuple(lines),
        owner_net_sek=sum((x.owner_sek for x in lines), ZERO),
        import_kwh=Decimal(str(summary["import_kwh"])),
        export_kwh=Decimal(str(summary["export_kwh"])),
        aggregator_share_sek=amounts.get(Line.RESERVE_AGGREGATOR, ZERO),
        reserve_net_sek=Decimal(str(summary.get("reserve_net_sek", "0"))),
        reserve_capacity_sek=sum((r.capacity_sek + r.activation_sek for r in data.reserve), ZERO),
        reserve_repayment_sek=sum((r.repayment_sek for r in data.reserve), ZERO),
        reserve_hours=sum(1 for r in data.reserve if r.held_kwh > 0),
        refund_claim_kwh=Decimal(str(refund.get("kwh", "0"))),
        refund_claim_sek=round_ore(Decimal(str(refund.get("energy_tax_sek", "0")))),
        comparison=compare_uncontrolled(data, period, tariffs, amounts),
        chart=month_chart(period, data.intervals, data.spot_ore_per_kwh, data.reserve),
        quality=dict(summary.get("quality", {})),
        rules=tuple(summary.get("rules", [])),
        contract_source=str(summary.get("contract", {}).get("source", "")),
    )


@functools.cache
def _template() -> jinja2.Template:
    text = resources.files("v2g.settlement").joinpath("templates/statement.html.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["sek_sv"] = sek_sv
    env.filters["sek_en"] = sek_en
    env.filters["num_sv"] = num_sv
    return env.from_string(text)


def render_statement_html(statement: OwnerStatement) -> str:
    """The statement as one standalone HTML page (inline CSS and SVG, printable on A4)."""
    local_created = statement.created_at.astimezone(STOCKHOLM) if statement.created_at else None
    return _template().render(
        s=statement,
        created=local_created.strftime("%Y-%m-%d %H:%M") if local_created else "",
        month_sv=_MONTHS_SV[statement.period.month - 1],
        month_en=statement.period.first_day.strftime("%B"),
        first=local_date(statement.period.start_at),
        last=statement.period.last_day,
    )


_MONTHS_SV = (
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
)
