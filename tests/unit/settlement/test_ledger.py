"""The ledger: balanced immutable transactions, keys, corrections into the next open period, close, payout."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from v2g.settlement.economics import Line, LineAmount
from v2g.settlement.ledger import (
    MARKET_RESERVE,
    SUPPLIER_ENERGY,
    TAX_VAT,
    Account,
    AccountKind,
    LedgerTransaction,
    Posting,
    TxKind,
    close_period,
    difference,
    dso_account,
    line_postings,
    owner_account,
    payout_transaction,
    posting_period,
    settlement_transaction,
    trial_balance,
)
from v2g.settlement.money import SettlementInputError
from v2g.settlement.periods import SettlementPeriod

JAN, FEB, MAR = SettlementPeriod(2026, 1), SettlementPeriod(2026, 2), SettlementPeriod(2026, 3)
OWNER = owner_account("c-1")
DSO = dso_account("ellevio")


def lines(spot: str, vat: str, reserve: str) -> list[LineAmount]:
    return [
        LineAmount(Line.ENERGY_SPOT, Decimal(spot)),
        LineAmount(Line.VAT, Decimal(vat)),
        LineAmount(Line.RESERVE_OWNER, Decimal(reserve)),
    ]


def test_lines_become_balanced_postings_payer_debited_payee_credited() -> None:
    postings = line_postings(lines("4.10", "1.03", "70.01"), owner=OWNER, dso=DSO, subject="ev-1")
    assert [(p.account.code, p.amount_sek) for p in postings] == [
        ("owner:c-1", Decimal("4.10")),  # the owner pays the supplier for energy
        ("supplier:energy", Decimal("-4.10")),
        ("owner:c-1", Decimal("1.03")),  # and the tax authority VAT
        ("tax:vat", Decimal("-1.03")),
        ("market:reserve", Decimal("70.01")),  # the market pays the owner their reserve share
        ("owner:c-1", Decimal("-70.01")),
    ]
    # the owner is owed 70.01 - 4.10 - 1.03 = 64.88 (a credit balance)
    assert trial_balance(postings)["owner:c-1"] == Decimal("-64.88")
    tx = settlement_transaction(settles=JAN, subject="ev-1", target=postings, posted=[], posted_count=0, closed=())
    assert tx is not None
    assert (tx.key, tx.kind, tx.period) == ("settle/2026-01/ev-1/0", TxKind.SETTLEMENT, JAN)
    assert sum(p.amount_sek for p in tx.postings) == 0


def test_an_unbalanced_transaction_is_refused() -> None:
    with pytest.raises(
        SettlementInputError, match=r"transaction\[k\]\.postings: debits and credits differ by 0.01 SEK"
    ):
        LedgerTransaction(
            "k",
            TxKind.SETTLEMENT,
            JAN,
            JAN,
            "ev-1",
            (Posting(OWNER, Decimal("1.00"), "x", "ev-1"), Posting(TAX_VAT, Decimal("-0.99"), "x", "ev-1")),
        )
    with pytest.raises(SettlementInputError, match="not a whole number of öre"):
        Posting(OWNER, Decimal("0.005"), "x", "ev-1")
    with pytest.raises(
        SettlementInputError, match=r"transaction\[k\]\.period: 2026-01 is before the settled period 2026-02"
    ):
        LedgerTransaction(
            "k",
            TxKind.CORRECTION,
            JAN,
            FEB,
            "ev-1",
            (Posting(OWNER, Decimal("1"), "x", "s"), Posting(TAX_VAT, Decimal("-1"), "x", "s")),
        )


def test_a_rerun_with_the_same_data_posts_nothing() -> None:
    target = line_postings(lines("4.10", "1.03", "70.01"), owner=OWNER, dso=DSO, subject="ev-1")
    assert (
        settlement_transaction(settles=JAN, subject="ev-1", target=target, posted=target, posted_count=1, closed=())
        is None
    )


def test_late_data_gives_a_correction_in_the_next_open_period() -> None:
    first = line_postings(lines("4.10", "1.03", "70.01"), owner=OWNER, dso=DSO, subject="ev-1")
    late = line_postings(lines("4.60", "1.15", "70.01"), owner=OWNER, dso=DSO, subject="ev-1")
    tx = settlement_transaction(settles=JAN, subject="ev-1", target=late, posted=first, posted_count=1, closed={JAN})
    assert tx is not None
    # January is closed: the difference (0.50 energy, 0.12 VAT) is posted in February, key n = 1
    assert (tx.key, tx.kind, tx.period, tx.settles) == ("settle/2026-01/ev-1/1", TxKind.CORRECTION, FEB, JAN)
    assert "posted in 2026-02: 2026-01 is closed" in tx.description
    assert sorted((p.account.code, p.line, p.amount_sek) for p in tx.postings) == [
        ("owner:c-1", "energy.spot", Decimal("0.50")),
        ("owner:c-1", "tax.vat", Decimal("0.12")),
        ("supplier:energy", "energy.spot", Decimal("-0.50")),
        ("tax:vat", "tax.vat", Decimal("-0.12")),
    ]
    # after the correction the subject's postings net to the new target
    assert difference(late, [*first, *tx.postings]) == []


def test_posting_period_skips_every_closed_month() -> None:
    assert posting_period(JAN, set()) == JAN
    assert posting_period(JAN, {JAN, FEB}) == MAR
    assert posting_period(SettlementPeriod(2025, 12), {SettlementPeriod(2025, 12)}) == JAN


def test_close_in_order_with_a_zero_trial_balance_and_pay_out_what_the_owner_is_owed() -> None:
    at = datetime(2026, 2, 3, 8, tzinfo=UTC)
    postings = line_postings(lines("4.10", "1.03", "70.01"), owner=OWNER, dso=DSO, subject="ev-1")
    tx = settlement_transaction(settles=FEB, subject="ev-1", target=postings, posted=[], posted_count=0, closed=())
    assert tx is not None
    with pytest.raises(SettlementInputError, match="period: close 2026-01 first"):
        close_period(FEB, [tx], set(), at, earlier_open_with_postings={JAN})
    closed = close_period(FEB, [tx], {JAN}, at, earlier_open_with_postings={JAN})
    assert closed.trial_balance == {
        "market:reserve": Decimal("70.01"),
        "owner:c-1": Decimal("-64.88"),
        "supplier:energy": Decimal("-4.10"),
        "tax:vat": Decimal("-1.03"),
    }
    with pytest.raises(SettlementInputError, match="period: 2026-02 is already closed"):
        close_period(FEB, [tx], {JAN, FEB}, at)
    payout = payout_transaction("c-1", Decimal("-64.88"), FEB, {JAN, FEB})
    assert payout is not None
    assert (payout.key, payout.period) == ("payout/2026-02/c-1", MAR)
    assert "owner:c-1" not in trial_balance([*postings, *payout.postings])  # settled to 0
    assert payout_transaction("c-1", Decimal("12.00"), FEB, {FEB}) is None  # the owner owes: an invoice, no payout


def test_accounts_parse_and_print() -> None:
    assert Account.parse("owner:c-1") == OWNER
    assert str(MARKET_RESERVE) == "market:reserve"
    assert SUPPLIER_ENERGY.kind is AccountKind.SUPPLIER
    with pytest.raises(SettlementInputError, match="'nobody:x' is not kind:name"):
        Account.parse("nobody:x")
    with pytest.raises(SettlementInputError, match=r"account\.name"):
        Account(AccountKind.OWNER, "a:b")
