"""Settlement: metering intervals, owner economics, reserve revenue allocation and the double-entry ledger.

A pure core (no I/O): :mod:`~v2g.settlement.metering` turns register readings into 15-minute
intervals with quality flags and fill rules; :mod:`~v2g.settlement.tariffs` holds the Swedish taxes,
VAT, supplier terms and DSO tariffs as dated data with sources (``tariffs.yaml``);
:mod:`~v2g.settlement.economics` prices an EV's period line by line;
:mod:`~v2g.settlement.allocation` splits reserve-market money over EVs by contribution (largest
remainder, exact to the öre); :mod:`~v2g.settlement.ledger` posts balanced, immutable transactions
with idempotency keys, corrections into the next open period, and closes periods. The rounding
rule is in :mod:`~v2g.settlement.money`; the use case that runs a period over stored telemetry is
:mod:`v2g.services.settlement`.
"""

from v2g.settlement.allocation import (
    EvContribution,
    ReserveAllocation,
    ReserveHour,
    allocate,
    allocate_reserve_hour,
    largest_remainder,
)
from v2g.settlement.economics import ContractTerms, EvPeriodSettlement, Line, LineAmount, settle_ev_period
from v2g.settlement.ledger import Account, AccountKind, LedgerTransaction, PeriodClose, Posting, TxKind
from v2g.settlement.metering import FillRule, MeterData, MeterInterval, PluggedPeriod, Quality, Reading, meter_intervals
from v2g.settlement.money import ORE, SettlementInputError, round_ore
from v2g.settlement.periods import SettlementPeriod
from v2g.settlement.tariffs import Confidence, TariffBook, load_tariffs

__all__ = [
    "ORE",
    "Account",
    "AccountKind",
    "Confidence",
    "ContractTerms",
    "EvContribution",
    "EvPeriodSettlement",
    "FillRule",
    "LedgerTransaction",
    "Line",
    "LineAmount",
    "MeterData",
    "MeterInterval",
    "PeriodClose",
    "PluggedPeriod",
    "Posting",
    "Quality",
    "Reading",
    "ReserveAllocation",
    "ReserveHour",
    "SettlementInputError",
    "SettlementPeriod",
    "TariffBook",
    "TxKind",
    "allocate",
    "allocate_reserve_hour",
    "largest_remainder",
    "load_tariffs",
    "meter_intervals",
    "round_ore",
    "settle_ev_period",
]
