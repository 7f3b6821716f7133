"""Reports from the ledger: the owner's monthly statement, the operator's reconciliation, the BSP
statement per bidding group, and the ledger export for accounting.

Everything is read from what the settlement run stored (statement summaries, metering snapshots,
the ledger) and from the same sources the run used (reserve allocations, day-ahead prices), so a
report says what was posted, never a fresh guess.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from v2g.services.settlement.ports import AccountPosting, EvAccount, FleetDirectory
from v2g.services.settlement.service import SettlementService
from v2g.settlement.allocation import ReserveAllocation
from v2g.settlement.ledger import LedgerTransaction, TxKind, owner_account
from v2g.settlement.meter_arrays import blob_intervals
from v2g.settlement.money import ZERO, SettlementInputError
from v2g.settlement.periods import SettlementPeriod
from v2g.settlement.reports import GroupStatement, Reconciliation, group_statements, reconcile
from v2g.settlement.statement import (
    EvStatementData,
    OwnerLedgerLine,
    OwnerStatement,
    ReserveHourShare,
    build_ev_statement,
)


class SettlementNotFoundError(LookupError):
    """A statement, customer or group that does not exist; the message names the id."""


def reserve_shares(allocations: Sequence[ReserveAllocation]) -> dict[str, list[ReserveHourShare]]:
    """Each EV's part of each market hour: capacity-hours held and its split of the money."""
    out: dict[str, list[ReserveHourShare]] = defaultdict(list)
    for a in allocations:
        held = {c.ev_id: c.held_kwh for c in a.hour.contributions}
        for ev in sorted(set(a.ev_ids) | set(held)):
            out[ev].append(
                ReserveHourShare(
                    hour_start_at=a.hour.hour_start_at,
                    group_id=a.hour.group_id,
                    product=a.hour.product,
                    held_kwh=held.get(ev, ZERO),
                    capacity_sek=a.capacity_sek.get(ev, ZERO),
                    activation_sek=a.activation_sek.get(ev, ZERO),
                    repayment_sek=a.repayment_sek.get(ev, ZERO),
                )
            )
    return dict(out)


class SettlementReports:
    """Statements, reconciliation, BSP statements and the export, over the settlement service's ports."""

    def __init__(self, service: SettlementService, directory: FleetDirectory) -> None:
        self.service = service
        self.directory = directory

    # ------------------------------------------------------------------ the owner
    def owner_statement(self, customer_id: str, period: SettlementPeriod) -> OwnerStatement:
        """The customer's statement for ``period`` from what the run stored; every EV of theirs settled."""
        owner = owner_account(customer_id).code
        with self.service.tx() as store:
            summaries = store.statements_of(customer_id, period)
            if not summaries:
                name = self.directory.customer_name(customer_id)
                what = "no customer" if name is None else "no settled statement for customer"
                msg = f"{what} {customer_id!r}" + ("" if name is None else f" in {period}")
                raise SettlementNotFoundError(msg)
            stored = store.meter_months(period, [str(s["ev_id"]) for s in summaries])
            postings = store.account_postings(owner)
        ev_ids = [str(s["ev_id"]) for s in summaries]
        accounts = {a.ev_id: a for a in self.service.sources.ev_accounts(ev_ids)}
        shares = reserve_shares(self.service.reserve_allocations(period))
        spot_by_area: dict[str, dict[datetime, Decimal]] = {}
        evs = []
        for summary in summaries:
            ev_id = str(summary["ev_id"])
            account = accounts.get(ev_id)
            if account is None:
                msg = f"ev_id: {ev_id!r} of customer {customer_id!r} has no charger on record any more"
                raise SettlementInputError(msg)
            if account.price_area.value not in spot_by_area:
                spot_by_area[account.price_area.value] = self.service.spot_prices(account.price_area, period)
            snapshot = stored.get(ev_id)
            intervals = blob_intervals(None if snapshot is None else snapshot.data, period)
            data = EvStatementData(
                summary=summary,
                intervals=intervals,
                spot_ore_per_kwh=spot_by_area[account.price_area.value],
                reserve=shares.get(ev_id, []),
                plugged=self.directory.plugged_periods(account, period.start_at, period.end_at),
                max_charge_kw=account.max_charge_kw,
                label=account.label,
            )
            evs.append(build_ev_statement(data, self.service.tariffs))
        created = max(datetime.fromisoformat(str(s["created_at"])) for s in summaries)
        return OwnerStatement(
            period=period,
            customer_id=customer_id,
            customer_name=self.directory.customer_name(customer_id) or customer_id,
            evs=tuple(evs),
            ledger=tuple(_owner_lines(postings, period)),
            created_at=created,
        )

    def owner_ledger(self, customer_id: str, period: SettlementPeriod | None = None) -> list[AccountPosting]:
        """The postings on the customer's account (those posted in or settling ``period``, when given)."""
        with self.service.tx() as store:
            postings = store.account_postings(owner_account(customer_id).code)
        if period is None:
            return postings
        return [p for p in postings if period.code in (p.period, p.settles)]

    def owner_periods(self, customer_id: str) -> list[SettlementPeriod]:
        """The months settled on the customer's account, newest first."""
        codes = {p.settles for p in self.owner_ledger(customer_id) if p.settles}
        return sorted((SettlementPeriod.parse(code) for code in codes), key=lambda p: p.code, reverse=True)

    def statement_owner(self, period: SettlementPeriod, ev_id: str) -> str | None:
        with self.service.tx() as store:
            return store.statement_owner(period, ev_id)

    # ------------------------------------------------------------------ the operator and the BSPs
    def reconcile(self, period: SettlementPeriod) -> Reconciliation:
        """The period's market money against the ledger, to the öre."""
        allocations = self.service.reserve_allocations(period)
        with self.service.tx() as store:
            postings = store.postings_settling(period)
        return reconcile(period, allocations, postings, self.directory.group_bsps())

    def bsp_statements(self, period: SettlementPeriod) -> list[GroupStatement]:
        """One statement per bidding group with market money in the period."""
        return group_statements(period, self.service.reserve_allocations(period), self.directory.group_bsps())

    def ledger_export(self, period: SettlementPeriod) -> list[LedgerTransaction]:
        """Every transaction posted in ``period``, in posting order."""
        with self.service.tx() as store:
            return store.transactions_in(period)

    def ev_account(self, ev_id: str) -> EvAccount | None:
        found = self.service.sources.ev_accounts([ev_id])
        return found[0] if found else None


def _owner_lines(postings: Sequence[AccountPosting], period: SettlementPeriod) -> list[OwnerLedgerLine]:
    """The owner's postings that settle ``period`` (settlement, corrections, its payout or invoice)."""
    kinds = {k.value for k in TxKind}
    return [
        OwnerLedgerLine(p.key, p.kind, p.period, p.settles, p.line, p.subject, p.amount_sek)
        for p in postings
        if p.settles == period.code and p.kind in kinds
    ]
