"""Owner economics for many EVs at once, exactly: the lines of :func:`~v2g.settlement.economics.settle_ev_period`
computed with numpy in integers, rounded once per line to the öre, as Decimal.

Energy is held as whole units of 0.1 Wh (int64, ``[EV, quarter]``), each price vector as whole units
of its own smallest decimal place (``10^-s`` öre/kWh, int64, ``[quarter]``). A line's total is then
an exact integer ``sum(energy x price)`` in units of ``10^-(4+s)`` öre, computed as one matrix-vector
product per line, and rounded once, half away from zero, to whole öre. So every amount equals the
Decimal path's to the öre (tested against it); only the per-EV steps that work on rounded lines
(the power charge's average, VAT, the revenue share, the wear allowance) stay in Decimal, once per
EV. A product that could overflow int64 is summed in Python integers instead (slow, still exact).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from v2g.settlement.economics import (
    ContractTerms,
    EvPeriodSettlement,
    Line,
    LineAmount,
    PowerCharge,
    spot_ore_per_kwh,
)
from v2g.settlement.money import KWH_QUANTUM, ORE, ZERO, SettlementInputError, round_ore
from v2g.settlement.periods import SettlementPeriod, local_date
from v2g.settlement.tariffs import Schedule, TariffBook
from v2g.units import HOUR, QUARTER

_HUNDRED = Decimal(100)
_INT64_MAX = 2**63 - 1
_MAX_PLACES = 12

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class MeteredMonth:
    """A period's metered quarters of many EVs (0.1 Wh units), with whose they are and their DSO tariff."""

    period: SettlementPeriod
    ev_ids: Sequence[str]
    customer_ids: Sequence[str]
    dso_keys: Sequence[str]
    import_e4: IntArray  # [EV, quarter], kWh x 10^4
    export_e4: IntArray

    def __post_init__(self) -> None:
        n, q = len(self.ev_ids), quarters_of(self.period)
        for name in ("import_e4", "export_e4"):
            a = getattr(self, name)
            if a.shape != (n, q):
                msg = f"metered.{name}: shape {a.shape}, expected ({n}, {q}) for {n} EVs and {self.period}"
                raise SettlementInputError(msg)
            if a.dtype != np.int64:
                msg = f"metered.{name}: dtype {a.dtype}, expected int64 (0.1 Wh units)"
                raise SettlementInputError(msg)
            if (a < 0).any():
                msg = f"metered.{name}: energy must be >= 0 in each direction"
                raise SettlementInputError(msg)
        if not len(self.customer_ids) == len(self.dso_keys) == n:
            msg = "metered: ev_ids, customer_ids and dso_keys differ in length"
            raise SettlementInputError(msg)


def quarters_of(period: SettlementPeriod) -> int:
    return int((period.end_at - period.start_at) / QUARTER)


def scaled(values: Sequence[Decimal], *, field: str) -> tuple[IntArray, int]:
    """Decimals as int64 units of ``10^-places`` with the fewest places that make them all whole."""
    places = 0
    for v in values:
        exponent = v.normalize().as_tuple().exponent
        if not isinstance(exponent, int):
            msg = f"{field}: {v} is not a finite number"
            raise SettlementInputError(msg)
        places = max(places, -exponent)
    if places > _MAX_PLACES:
        msg = f"{field}: more than {_MAX_PLACES} decimal places"
        raise SettlementInputError(msg)
    ints = [int(v.scaleb(places)) for v in values]
    if max((abs(i) for i in ints), default=0) > _INT64_MAX:
        msg = f"{field}: a value does not fit 64 bits at {places} decimal places"
        raise SettlementInputError(msg)
    return np.asarray(ints, dtype=np.int64), places


