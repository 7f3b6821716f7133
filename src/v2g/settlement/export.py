"""The ledger for accounting: a period's transactions as CSV (one row per posting) or as a
Beancount file (one transaction per ledger transaction, its idempotency key as a link).

Beancount accounts follow the ledger's accounts by kind: what the platform is owed or holds is an
asset (owners' balances, the market's money due, receivables, bank accounts), what it owes others
a liability (supplier, DSOs, taxes), the aggregator's share income and its wear allowance an
expense. Each transaction is dated on the last day of the period it is posted in (the accounting
month), so a period's file balances on its own. Amounts are the ledger's öre-exact SEK.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

from v2g.settlement.ledger import Account, AccountKind, LedgerTransaction

CSV_COLUMNS = (
    "period",
    "settles",
    "key",
    "kind",
    "subject",
    "description",
    "seq",
    "account",
    "line",
    "posting_subject",
    "amount_sek",
)

_ROOTS = {
    AccountKind.OWNER: "Assets:Owners",
    AccountKind.MARKET: "Assets:Market",
    AccountKind.RECEIVABLE: "Assets:Receivable",
    AccountKind.BANK: "Assets:Bank",
    AccountKind.SUPPLIER: "Liabilities:Supplier",
    AccountKind.DSO: "Liabilities:Dso",
    AccountKind.TAX: "Liabilities:Tax",
}
_AGGREGATOR = {"wear_allowance": "Expenses:Aggregator:WearAllowance"}
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9-]")


def to_csv(transactions: Sequence[LedgerTransaction]) -> str:
    """One row per posting, amounts as SEK with two decimals (debit > 0, credit < 0)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for tx in transactions:
        for seq, p in enumerate(tx.postings):
            writer.writerow(
                [
                    tx.period.code,
                    tx.settles.code,
                    tx.key,
                    tx.kind.value,
                    tx.subject,
                    tx.description,
                    seq,
                    p.account.code,
                    p.line,
                    p.subject,
                    f"{p.amount_sek:.2f}",
                ]
            )
    return out.getvalue()


def beancount_account(account: Account) -> str:
    """The Beancount name of a ledger account (``owner:c-17`` -> ``Assets:Owners:C-17``)."""
    if account.kind is AccountKind.AGGREGATOR:
        if account.name in _AGGREGATOR:
            return _AGGREGATOR[account.name]
        return "Income:Aggregator:" + _component(account.name)
    return f"{_ROOTS[account.kind]}:{_component(account.name)}"


def _component(name: str) -> str:
    """A Beancount account component: letters, digits and dashes, starting with a capital or digit."""
    parts = [p for p in _NOT_ALLOWED.split(name) if p]
    text = "-".join(p[:1].upper() + p[1:] for p in parts) or "X"
    return text if text[0].isalnum() else "X" + text


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_beancount(transactions: Sequence[LedgerTransaction], *, title: str = "V2G settlement ledger") -> str:
    """A Beancount file: options, an ``open`` per account, one transaction per ledger transaction."""
    accounts = sorted({beancount_account(p.account) for tx in transactions for p in tx.postings})
    first = min((tx.period.first_day for tx in transactions), default=None)
    lines = [f"option {_quoted('title')} {_quoted(title)}", 'option "operating_currency" "SEK"', ""]
    if first is not None:
        lines += [f"{first.isoformat()} open {a} SEK" for a in accounts]
        lines.append("")
    for tx in transactions:
        link = "^" + re.sub(r"[^A-Za-z0-9_./-]", "-", tx.key)
        narration = f"{tx.kind.value}: {tx.description}" if tx.description else tx.kind.value
        lines.append(f"{tx.period.last_day.isoformat()} * {_quoted(tx.subject)} {_quoted(narration)} {link}")
        lines.append(f"  key: {_quoted(tx.key)}")
        lines.append(f"  settles: {_quoted(tx.settles.code)}")
        for p in tx.postings:
            lines.append(f"  {beancount_account(p.account):<52} {p.amount_sek:>14.2f} SEK")
            lines.append(f"    line: {_quoted(p.line)}")
        lines.append("")
    return "\n".join(lines)
