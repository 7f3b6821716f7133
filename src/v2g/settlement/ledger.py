"""The double-entry ledger: accounts, balanced transactions with idempotency keys, corrections into
the next open period, the monthly close and owner payouts.

Sign convention: a posting's ``amount_sek`` is a debit when positive and a credit when negative;
the postings of a transaction sum to zero. A line flows from its payer (debited) to its payee
(credited), so an owner's account balance is what the owner owes (positive) or is owed (negative).
Transactions are immutable: a change is a new transaction, never an edit. A period's settlement of
one subject (an EV, or a bidding group's unallocated reserve revenue) is keyed
``settle/<period>/<subject>/<n>``: the n-th transaction for it. A run compares what it computes
with what was already posted for the subject and period, and posts only the difference: nothing
when they agree (a re-run is a no-op), a correction when late data changed the result, in the
settled period while it is open, else in the next open one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from v2g.settlement.economics import Line, LineAmount
from v2g.settlement.money import ORE, ZERO, SettlementInputError, is_ore_exact
from v2g.settlement.periods import SettlementPeriod
from v2g.units import ensure_utc

MAX_KEY_CHARS = 200


class AccountKind(StrEnum):
    """Who an account belongs to."""

    OWNER = "owner"  # an EV owner (a customer)
    AGGREGATOR = "aggregator"  # the platform's own accounts
    MARKET = "market"  # the TSO reserve market through the BSP
    SUPPLIER = "supplier"  # the electricity supplier
    DSO = "dso"  # a grid operator (by tariff)
    TAX = "tax"  # the tax authority: energy tax and VAT
    BANK = "bank"  # money leaving or entering: payouts and receipts
    RECEIVABLE = "receivable"  # what an owner was invoiced and has not paid yet


@dataclass(frozen=True, slots=True, order=True)
class Account:
    """An account, ``kind:name`` (``owner:c-17``, ``tax:vat``)."""

    kind: AccountKind
    name: str

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name or len(self.name) > 90:
            msg = f"account.name: {self.name!r} must be 1-90 characters without ':'"
            raise SettlementInputError(msg)

    @property
    def code(self) -> str:
        return f"{self.kind.value}:{self.name}"

    def __str__(self) -> str:
        return self.code

    @classmethod
    def parse(cls, code: str) -> Account:
        """``kind:name`` back to an account."""
        kind, sep, name = code.partition(":")
        if not sep or kind not in {k.value for k in AccountKind}:
            msg = f"account: {code!r} is not kind:name with a known kind"
            raise SettlementInputError(msg)
        return cls(AccountKind(kind), name)


AGGREGATOR_RESERVE = Account(AccountKind.AGGREGATOR, "reserve_share")
AGGREGATOR_WEAR = Account(AccountKind.AGGREGATOR, "wear_allowance")
MARKET_RESERVE = Account(AccountKind.MARKET, "reserve")
SUPPLIER_ENERGY = Account(AccountKind.SUPPLIER, "energy")
TAX_ENERGY = Account(AccountKind.TAX, "energy_tax")
TAX_VAT = Account(AccountKind.TAX, "vat")
BANK_PAYOUTS = Account(AccountKind.BANK, "payouts")
BANK_RECEIPTS = Account(AccountKind.BANK, "receipts")


def owner_account(customer_id: str) -> Account:
    return Account(AccountKind.OWNER, customer_id)


def dso_account(tariff_key: str) -> Account:
    return Account(AccountKind.DSO, tariff_key)


def receivable_account(customer_id: str) -> Account:
    return Account(AccountKind.RECEIVABLE, customer_id)


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of a transaction: a debit (> 0) or credit (< 0) in SEK to the öre."""

    account: Account
    amount_sek: Decimal
    line: str
    subject: str

    def __post_init__(self) -> None:
        if not is_ore_exact(self.amount_sek) or not self.amount_sek.is_finite():
            msg = f"posting[{self.account} {self.line}].amount_sek: {self.amount_sek} is not a whole number of öre"
            raise SettlementInputError(msg)
        if self.amount_sek == 0:
            msg = f"posting[{self.account} {self.line}].amount_sek: a posting of 0 is not kept"
            raise SettlementInputError(msg)
        if not self.line or not self.subject:
            msg = f"posting[{self.account}]: line and subject must not be empty"
            raise SettlementInputError(msg)