def _totals(energy: IntArray, price: IntArray) -> list[int]:
    """Exact ``sum(energy x price)`` per EV as Python ints (int64 when it cannot overflow)."""
    bound = int(energy.max(initial=0)) * int(np.abs(price).max(initial=0)) * energy.shape[1]
    if bound <= _INT64_MAX:
        return [int(x) for x in (energy @ price).tolist()]
    return [int(x) for x in (energy.astype(object) @ price.astype(object)).tolist()]


def _round_ore(total: int, places: int) -> Decimal:
    """``total`` units of ``10^-places`` öre to SEK, rounded half away from zero to the öre (two places)."""
    unit = 10**places
    q, r = divmod(abs(total), unit)
    if 2 * r >= unit:
        q += 1
    # the sign stays on a total that rounds to zero ("-0.00"), as Decimal's quantize keeps it
    return Decimal((1 if total < 0 else 0, tuple(int(c) for c in str(q)), -2))


def _per_quarter(schedule: Schedule, days: Sequence[date]) -> list[Decimal]:
    by_day = {d: schedule.at(d) for d in set(days)}
    return [by_day[d] for d in days]


def settle_month_vectorised(
    month: MeteredMonth,
    spot_eur_per_mwh: Sequence[Decimal],
    tariffs: TariffBook,
    contracts: Sequence[ContractTerms],
    reserve_net_sek: Sequence[Decimal],
) -> list[tuple[LineAmount, ...]]:
    """Each EV's lines, as :func:`~v2g.settlement.economics.settle_ev_period` gives them (same order,
    amounts, quantities and bases), from the spot price of every quarter in EUR/MWh."""
    return [s.lines for s in settle_month_details(month, spot_eur_per_mwh, tariffs, contracts, reserve_net_sek)]


