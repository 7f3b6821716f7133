"""`v2g settle run|close|bill|billing|payment|statement|reconcile|bsp|export`: the month's settlement
from the command line."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

from v2g.adapters.db.migrate import SchemaNotCurrentError
from v2g.bootstrap import Platform, bootstrap
from v2g.cli.pdf import PdfError, html_to_pdf
from v2g.services.settlement.billing import SettlementBilling
from v2g.services.settlement.reports import SettlementNotFoundError, SettlementReports
from v2g.services.settlement.service import SettlementService
from v2g.settlement.export import to_beancount, to_csv
from v2g.settlement.money import SettlementInputError
from v2g.settlement.periods import SettlementPeriod
from v2g.settlement.statement import render_statement_html

app = typer.Typer(
    help="Settlement: run, close and bill a month; statements, reconciliation, export.", no_args_is_help=True
)

Period = Annotated[str, typer.Option("--period", help="The month, YYYY-MM (Swedish local time).")]


@contextmanager
def _platform() -> Iterator[Platform]:
    """The platform from the settings; errors as one line and an exit code (1 input, 2 setup)."""
    try:
        platform = bootstrap()
    except SchemaNotCurrentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    try:
        yield platform
    except (SettlementInputError, SettlementNotFoundError, PdfError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    finally:
        platform.engine.dispose()


def _period(code: str, option: str = "--period") -> SettlementPeriod:
    try:
        return SettlementPeriod.parse(code, field=option)
    except SettlementInputError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from exc


def _parts(platform: Platform) -> tuple[SettlementService, SettlementReports, SettlementBilling]:
    if platform.settlement is None or platform.settlement_reports is None or platform.settlement_billing is None:
        typer.echo("error: the platform has no settlement (bootstrap builds it)", err=True)  # pragma: no cover
        raise typer.Exit(code=2)
    return platform.settlement, platform.settlement_reports, platform.settlement_billing


@app.command("run")
def run(
    period: Period,
    ev: Annotated[list[str] | None, typer.Option("--ev", help="Only these EVs (repeat); default every EV.")] = None,
) -> None:
    """Settle a month that has ended, exactly once per EV (a re-run posts only corrections)."""
    month = _period(period)
    with _platform() as platform:
        service, _, billing = _parts(platform)
        ev_ids = list(ev) if ev else billing.directory.all_ev_ids()
        report = service.run_period(month, ev_ids)
    for r in report.results:
        where = f" {r.key} ({r.kind}, posted in {r.period})" if r.key else ""
        typer.echo(f"{r.subject:<24} {r.status}{where}{': ' + r.error if r.error else ''}")
    typer.echo(f"{month}: {len(report.posted)} posted, {len(report.unchanged)} unchanged, {len(report.failed)} failed")
    if report.failed:
        raise typer.Exit(code=1)


@app.command("close")
def close(period: Period) -> None:
    """Close a month: nothing more is posted in it (corrections go to the next open month)."""
    month = _period(period)
    with _platform() as platform:
        service, _, _ = _parts(platform)
        done = service.close_period(month)
    typer.echo(f"closed {done.period}: {done.transactions} transactions, trial balance sums to 0")


@app.command("bill")
def bill(period: Period) -> None:
    """Pay out or invoice every owner's balance after a closed month (once per owner and month)."""
    month = _period(period)
    with _platform() as platform:
        _, _, billing = _parts(platform)
        report = billing.bill(month)
    for key in (*report.payouts, *report.invoices):
        typer.echo(key)
    typer.echo(f"{month}: {len(report.payouts)} payouts, {len(report.invoices)} invoices, {report.unchanged} unchanged")


@app.command("billing")
def billing(
    period: Period,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the list as CSV (for the bank and the invoice run).", dir_okay=False),
    ] = None,
) -> None:
    """The payouts and invoices billed for a closed month: customer, amount and reference."""
    month = _period(period)
    with _platform() as platform:
        _, _, billing_ = _parts(platform)
        items = billing_.billing_items(month)
    if out is not None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["kind", "customer_id", "customer_name", "amount_sek", "reference", "posted_in"])
        for i in items:
            writer.writerow([i.kind.value, i.customer_id, i.customer_name, i.amount_sek, i.key, i.posted_in.code])
        out.write_text(buffer.getvalue(), encoding="utf-8")
    for i in items:
        typer.echo(f"{i.kind.value:<8} {i.customer_id:<16} {i.amount_sek:>12.2f} SEK  {i.key}")
    payouts = sum((i.amount_sek for i in items if i.kind.value == "payout"), Decimal(0))
    invoiced = sum((i.amount_sek for i in items if i.kind.value == "invoice"), Decimal(0))
    typer.echo(f"{month}: payouts {payouts:.2f} SEK, invoices {invoiced:.2f} SEK" + (f"; wrote {out}" if out else ""))