class TxKind(StrEnum):
    SETTLEMENT = "settlement"  # the first posting of a subject's period
    CORRECTION = "correction"  # a later difference (late data, changed rules)
    PAYOUT = "payout"  # money paid out to an owner
    INVOICE = "invoice"  # what an owner owes, billed: the owner's balance moves to their receivable
    PAYMENT = "payment"  # an owner's payment of an invoice received


@dataclass(frozen=True, slots=True)
class LedgerTransaction:
    """A balanced, immutable set of postings with its idempotency key."""

    key: str
    kind: TxKind
    period: SettlementPeriod  # the period it is posted in
    settles: SettlementPeriod  # the period whose data it settles
    subject: str
    postings: tuple[Posting, ...]
    description: str = ""

    def __post_init__(self) -> None:
        where = f"transaction[{self.key}]"
        if not self.key or len(self.key) > MAX_KEY_CHARS:
            msg = f"{where}.key: must be 1-{MAX_KEY_CHARS} characters"
            raise SettlementInputError(msg)
        if len(self.postings) < 2:
            msg = f"{where}.postings: a transaction needs at least two postings"
            raise SettlementInputError(msg)
        total = sum((p.amount_sek for p in self.postings), ZERO)
        if total != 0:
            msg = f"{where}.postings: debits and credits differ by {total} SEK"
            raise SettlementInputError(msg)
        if self.period < self.settles:
            msg = f"{where}.period: {self.period} is before the settled period {self.settles}"
            raise SettlementInputError(msg)

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical content (what a re-run compares)."""
        text = "\n".join(
            [self.key, self.kind.value, self.period.code, self.settles.code, self.subject]
            + [f"{p.account.code}|{p.line}|{p.subject}|{p.amount_sek.quantize(ORE)}" for p in self.postings]
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------ lines -> postings
_OWNER, _DSO = "owner", "dso"
LINE_FLOWS: Mapping[Line, tuple[Account | str, Account | str]] = {
    Line.ENERGY_SPOT: (_OWNER, SUPPLIER_ENERGY),
    Line.ENERGY_MARGIN: (_OWNER, SUPPLIER_ENERGY),
    Line.GRID_ENERGY_FEE: (_OWNER, _DSO),
    Line.GRID_POWER_CHARGE: (_OWNER, _DSO),
    Line.ENERGY_TAX: (_OWNER, TAX_ENERGY),
    Line.VAT: (_OWNER, TAX_VAT),
    Line.EXPORT_SPOT: (SUPPLIER_ENERGY, _OWNER),
    Line.EXPORT_FEE: (_OWNER, SUPPLIER_ENERGY),
    Line.EXPORT_GRID_BENEFIT: (_DSO, _OWNER),
    Line.RESERVE_OWNER: (MARKET_RESERVE, _OWNER),
    Line.RESERVE_AGGREGATOR: (MARKET_RESERVE, AGGREGATOR_RESERVE),
    Line.WEAR_ALLOWANCE: (AGGREGATOR_WEAR, _OWNER),
}
"""Who pays whom for each line: (payer, payee); "owner" and "dso" are the subject's own accounts."""

RESERVE_UNALLOCATED = "reserve.unallocated"


def line_postings(lines: Iterable[LineAmount], *, owner: Account, dso: Account, subject: str) -> list[Posting]:
    """Two postings per non-zero line: the payer debited, the payee credited."""
    roles = {_OWNER: owner, _DSO: dso}
    postings: list[Posting] = []
    for la in lines:
        if la.amount_sek == 0:
            continue
        payer, payee = LINE_FLOWS[la.line]
        debit = roles[payer] if isinstance(payer, str) else payer
        credit = roles[payee] if isinstance(payee, str) else payee
        postings.append(Posting(debit, la.amount_sek, la.line.value, subject))
        postings.append(Posting(credit, -la.amount_sek, la.line.value, subject))
    return postings


def unallocated_postings(amount_sek: Decimal, subject: str) -> list[Posting]:
    """Reserve money no EV earned (or a repayment no EV caused): between the market and the aggregator."""
    if amount_sek == 0:
        return []
    return [
        Posting(MARKET_RESERVE, amount_sek, RESERVE_UNALLOCATED, subject),
        Posting(AGGREGATOR_RESERVE, -amount_sek, RESERVE_UNALLOCATED, subject),
    ]


