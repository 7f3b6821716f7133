"""Billing and the settlement day: payouts, invoices and payments as ledger transactions, and the
daily job that captures metering, runs the month that ended, closes it and bills it.

Every transaction here has an idempotency key (``payout/<period>/<customer>``,
``invoice/<period>/<customer>``, ``payment/<reference>``, ``final/<customer>``): running a step
again posts nothing new. A period is billed only once it is closed, from the owner's balance over
every transaction posted up to and including it (later corrections are billed with the next
month); closed periods are billed in order, and a customer with a final settlement is not billed
again by month.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from v2g.services.settlement.ports import ConcurrentPostingError, FleetDirectory, SettlementStore
from v2g.services.settlement.reports import SettlementNotFoundError
from v2g.services.settlement.service import RunReport, SettlementService
from v2g.settlement.ledger import (
    LedgerTransaction,
    TxKind,
    invoice_transaction,
    owner_account,
    payment_transaction,
    payout_transaction,
)
from v2g.settlement.money import ORE, SettlementInputError
from v2g.settlement.periods import SettlementPeriod, local_date


@dataclass
class BillingReport:
    """What billing a period posted."""

    period: SettlementPeriod
    payouts: list[str] = field(default_factory=list)  # keys posted now
    invoices: list[str] = field(default_factory=list)
    unchanged: int = 0  # customers already billed, even, or settled finally


@dataclass(frozen=True, slots=True)
class BillingItem:
    """One line of a closed month's billing: a payout to an owner or an invoice to one."""

    customer_id: str
    customer_name: str
    kind: TxKind  # PAYOUT or INVOICE
    amount_sek: Decimal  # > 0: paid to the owner (payout) or asked of them (invoice)
    key: str  # the ledger transaction's key; the payment reference the bank file carries
    posted_in: SettlementPeriod

    def to_json(self) -> dict[str, str]:
        return {
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "kind": self.kind.value,
            "amount_sek": str(self.amount_sek),
            "key": self.key,
            "posted_in": self.posted_in.code,
        }


@dataclass
class DayReport:
    """What one run of the settlement day did."""

    captured_ev_days: int = 0
    run: RunReport | None = None
    closed: list[SettlementPeriod] = field(default_factory=list)
    billed: list[BillingReport] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.captured_ev_days} EV-days captured"]
        if self.run is not None:
            r = self.run
            parts.append(f"{r.period}: {len(r.posted)} posted, {len(r.unchanged)} unchanged, {len(r.failed)} failed")
        parts += [f"closed {p}" for p in self.closed]
        for b in self.billed:
            if b.payouts or b.invoices:
                parts.append(f"billed {b.period}: {len(b.payouts)} payouts, {len(b.invoices)} invoices")
        return "; ".join(parts)


