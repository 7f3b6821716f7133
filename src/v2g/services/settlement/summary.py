"""The statement summary a settlement run stores beside its postings: what a statement needs that
the postings do not hold."""

from __future__ import annotations

from datetime import date
from typing import Any

from v2g.settlement.economics import ContractTerms, EvPeriodSettlement
from v2g.settlement.tariffs import Schedule, TariffBook


def _rules_in_force(schedule: Schedule, first: date, last: date) -> list[dict[str, str]]:
    entries = [e for e in schedule.entries if e.valid_from <= last]
    in_force = [e for e in entries if e.valid_from > first] + [schedule.entry(first)]
    return [
        {
            "rule": schedule.name,
            "valid_from": e.valid_from.isoformat(),
            "value": str(e.value),
            "confidence": e.confidence.value,
            "source": e.source,
        }
        for e in sorted(in_force, key=lambda e: e.valid_from)
    ]


def statement_summary(settled: EvPeriodSettlement, contract: ContractTerms, tariffs: TariffBook) -> dict[str, Any]:
    """What a statement needs that the postings do not hold: quantities, the refund claim, the peaks,
    the data quality, the contract and every rule in force with its source."""
    first, last = settled.period.first_day, settled.period.last_day
    dso = tariffs.dso(settled.dso_key)
    schedules = [
        tariffs.energy_tax_ore_per_kwh,
        tariffs.vat_rate,
        tariffs.import_margin_ore_per_kwh,
        tariffs.export_fee_ore_per_kwh,
        tariffs.sek_per_eur,
        tariffs.micro_production_credit_ore_per_kwh,
        dso.energy_fee_ore_per_kwh,
        dso.power_charge_sek_per_kw_month,
        dso.power_charge_peaks,
        dso.grid_benefit_ore_per_kwh,
    ]
    return {
        "period": settled.period.code,
        "ev_id": settled.ev_id,
        "customer_id": settled.customer_id,
        "dso_tariff": settled.dso_key,
        "lines": [
            {
                "line": la.line.value,
                "amount_sek": str(la.amount_sek),
                "quantity": None if la.quantity is None else str(la.quantity),
                "unit": la.unit,
                "basis": la.basis,
            }
            for la in settled.lines
        ],
        "import_kwh": str(settled.import_kwh),
        "export_kwh": str(settled.export_kwh),
        "owner_net_sek": str(settled.owner_net_sek),
        "reserve_net_sek": str(settled.reserve_net_sek),
        "power_charge": {
            "peaks": [[at.isoformat(), str(kwh)] for at, kwh in settled.power_charge.peaks],
            "average_kw": str(settled.power_charge.average_kw),
        },
        "storage_refund_claim": {
            "kwh": str(settled.storage_refund_claim_kwh),
            "energy_tax_sek": str(settled.storage_refund_claim_sek),
            "note": "energy tax on energy fed back after storage: the owner may claim it back; not credited",
        },
        "micro_production_credit_sek": str(settled.micro_production_credit_sek),
        "quality": dict(settled.quality),
        "contract": {
            "owner_revenue_share": str(contract.owner_revenue_share),
            "wear_allowance_ore_per_kwh": str(contract.wear_allowance_ore_per_kwh),
            "source": contract.source,
        },
        "rules": [r for s in schedules for r in _rules_in_force(s, first, last)],
    }