# ------------------------------------------------------------------------------------------ corrections
PostingKey = tuple[Account, str, str]


def net_by_key(postings: Iterable[Posting]) -> dict[PostingKey, Decimal]:
    """The net amount per (account, line, subject), zeros dropped."""
    net: dict[PostingKey, Decimal] = defaultdict(lambda: ZERO)
    for p in postings:
        net[(p.account, p.line, p.subject)] += p.amount_sek
    return {k: v for k, v in net.items() if v != 0}


def difference(target: Iterable[Posting], posted: Iterable[Posting]) -> list[Posting]:
    """The postings that take ``posted`` to ``target`` (empty when they agree), in a stable order."""
    want, have = net_by_key(target), net_by_key(posted)
    keys = sorted(set(want) | set(have), key=lambda k: (k[2], k[1], k[0].code))
    out = []
    for key in keys:
        delta = want.get(key, ZERO) - have.get(key, ZERO)
        if delta != 0:
            out.append(Posting(key[0], delta, key[1], key[2]))
    return out


def posting_period(settles: SettlementPeriod, closed: Collection[SettlementPeriod]) -> SettlementPeriod:
    """The settled period itself while it is open, else the first open period after it."""
    period = settles
    while period in closed:
        period = period.next()
    return period


def settlement_key(settles: SettlementPeriod, subject: str, n: int) -> str:
    """The idempotency key of the n-th transaction settling ``subject`` for ``settles``."""
    return f"settle/{settles.code}/{subject}/{n}"


def settlement_transaction(
    *,
    settles: SettlementPeriod,
    subject: str,
    target: Sequence[Posting],
    posted: Sequence[Posting],
    posted_count: int,
    closed: Collection[SettlementPeriod],
    reason: str = "",
) -> LedgerTransaction | None:
    """What to post so that the subject's period totals equal ``target``: None when they already do;
    the settlement when nothing was posted yet; else a correction in the next open period."""
    delta = difference(target, posted)
    if not delta:
        return None
    period = posting_period(settles, closed)
    kind = TxKind.SETTLEMENT if posted_count == 0 else TxKind.CORRECTION
    if kind is TxKind.SETTLEMENT:
        description = f"settlement of {subject} for {settles}"
    else:
        where = "" if period == settles else f" (posted in {period}: {settles} is closed)"
        description = f"correction {posted_count} of {subject} for {settles}{where}" + (f": {reason}" if reason else "")
    return LedgerTransaction(
        key=settlement_key(settles, subject, posted_count),
        kind=kind,
        period=period,
        settles=settles,
        subject=subject,
        postings=tuple(delta),
        description=description,
    )


# ------------------------------------------------------------------------------------------ close and payouts
def trial_balance(postings: Iterable[Posting]) -> dict[str, Decimal]:
    """The net of each account (by code), zeros dropped."""
    net: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for p in postings:
        net[p.account.code] += p.amount_sek
    return {k: net[k] for k in sorted(net) if net[k] != 0}


@dataclass(frozen=True, slots=True)
class PeriodClose:
    """A closed period: nothing more is posted in it; its trial balance as it was closed."""

    period: SettlementPeriod
    closed_at: datetime
    transactions: int
    trial_balance: Mapping[str, Decimal]

    def __post_init__(self) -> None:
        object.__setattr__(self, "closed_at", ensure_utc(self.closed_at, field="close.closed_at"))
        if sum(self.trial_balance.values(), ZERO) != 0:
            msg = f"close[{self.period}].trial_balance: does not sum to zero"
            raise SettlementInputError(msg)


def close_period(
    period: SettlementPeriod,
    transactions: Sequence[LedgerTransaction],
    closed: Collection[SettlementPeriod],
    at: datetime,
    *,
    earlier_open_with_postings: Collection[SettlementPeriod] = (),
) -> PeriodClose:
    """Close ``period`` (its transactions are those posted in it); periods close in order."""
    if period in closed:
        msg = f"period: {period} is already closed"
        raise SettlementInputError(msg)
    earlier = sorted(p for p in earlier_open_with_postings if p < period and p not in closed)
    if earlier:
        msg = f"period: close {earlier[0]} first (periods close in order)"
        raise SettlementInputError(msg)
    for tx in transactions:
        if tx.period != period:
            msg = f"transactions: {tx.key} is posted in {tx.period}, not {period}"
            raise SettlementInputError(msg)
    return PeriodClose(period, at, len(transactions), trial_balance(p for tx in transactions for p in tx.postings))


