"""`v2g settle` on a real database (SQLite and PostgreSQL): run, reconcile, statement, export, close, bill.

The platform is built from the settings as in production (recorded day-ahead prices), so the energy
amounts follow the recorded prices; the checks are those that do not depend on them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.integration.settlement_support import seed
from v2g.cli import app
from v2g.settlement.periods import SettlementPeriod


@pytest.fixture
def cli_env(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    seed(engine)
    monkeypatch.setenv("V2G_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("V2G_SETTLEMENT_DSO_TARIFFS", json.dumps({"org-dso-1": "ellevio"}))
    return engine


def test_settle_run_reconcile_statement_export_close_and_bill(cli_env: Engine, tmp_path: Path) -> None:
    runner = CliRunner()
    early = runner.invoke(app, ["settle", "reconcile", "--period", "2026-01"])
    assert early.exit_code == 3, early.output  # nothing posted yet: the market money is not in the ledger
    assert "NOT balanced" in early.output
    run = runner.invoke(app, ["settle", "run", "--period", "2026-01"])
    assert run.exit_code == 0, run.output
    assert "ev-1                     posted settle/2026-01/ev-1/0 (settlement, posted in 2026-01)" in run.output
    assert run.output.strip().endswith("2026-01: 2 posted, 0 unchanged, 0 failed")
    again = runner.invoke(app, ["settle", "run", "--period", "2026-01"])
    assert again.output.strip().endswith("2026-01: 0 posted, 2 unchanged, 0 failed")

    rec = runner.invoke(app, ["settle", "reconcile", "--period", "2026-01", "--json"])
    assert rec.exit_code == 0, rec.output
    doc = json.loads(rec.output)
    assert (doc["balanced"], doc["gross_sek"], doc["repayment_sek"], doc["unexplained_sek"]) == (
        True, "114.70", "11.47", "0.00",
    )  # fmt: skip
    assert Decimal(doc["owners_sek"]) + Decimal(doc["aggregator_share_sek"]) == Decimal("103.23")

    html = tmp_path / "c-1.html"
    out = runner.invoke(app, ["settle", "statement", "--customer", "c-1", "--month", "2026-01", "--out", str(html)])
    assert out.exit_code == 0, out.output
    text = html.read_text(encoding="utf-8")
    assert "Månadsbesked januari 2026" in text
    assert "−130,00 kr" in text  # the power charge: 2 kW x 65 SEK/kW, whatever the prices
    missing = runner.invoke(app, ["settle", "statement", "--customer", "c-9", "--month", "2026-01", "--out", str(html)])
    assert (missing.exit_code, missing.output.strip()) == (1, "error: no customer 'c-9'")
    bad = runner.invoke(app, ["settle", "statement", "--customer", "c-1", "--month", "2026-01", "--out", "x.txt"])
    assert bad.exit_code == 2
    assert "must end in .html or .pdf" in bad.output

    ledger = tmp_path / "2026-01.beancount"
    exp = runner.invoke(app, ["settle", "export", "--period", "2026-01", "--format", "beancount", "--out", str(ledger)])
    assert exp.exit_code == 0, exp.output
    assert "2 transactions" in exp.output
    _, errors, _ = loader.load_file(str(ledger))
    assert errors == []
    table = tmp_path / "2026-01.csv"
    assert (
        runner.invoke(
            app, ["settle", "export", "--period", "2026-01", "--format", "csv", "--out", str(table)]
        ).exit_code
        == 0
    )
    assert table.read_text(encoding="utf-8").startswith("period,settles,key,kind,subject,description,seq,account")

    closed = runner.invoke(app, ["settle", "close", "--period", "2026-01"])
    assert closed.output.strip() == "closed 2026-01: 2 transactions, trial balance sums to 0"
    billed = runner.invoke(app, ["settle", "bill", "--period", "2026-01"])
    assert billed.exit_code == 0, billed.output
    assert "invoice/2026-01/c-1" in billed.output
    assert (
        runner.invoke(app, ["settle", "bill", "--period", "2026-01"])
        .output.strip()
        .endswith("0 payouts, 0 invoices, 2 unchanged")
    )
    # the billing list for the bank and the invoice run, on screen and as CSV; c-1 owes the month
    listing = tmp_path / "billing.csv"
    listed = runner.invoke(app, ["settle", "billing", "--period", "2026-01", "--out", str(listing)])
    assert listed.exit_code == 0, listed.output
    rows = listing.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "kind,customer_id,customer_name,amount_sek,reference,posted_in"
    invoice = next(r.split(",") for r in rows[1:] if r.startswith("invoice,c-1,"))
    owed = Decimal(invoice[3])
    assert owed > 0
    assert (invoice[4], invoice[5]) == ("invoice/2026-01/c-1", "2026-02")
    assert "invoice  c-1" in listed.output
    # the owner pays: the payment clears the receivable; the bank's reference makes it once only
    paid = ["settle", "payment", "--customer", "c-1", "--amount-sek", str(owed), "--reference", "BG-0001"]
    first = runner.invoke(app, paid)
    assert first.exit_code == 0, first.output
    today = SettlementPeriod.containing(datetime.now(UTC))  # a payment is posted in the month it arrives
    assert first.output.strip() == f"payment/BG-0001: {owed:.2f} SEK from c-1 posted in {today}"
    assert runner.invoke(app, paid).output == first.output  # the same payment again posts nothing
    other = runner.invoke(app, [*paid[:5], "1.00", *paid[6:]])
    assert other.exit_code == 1
    assert "reference: payment 'BG-0001' is on record with other amounts or customer" in other.output
    unknown = runner.invoke(app, ["settle", "payment", "--customer", "c-9", "--amount-sek", "5", "--reference", "X"])
    assert (unknown.exit_code, unknown.output.strip()) == (1, "error: customer 'c-9' not found")
    odd = runner.invoke(app, [*paid[:5], "12.345", *paid[6:]])
    assert "amount_sek: 12.345 is not a whole number of öre" in odd.output
    assert runner.invoke(app, [*paid[:5], "ten", *paid[6:]]).exit_code == 2
    books = runner.invoke(app, ["settle", "export", "--period", str(today), "--format", "csv", "--out", str(table)])
    assert books.exit_code == 0, books.output
    assert "payment/BG-0001" in table.read_text(encoding="utf-8")

    bsp = json.loads(runner.invoke(app, ["settle", "bsp", "--period", "2026-01"]).output)
    assert [(g["group_id"], g["net_sek"]) for g in bsp] == [("g-1", "103.23")]
    wrong = runner.invoke(app, ["settle", "run", "--period", "2026-13"])
    assert wrong.exit_code == 2
    assert "is not 1-12" in wrong.output