def settle_month_details(
    month: MeteredMonth,
    spot_eur_per_mwh: Sequence[Decimal],
    tariffs: TariffBook,
    contracts: Sequence[ContractTerms],
    reserve_net_sek: Sequence[Decimal],
    quality: Sequence[Mapping[str, int]] | None = None,
) -> list[EvPeriodSettlement]:
    """Each EV's :class:`~v2g.settlement.economics.EvPeriodSettlement` as ``settle_ev_period`` gives it
    for the same quarters (lines, the power charge's peaks, the storage refund claim, the totals),
    without the per-interval rows (``intervals`` is empty); ``quality`` is each EV's quality count."""
    period = month.period
    first = period.first_day
    n_q = quarters_of(period)
    if len(spot_eur_per_mwh) != n_q:
        msg = f"spot_eur_per_mwh: {len(spot_eur_per_mwh)} prices for the {n_q} quarters of {period}"
        raise SettlementInputError(msg)
    if len(contracts) != len(month.ev_ids) or len(reserve_net_sek) != len(month.ev_ids):
        msg = "contracts and reserve_net_sek: one per EV"
        raise SettlementInputError(msg)
    if tariffs.vat_rate.changes_within(first, period.last_day):
        msg = f"vat_rate: changes within {period}; a period must have one VAT rate"
        raise SettlementInputError(msg)
    starts = [period.start_at + k * QUARTER for k in range(n_q)]
    days = [local_date(at) for at in starts]
    spot = [spot_ore_per_kwh(eur, tariffs.sek_per_eur.at(d)) for eur, d in zip(spot_eur_per_mwh, days, strict=True)]
    imp, exp = month.import_e4, month.export_e4
    sums: dict[tuple[str, str], list[Decimal]] = {}

    def line(key: tuple[str, str], energy: IntArray, prices: Sequence[Decimal]) -> list[Decimal]:
        if key not in sums:
            vector, places = scaled(prices, field=f"price[{key[1]}]")
            sums[key] = [_round_ore(t, 4 + places) for t in _totals(energy, vector)]
        return sums[key]

    spot_imp = line(("", "spot_imp"), imp, spot)
    spot_exp = line(("", "spot_exp"), exp, spot)
    margin = line(("", "margin"), imp, _per_quarter(tariffs.import_margin_ore_per_kwh, days))
    tax = line(("", "tax"), imp, _per_quarter(tariffs.energy_tax_ore_per_kwh, days))
    export_fee = line(("", "export_fee"), exp, _per_quarter(tariffs.export_fee_ore_per_kwh, days))
    refund_on = [tariffs.storage_refund.at(d) == 1 for d in days]
    tax_by_quarter = _per_quarter(tariffs.energy_tax_ore_per_kwh, days)
    refund_tax = [t if on else ZERO for t, on in zip(tax_by_quarter, refund_on, strict=True)]
    refund_sek = line(("", "refund"), exp, refund_tax)
    refund_mask = np.asarray(refund_on, dtype=np.bool_)
    refund_kwh = [Decimal(int(x)).scaleb(-4) for x in exp[:, refund_mask].sum(axis=1).tolist()]
    by_dso: dict[str, list[int]] = {}
    for i, key in enumerate(month.dso_keys):
        by_dso.setdefault(key, []).append(i)
    fee: list[Decimal] = [ZERO] * len(month.ev_ids)
    benefit: list[Decimal] = [ZERO] * len(month.ev_ids)
    for key, rows in by_dso.items():
        dso = tariffs.dso(key)
        idx = np.asarray(rows)
        f = line((key, "fee"), imp[idx], _per_quarter(dso.energy_fee_ore_per_kwh, days))
        b = line((key, "benefit"), exp[idx], _per_quarter(dso.grid_benefit_ore_per_kwh, days))
        for j, i in enumerate(rows):
            fee[i], benefit[i] = f[j], b[j]
    top = _peaks(month, days)
    import_kwh = [Decimal(int(x)).scaleb(-4) for x in imp.sum(axis=1).tolist()]
    export_kwh = [Decimal(int(x)).scaleb(-4) for x in exp.sum(axis=1).tolist()]
    vat_rate = tariffs.vat_rate.at(first)
    out = []
    for i in range(len(month.ev_ids)):
        dso = tariffs.dso(month.dso_keys[i])
        n_peaks = dso.peaks(first)
        price_kw = dso.power_charge_sek_per_kw_month.at(first)
        chosen = top[i][:n_peaks]
        average = sum((Decimal(kwh).scaleb(-4) for _, kwh in chosen), ZERO) / Decimal(n_peaks)
        charge = PowerCharge(
            tuple((period.start_at + h * HOUR, Decimal(kwh).scaleb(-4)) for h, kwh in chosen),
            n_peaks,
            average,
            price_kw,
            average * price_kw,
        )
        imported, exported, contract = import_kwh[i], export_kwh[i], contracts[i]
        lines = [
            LineAmount(Line.ENERGY_SPOT, spot_imp[i], imported, "kWh", "imported energy by interval"),
            LineAmount(Line.ENERGY_MARGIN, margin[i], imported, "kWh", "imported energy by interval"),
            LineAmount(Line.GRID_ENERGY_FEE, fee[i], imported, "kWh", "imported energy by interval"),
            LineAmount(Line.ENERGY_TAX, tax[i], imported, "kWh", "imported energy by interval"),
            LineAmount(
                Line.GRID_POWER_CHARGE,
                round_ore(average * price_kw),
                average,
                "kW",
                f"average of the {n_peaks} highest daily hourly peaks x {price_kw} SEK/kW",
            ),
        ]
        vat_base = sum((la.amount_sek for la in lines), ZERO)
        lines.append(
            LineAmount(Line.VAT, round_ore(vat_base * vat_rate), vat_base, "SEK", f"{vat_rate} x the import lines")
        )
        for name, amount in (
            (Line.EXPORT_SPOT, spot_exp[i]),
            (Line.EXPORT_FEE, export_fee[i]),
            (Line.EXPORT_GRID_BENEFIT, benefit[i]),
        ):
            lines.append(LineAmount(name, amount, exported, "kWh", "exported energy by interval"))
        reserve = reserve_net_sek[i]
        if reserve != reserve.quantize(ORE):
            msg = f"reserve_net_sek[{month.ev_ids[i]}]: {reserve} is not a whole number of öre"
            raise SettlementInputError(msg)
        share = round_ore(reserve * contract.owner_revenue_share)
        lines += [
            LineAmount(
                Line.RESERVE_OWNER,
                share,
                reserve,
                "SEK",
                f"{contract.owner_revenue_share} of the reserve revenue allocated ({contract.source})",
            ),
            LineAmount(Line.RESERVE_AGGREGATOR, reserve - share, reserve, "SEK", "the rest"),
            LineAmount(
                Line.WEAR_ALLOWANCE,
                round_ore(exported * contract.wear_allowance_ore_per_kwh / _HUNDRED),
                exported,
                "kWh",
                f"{contract.wear_allowance_ore_per_kwh} öre per kWh discharged ({contract.source})",
            ),
        ]
        out.append(
            EvPeriodSettlement(
                period=period,
                ev_id=month.ev_ids[i],
                customer_id=month.customer_ids[i],
                dso_key=month.dso_keys[i],
                lines=tuple(lines),
                intervals=(),
                power_charge=charge,
                reserve_net_sek=reserve,
                import_kwh=imported,
                export_kwh=exported,
                storage_refund_claim_kwh=refund_kwh[i] if refund_mask.any() else ZERO,
                storage_refund_claim_sek=refund_sek[i],
                micro_production_credit_sek=ZERO,
                quality=dict(quality[i]) if quality is not None else {},
            )
        )
    return out