def payout_transaction(
    customer_id: str, balance_sek: Decimal, period: SettlementPeriod, closed: Collection[SettlementPeriod]
) -> LedgerTransaction | None:
    """Pay an owner what they are owed after ``period`` closed (a negative balance) in the next open
    period; None when the owner owes or is even (an invoice, not a payout)."""
    if balance_sek >= 0:
        return None
    owner = owner_account(customer_id)
    return LedgerTransaction(
        key=f"payout/{period.code}/{customer_id}",
        kind=TxKind.PAYOUT,
        period=posting_period(period.next(), closed),
        settles=period,
        subject=owner.code,
        postings=(
            Posting(owner, -balance_sek, "payout", owner.code),
            Posting(BANK_PAYOUTS, balance_sek, "payout", owner.code),
        ),
        description=f"payout to {customer_id} of the balance after {period}",
    )


def invoice_transaction(
    customer_id: str, balance_sek: Decimal, period: SettlementPeriod, closed: Collection[SettlementPeriod]
) -> LedgerTransaction | None:
    """Invoice an owner who owes (a positive balance) after ``period`` closed, in the next open
    period: the balance moves from the owner's account to their receivable. None when the owner is
    owed or even (a payout, not an invoice)."""
    if balance_sek <= 0:
        return None
    owner = owner_account(customer_id)
    return LedgerTransaction(
        key=f"invoice/{period.code}/{customer_id}",
        kind=TxKind.INVOICE,
        period=posting_period(period.next(), closed),
        settles=period,
        subject=owner.code,
        postings=(
            Posting(receivable_account(customer_id), balance_sek, "invoice", owner.code),
            Posting(owner, -balance_sek, "invoice", owner.code),
        ),
        description=f"invoice to {customer_id} of the balance after {period}",
    )


def payment_transaction(
    customer_id: str,
    amount_sek: Decimal,
    reference: str,
    at_period: SettlementPeriod,
    closed: Collection[SettlementPeriod],
) -> LedgerTransaction:
    """An owner's payment received (bank reference ``reference``, unique): the bank account is debited,
    the owner's receivable credited, in the first open period from ``at_period``."""
    if amount_sek <= 0:
        msg = f"payment[{reference}].amount_sek: {amount_sek} must be > 0"
        raise SettlementInputError(msg)
    period = posting_period(at_period, closed)
    owner = owner_account(customer_id)
    return LedgerTransaction(
        key=f"payment/{reference}",
        kind=TxKind.PAYMENT,
        period=period,
        settles=period,
        subject=owner.code,
        postings=(
            Posting(BANK_RECEIPTS, amount_sek, "payment", owner.code),
            Posting(receivable_account(customer_id), -amount_sek, "payment", owner.code),
        ),
        description=f"payment {reference} from {customer_id}",
    )


def final_transaction(
    customer_id: str,
    balance_sek: Decimal,
    last: SettlementPeriod,
    at_period: SettlementPeriod,
    closed: Collection[SettlementPeriod],
) -> LedgerTransaction | None:
    """The final settlement at termination: the owner's whole balance after ``last`` (the month the
    service ended) paid out (owed to the owner) or invoiced (owed by the owner), keyed once per
    customer; None when the balance is even."""
    if balance_sek == 0:
        return None
    owner = owner_account(customer_id)
    if balance_sek < 0:
        kind, legs = (
            TxKind.PAYOUT,
            (
                Posting(owner, -balance_sek, "final_settlement", owner.code),
                Posting(BANK_PAYOUTS, balance_sek, "final_settlement", owner.code),
            ),
        )
    else:
        kind, legs = (
            TxKind.INVOICE,
            (
                Posting(receivable_account(customer_id), balance_sek, "final_settlement", owner.code),
                Posting(owner, -balance_sek, "final_settlement", owner.code),
            ),
        )
    period = posting_period(max(at_period, last), closed)
    return LedgerTransaction(
        key=f"final/{customer_id}",
        kind=kind,
        period=period,
        settles=last,
        subject=owner.code,
        postings=legs,
        description=f"final settlement of {customer_id} after {last} ({kind.value})",
    )