@app.command("payment")
def payment(
    customer: Annotated[str, typer.Option("--customer", help="The customer who paid.")],
    amount_sek: Annotated[str, typer.Option("--amount-sek", help="The amount received, SEK to the öre.")],
    reference: Annotated[str, typer.Option("--reference", help="The bank's reference of the payment (unique).")],
) -> None:
    """Record an owner's payment of an invoice (the same reference again posts nothing)."""
    msg = f"{amount_sek!r}: not an amount in SEK"
    try:
        amount = Decimal(amount_sek)
    except InvalidOperation as exc:
        raise typer.BadParameter(msg, param_hint="--amount-sek") from exc
    if not amount.is_finite():
        raise typer.BadParameter(msg, param_hint="--amount-sek")
    with _platform() as platform:
        _, _, billing_ = _parts(platform)
        tx = billing_.record_payment(customer, amount, reference)
    typer.echo(f"{tx.key}: {amount:.2f} SEK from {customer} posted in {tx.period}")


@app.command("statement")
def statement(
    customer: Annotated[str, typer.Option("--customer", help="The customer id.")],
    month: Annotated[str, typer.Option("--month", help="The month, YYYY-MM.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write it: a .html or .pdf file.", dir_okay=False)],
) -> None:
    """The owner's monthly statement as HTML or PDF (Swedish and English)."""
    suffix = out.suffix.lower()
    if suffix not in (".html", ".pdf"):
        msg = f"{out.name}: must end in .html or .pdf"
        raise typer.BadParameter(msg, param_hint="--out")
    period = _period(month, "--month")
    with _platform() as platform:
        _, reports, _ = _parts(platform)
        html = render_statement_html(reports.owner_statement(customer, period))
        if suffix == ".pdf":
            html_to_pdf(html, out)
        else:
            out.write_text(html, encoding="utf-8")
    typer.echo(f"wrote {out}")


@app.command("reconcile")
def reconcile(period: Period, as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Market revenue against owner allocations, the aggregator's share and repayments, to the öre.
    Exit code 3 when they do not agree."""
    month = _period(period)
    with _platform() as platform:
        _, reports, _ = _parts(platform)
        r = reports.reconcile(month)
    if as_json:
        typer.echo(json.dumps(r.to_json(), indent=2))
    else:
        rows = [
            ("market gross (capacity + activation)", r.gross_sek),
            ("  repayments to the market", r.repayment_sek),
            ("  owners' shares", r.owners_sek),
            ("  aggregator's share", r.aggregator_share_sek),
            ("  unallocated (no EV earned it)", r.unallocated_sek),
            ("unexplained", r.unexplained_sek),
            ("market net", r.net_sek),
            ("ledger: drawn from market:reserve", r.ledger_market_sek),
        ]
        typer.echo(f"reconciliation {month} (SEK)")
        for label, amount in rows:
            typer.echo(f"  {label:<40} {amount:>14.2f}")
        for d in r.differences:
            typer.echo(f"  difference {d.subject}: allocated {d.allocated_sek} posted {d.posted_sek}")
        typer.echo("balanced" if r.balanced else "NOT balanced")
    if not r.balanced:
        raise typer.Exit(code=3)


@app.command("bsp")
def bsp(period: Period) -> None:
    """The BSP statement of each bidding group for a month, as JSON."""
    month = _period(period)
    with _platform() as platform:
        _, reports, _ = _parts(platform)
        groups = reports.bsp_statements(month)
    typer.echo(json.dumps([g.to_json() for g in groups], indent=2))


@app.command("export")
def export(
    period: Period,
    fmt: Annotated[str, typer.Option("--format", help="csv or beancount.")],
    out: Annotated[Path, typer.Option("--out", help="The file to write.", dir_okay=False)],
) -> None:
    """Every transaction posted in a month, for accounting."""
    if fmt not in ("csv", "beancount"):
        msg = f"{fmt!r}: must be csv or beancount"
        raise typer.BadParameter(msg, param_hint="--format")
    month = _period(period)
    with _platform() as platform:
        _, reports, _ = _parts(platform)
        transactions = reports.ledger_export(month)
    text = to_csv(transactions) if fmt == "csv" else to_beancount(transactions, title=f"V2G settlement {month}")
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}: {len(transactions)} transactions")
