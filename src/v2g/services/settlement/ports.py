"""What the settlement use case needs from the rest of the platform: the fleet, meter data, the
market's reserve records, day-ahead prices, and a ledger store with one transaction per EV-period."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from v2g.fleet.model import PriceArea
from v2g.settlement.allocation import EvContribution
from v2g.settlement.economics import ContractTerms
from v2g.settlement.ledger import LedgerTransaction, PeriodClose, Posting
from v2g.settlement.meter_arrays import RegisterReadings
from v2g.settlement.metering import MeterData, PluggedPeriod
from v2g.settlement.periods import SettlementPeriod


@dataclass(frozen=True, slots=True)
class EvAccount:
    """An EV as settlement sees it: whose it is, where it charges, which DSO bills the energy."""

    ev_id: str
    customer_id: str
    charger_id: str
    price_area: PriceArea
    grid_area_id: str
    dso_org_id: str | None
    label: str = ""  # the vehicle as its owner knows it (make, model)
    max_charge_kw: Decimal = Decimal(11)  # the lower of the vehicle's and the charger's


@dataclass(frozen=True, slots=True)
class MarketReserveHour:
    """One bidding group's market money for a product and hour, in EUR as the market pays it, and
    what each EV contributed (capacity-hours maintained, activated energy, capacity-hours short)."""

    group_id: str
    product: str
    hour_start_at: datetime
    capacity_payment_eur: Decimal
    activation_payment_eur: Decimal
    repayment_eur: Decimal
    contributions: tuple[EvContribution, ...] = field(default_factory=tuple)


class SettlementSources(Protocol):
    """Read-only: the fleet, the chargers' meter data, the reserve market's records."""

    def ev_accounts(self, ev_ids: Sequence[str]) -> list[EvAccount]:
        """The EVs asked for that exist (one charger each), in id order."""
        ...

    def meter_data(self, ev: EvAccount, start_at: datetime, end_at: datetime) -> MeterData:
        """Registers (with the last reading before and the first after the window), power samples and
        charging transactions of the EV's charger around ``[start_at, end_at)``."""
        ...

    def register_readings(
        self, accounts: Sequence[EvAccount], start_at: datetime, end_at: datetime
    ) -> RegisterReadings:
        """The register readings of many EVs in bulk (row ``i`` is ``accounts[i]``): what
        :func:`~v2g.settlement.meter_arrays.meter_registers` meters."""
        ...

    def reserve_hours(self, start_at: datetime, end_at: datetime) -> list[MarketReserveHour]:
        """Every verified market hour in ``[start_at, end_at)``, with each EV's contribution."""
        ...


@dataclass(frozen=True, slots=True)
class AccountPosting:
    """One posting on an account with its transaction."""

    key: str
    kind: str
    period: str
    settles: str
    line: str
    subject: str
    amount_sek: Decimal


class FleetDirectory(Protocol):
    """Read-only: what reports need beside the meter data."""

    def all_ev_ids(self) -> list[str]:
        """Every vehicle paired with a charger (what the settlement jobs run)."""
        ...

    def plugged_periods(self, ev: EvAccount, start_at: datetime, end_at: datetime) -> list[PluggedPeriod]:
        """The EV's charging transactions overlapping ``[start_at, end_at)``."""
        ...

    def customer_name(self, customer_id: str) -> str | None: ...

    def group_bsps(self) -> dict[str, str]:
        """Each bidding group's BSP organisation."""
        ...


class DayAheadPrices(Protocol):
    """Day-ahead prices per quarter (the planner's price provider fits)."""

    def day_ahead_eur_per_mwh(self, area: PriceArea, start_at: datetime, n_quarters: int) -> Sequence[float]: ...


class ConcurrentPostingError(RuntimeError):
    """Another run posted the same key first, or closed the period meanwhile: re-run the subject."""