def _peaks(month: MeteredMonth, days: Sequence[date]) -> list[list[tuple[int, int]]]:
    """Per EV: the highest hourly net imports on different local days (at most 5, only positive ones)
    as (hour index, 0.1 Wh units), highest first, ties to the earlier hour; a day's peak is its first
    highest hour."""
    n, q = month.import_e4.shape
    hours = q // 4
    net = (month.import_e4 - month.export_e4).reshape(n, hours, 4).sum(axis=2)
    hour_days = [days[4 * h] for h in range(hours)]
    bounds = [0] + [h for h in range(1, hours) if hour_days[h] != hour_days[h - 1]] + [hours]
    best = np.zeros((n, len(bounds) - 1), dtype=np.int64)
    at = np.zeros((n, len(bounds) - 1), dtype=np.int64)
    for d in range(len(bounds) - 1):
        part = net[:, bounds[d] : bounds[d + 1]]
        at[:, d] = bounds[d] + part.argmax(axis=1)
        best[:, d] = part.max(axis=1)
    positive = best > 0
    order = np.lexsort((at, -best), axis=1)
    k = min(5, best.shape[1])
    ranked_best = np.take_along_axis(np.where(positive, best, 0), order, axis=1)[:, :k]
    ranked_at = np.take_along_axis(at, order, axis=1)[:, :k]
    ranked_pos = np.take_along_axis(positive, order, axis=1)[:, :k]
    return [
        [(h, b) for h, b, p in zip(hs, bs, ps, strict=True) if p]
        for hs, bs, ps in zip(ranked_at.tolist(), ranked_best.tolist(), ranked_pos.tolist(), strict=True)
    ]


def intervals_as_arrays(
    period: SettlementPeriod, per_ev: Sequence[Sequence[tuple[int, Decimal, Decimal]]]
) -> tuple[IntArray, IntArray]:
    """(quarter index, import kWh, export kWh) per EV to the ``[EV, quarter]`` 0.1 Wh arrays."""
    n_q = quarters_of(period)
    imp = np.zeros((len(per_ev), n_q), dtype=np.int64)
    exp = np.zeros((len(per_ev), n_q), dtype=np.int64)
    for i, rows in enumerate(per_ev):
        for k, a, b in rows:
            imp[i, k] = int(a / KWH_QUANTUM)
            exp[i, k] = int(b / KWH_QUANTUM)
    return imp, exp