class SettlementBilling:
    """Payouts, invoices, payments and the daily settlement job."""

    def __init__(
        self,
        service: SettlementService,
        directory: FleetDirectory,
        *,
        close_day: int = 5,
        on_day_done: Callable[[], object] | None = None,
    ) -> None:
        if not 1 <= close_day <= 28:
            msg = f"close_day: {close_day} must be 1-28 (the local day of the month a month is closed)"
            raise SettlementInputError(msg)
        self.service = service
        self.directory = directory
        self.close_day = close_day
        self.on_day_done = on_day_done  # after each settlement day (the journeys' final settlements listen)

    # ------------------------------------------------------------------ billing
    def bill(self, period: SettlementPeriod) -> BillingReport:
        """Pay out or invoice every owner's balance after the closed ``period`` (once per key)."""
        report = BillingReport(period)
        with self.service.tx() as store:
            if period not in store.closed_periods():
                msg = f"period: {period} is not closed; close it before billing"
                raise SettlementInputError(msg)
            customers = store.owner_customers()
        for customer in customers:
            try:
                posted = self._bill_one(period, customer)
            except ConcurrentPostingError:
                posted = None  # another run billed it first
            if posted is None:
                report.unchanged += 1
            elif posted.kind.value == "payout":
                report.payouts.append(posted.key)
            else:
                report.invoices.append(posted.key)
        return report

    def _bill_one(self, period: SettlementPeriod, customer: str) -> LedgerTransaction | None:
        with self.service.tx() as store:
            if store.transaction(f"final/{customer}") is not None:
                return None
            balance = store.account_balance(owner_account(customer).code, through=period)
            closed = store.closed_periods()
            tx = payout_transaction(customer, balance, period, closed) or invoice_transaction(
                customer, balance, period, closed
            )
            if tx is None or store.transaction(tx.key) is not None:
                return None
            store.append(tx, self.service.clock.now())
            return tx

    def billing_items(self, period: SettlementPeriod) -> list[BillingItem]:
        """The payouts and invoices billed for ``period`` (the bank's payout list and the invoice run),
        and the final settlements of customers whose service ended in it, by customer id; empty before
        the period is billed."""
        items = []
        with self.service.tx() as store:
            customers = store.owner_customers()
            for customer in customers:
                keys = [f"{kind.value}/{period.code}/{customer}" for kind in (TxKind.PAYOUT, TxKind.INVOICE)]
                for key in [*keys, f"final/{customer}"]:
                    tx = store.transaction(key)
                    if tx is None or tx.settles != period:  # a final settlement is listed with its month
                        continue
                    owner = owner_account(customer).code
                    amount = sum((p.amount_sek for p in tx.postings if p.account.code == owner), Decimal(0))
                    name = self.directory.customer_name(customer) or ""
                    items.append(BillingItem(customer, name, tx.kind, abs(amount), tx.key, tx.period))
        return items

    def record_payment(self, customer_id: str, amount_sek: Decimal, reference: str) -> LedgerTransaction:
        """An owner's payment received (``reference`` is the bank's, unique); the same reference again
        returns the transaction already posted, a different amount under it is refused."""
        if amount_sek != amount_sek.quantize(ORE):
            msg = f"amount_sek: {amount_sek} is not a whole number of öre"
            raise SettlementInputError(msg)
        amount_sek = amount_sek.quantize(ORE)
        reference = reference.strip()
        if not reference or len(reference) > 80:
            msg = f"reference: {reference!r} must be the bank's reference, 1-80 characters"
            raise SettlementInputError(msg)
        if self.directory.customer_name(customer_id) is None:
            msg = f"customer {customer_id!r} not found"
            raise SettlementNotFoundError(msg)
        now = self.service.clock.now()
        try:
            with self.service.tx() as store:
                tx = payment_transaction(
                    customer_id, amount_sek, reference, SettlementPeriod.containing(now), store.closed_periods()
                )
                existing = store.transaction(tx.key)
                if existing is None:
                    store.append(tx, now)
                    return tx
        except ConcurrentPostingError:  # another request recorded it first (or its month closed meanwhile)
            with self.service.tx() as store:
                existing = store.transaction(f"payment/{reference}")
            if existing is None:
                msg = f"reference: payment {reference!r} could not be recorded (its month closed meanwhile); try again"
                raise SettlementInputError(msg) from None
            tx = payment_transaction(customer_id, amount_sek, reference, existing.period, set())
        if existing.postings != tx.postings:
            msg = f"reference: payment {reference!r} is on record with other amounts or customer"
            raise SettlementInputError(msg)
        return existing

    # ------------------------------------------------------------------ the day
    def settlement_day(self, now: datetime | None = None) -> DayReport:
        """Capture this month's metering so far; settle last month (again each day: late data becomes
        a correction, in the next open month once it is closed); from the close day on, close every
        open month up to last month in order; bill the months closed now in order, and last month
        again once it is closed (its keys make that a no-op unless a billing was cut short)."""
        now = now or self.service.clock.now()
        report = DayReport()
        current = SettlementPeriod.containing(now)
        previous = current.previous()
        ev_ids = self.directory.all_ev_ids()
        report.captured_ev_days = self.service.capture_metering(current, ev_ids)
        with self.service.tx() as store:
            closed = store.closed_periods()
            open_with_postings = sorted(p for p in store.periods_with_postings() if p not in closed)
        report.run = self.service.run_period(previous, ev_ids)  # after its close: corrections, next open month
        if local_date(now).day >= self.close_day:
            for period in [*(p for p in open_with_postings if p < previous), previous]:
                if period not in closed:
                    self.service.close_period(period)
                    closed.add(period)
                    report.closed.append(period)
        # the months closed now, in order, and last month again (a billing cut short resumes)
        for period in sorted({*report.closed, *([previous] if previous in closed else [])}):
            report.billed.append(self.bill(period))
        if self.on_day_done is not None:
            self.on_day_done()
        return report


def final_balance(store: SettlementStore, customer_id: str) -> Decimal:
    """The owner's whole balance (every period)."""
    return store.account_balance(owner_account(customer_id).code)