@dataclass(frozen=True, slots=True)
class StoredMeterMonth:
    """The latest stored metering snapshot of one EV and period (``meter_arrays.encode_row``)."""

    ev_id: str
    version: int
    digest: str
    data: bytes


@dataclass(frozen=True, slots=True)
class NewMeterMonth:
    """A new snapshot version to store."""

    ev_id: str
    charger_id: str
    version: int
    n_quarters: int
    digest: str
    data: bytes


@dataclass(frozen=True, slots=True)
class NewStatement:
    """A new statement summary version to store (canonical JSON and its digest)."""

    ev_id: str
    customer_id: str
    version: int
    digest: str
    summary_json: str


class SettlementStore(Protocol):
    """The ledger and its companions, inside one database transaction. Append-only: there is no
    method that changes or removes a row."""

    def closed_periods(self) -> set[SettlementPeriod]: ...

    def lock_period(self, period: SettlementPeriod) -> None:
        """Serialise with a close of ``period`` (and other writers of it) until the transaction ends."""
        ...

    def subject_postings(self, settles: SettlementPeriod, subject: str) -> tuple[list[Posting], int]:
        """Every posting settling ``subject`` for ``settles`` and how many transactions hold them."""
        ...

    def append(self, tx: LedgerTransaction, at: datetime) -> None:
        """Insert the transaction and its postings; refuses a closed period; a key already used
        raises :class:`ConcurrentPostingError`."""
        ...

    def transaction(self, key: str) -> LedgerTransaction | None: ...

    def transactions_in(self, period: SettlementPeriod) -> list[LedgerTransaction]: ...

    def periods_with_postings(self) -> set[SettlementPeriod]: ...

    def record_close(self, close: PeriodClose) -> None: ...

    def meter_months(self, period: SettlementPeriod, ev_ids: Sequence[str]) -> dict[str, StoredMeterMonth]:
        """The latest snapshot of each EV for the period (EVs without one are absent)."""
        ...

    def save_meter_months(self, period: SettlementPeriod, rows: Sequence[NewMeterMonth], at: datetime) -> None:
        """Insert new versions; one stored meanwhile raises :class:`ConcurrentPostingError`."""
        ...

    def latest_statement_digests(
        self, period: SettlementPeriod, ev_ids: Sequence[str]
    ) -> dict[str, tuple[int, str]]: ...

    def save_statements(self, period: SettlementPeriod, rows: Sequence[NewStatement], at: datetime) -> None: ...

    def save_statement(
        self,
        period: SettlementPeriod,
        ev_id: str,
        customer_id: str,
        version: int,
        summary: Mapping[str, object],
        at: datetime,
    ) -> None: ...

    def contract_terms(self, customer_id: str, day: date) -> ContractTerms | None:
        """The owner's own terms in force on ``day`` (None: the default terms apply)."""
        ...

    # the read side of reports and billing
    def postings_settling(self, settles: SettlementPeriod) -> list[Posting]: ...

    def account_postings(self, account: str) -> list[AccountPosting]: ...

    def account_balance(self, account: str, through: SettlementPeriod | None = None) -> Decimal: ...

    def owner_customers(self) -> list[str]: ...

    def statements_of(self, customer_id: str, period: SettlementPeriod) -> list[dict[str, Any]]: ...

    def statement_owner(self, period: SettlementPeriod, ev_id: str) -> str | None: ...

    # bulk, for large fleets
    def postings_of_subjects(
        self, settles: SettlementPeriod, subjects: Sequence[str]
    ) -> dict[str, tuple[list[Posting], int]]: ...

    def append_many(self, txs: Sequence[LedgerTransaction], at: datetime) -> None: ...

    def contract_terms_of(self, customer_ids: Sequence[str], day: date) -> dict[str, ContractTerms]: ...


SettlementTx = Callable[[], AbstractContextManager[SettlementStore]]
"""A unit of work: each ``with`` block is one database transaction, rolled back on error."""
