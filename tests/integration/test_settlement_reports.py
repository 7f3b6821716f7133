"""Statements, reconciliation, BSP statements, the ledger export, billing and the journey's settlement
tasks, on SQLite and PostgreSQL, over the fleet of :mod:`tests.integration.settlement_support`
(spot 57.35 öre/kWh, Ellevio, the 2026 rules; the hand-computed January of test_settlement.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from beancount import loader
from beancount.core import data as bc
from sqlalchemy import Engine

from tests.integration.settlement_support import FixedClock, register_ramp, seed, service
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.journey_repo import SqlJourneyRepository
from v2g.adapters.db.settlement_repo import SqlSettlementSources, SqlSettlementStore, sql_settlement_tx
from v2g.journey.rules import load_rules
from v2g.services.journey.automation import ServiceContext
from v2g.services.settlement.billing import SettlementBilling
from v2g.services.settlement.journey_tasks import settlement_handlers
from v2g.services.settlement.reports import SettlementNotFoundError, SettlementReports
from v2g.services.settlement.service import SettlementConfig
from v2g.settlement.export import to_beancount, to_csv
from v2g.settlement.money import SettlementInputError
from v2g.settlement.periods import SettlementPeriod
from v2g.settlement.statement import render_statement_html
from v2g.settlement.tariffs import load_tariffs

JAN, FEB, MAR = SettlementPeriod(2026, 1), SettlementPeriod(2026, 2), SettlementPeriod(2026, 3)
D = Decimal


def reports(engine: Engine, clock: FixedClock | None = None) -> SettlementReports:
    return SettlementReports(service(engine, clock), SqlSettlementSources(engine))


def test_the_owner_statement_explains_the_posted_lines_and_compares_uncontrolled_charging(engine: Engine) -> None:
    seed(engine)
    service(engine).run_period(JAN, ["ev-1", "ev-2"])
    statement = reports(engine).owner_statement("c-1", JAN)
    [ev] = statement.evs
    lines = {x.line: x.owner_sek for x in ev.lines}
    assert (lines["energy.spot"], lines["grid.power_charge"], lines["tax.vat"]) == (
        D("-3.44"),
        D("-130.00"),
        D("-34.43"),
    )
    assert (lines["export.spot"], lines["reserve.owner_share"], lines["wear.allowance"]) == (
        D("1.72"),
        D("64.23"),
        D("0.90"),
    )
    # the statement's net is the ledger's: owner 1 owes 105.13 (test_settlement.py)
    assert statement.owner_net_sek == D("-105.13") == -statement.ledger_net_sek
    # reserve: 114.70 SEK capacity split 4 : 1 -> 91.76 to ev-1, no repayment caused by it
    assert (ev.reserve_capacity_sek, ev.reserve_repayment_sek, ev.reserve_net_sek) == (D("91.76"), D("0"), D("91.76"))
    assert (ev.aggregator_share_sek, ev.reserve_hours) == (D("27.53"), 1)
    # uncontrolled: the 6.0 kWh of the plug-in at 01:55 at 11 kW from then: 0.9167 kWh in 01:45-02:00,
    # 2.75 + 2.3333 after 02:00 -> hourly peaks 0.9167 (01 h) and 5.0833 (02 h): power charge
    # 5.0833 / 3 x 65 = 110.1383 -> 110.14; energy lines as settled (flat spot): 3.44 + 0.30 + 1.80 + 2.16;
    # VAT 25 % of 117.84 = 29.46 -> 147.30. With V2G: 172.13 - 1.72 - 0.15 = 170.26 paid, 64.23 + 0.90 earned.
    c = ev.comparison
    assert c.uncontrolled.amount(c.uncontrolled.lines[4].line) == D("110.14")
    assert (c.uncontrolled_cost_sek, c.actual_energy_cost_sek, c.v2g_income_sek) == (
        D("147.30"),
        D("170.26"),
        D("65.13"),
    )
    assert (c.actual_net_sek, c.saving_sek) == (D("105.13"), D("42.17"))
    assert ev.refund_claim_kwh == D("3.0000")
    assert ev.refund_claim_sek == D("1.08")
    html = render_statement_html(statement)
    for text in (
        "Månadsbesked januari 2026",
        "Monthly statement, January 2026",
        "Energiskatt på lagrad el (begärd, inte krediterad)",
        "Elnät: effektavgift",
        "Moms 25 %",
        "Din andel av reservintäkterna",
        "Okontrollerad laddning hade kostat",
        "147,30 kr",
        "−105,13 kr",
        "<svg",
        "settle/2026-01/ev-1/0",
    ):
        assert text in html, text
    assert statement.to_json()["evs"][0]["comparison"]["saving_sek"] == "42.17"


def test_a_statement_that_does_not_exist_names_the_customer(engine: Engine) -> None:
    seed(engine)
    with pytest.raises(SettlementNotFoundError, match="no settled statement for customer 'c-1' in 2026-01"):
        reports(engine).owner_statement("c-1", JAN)
    with pytest.raises(SettlementNotFoundError, match="no customer 'c-404'"):
        reports(engine).owner_statement("c-404", JAN)


def test_reconciliation_to_the_ore_and_the_subject_not_yet_run(engine: Engine) -> None:
    seed(engine)
    service(engine).run_period(JAN, ["ev-1"])
    half = reports(engine).reconcile(JAN)
    assert not half.balanced
    assert [(d.subject, d.allocated_sek, d.posted_sek) for d in half.differences] == [("ev-2", D("11.47"), D("0"))]
    service(engine).run_period(JAN, ["ev-2"])
    r = reports(engine).reconcile(JAN)
    # 10.00 EUR x 11.47 = 114.70 gross; 1.00 EUR = 11.47 repaid; ev-2 nets 11.47 at the default 0.70:
    # 8.029 -> 8.03, the aggregator 3.44; owners 64.23 + 8.03 = 72.26; aggregator 27.53 + 3.44 = 30.97
    assert (r.gross_sek, r.repayment_sek, r.owners_sek, r.aggregator_share_sek, r.unallocated_sek) == (
        D("114.70"), D("11.47"), D("72.26"), D("30.97"), D("0"),
    )  # fmt: skip
    assert r.gross_sek == r.owners_sek + r.aggregator_sek + r.repayment_sek
    assert (r.ledger_market_sek, r.net_sek, r.unexplained_sek, r.balanced) == (D("103.23"), D("103.23"), D("0"), True)
    [group] = r.groups
    assert (group.group_id, group.bsp_org_id, group.evs) == ("g-1", "bsp", 2)
    assert (group.capacity_sek, group.repayment_sek, group.allocated_sek, group.unallocated_sek) == (
        D("114.70"), D("11.47"), D("103.23"), D("0"),
    )  # fmt: skip
    assert group.to_json()["products"] == [
        {
            "product": "fcr_n",
            "hours": 1,
            "hours_with_repayment": 1,
            "capacity_sek": "114.70",
            "activation_sek": "0.00",
            "repayment_sek": "11.47",
            "net_sek": "103.23",
        }
    ]


def test_the_export_is_every_posting_and_beancount_reads_it_balanced(engine: Engine) -> None:
    seed(engine)
    service(engine).run_period(JAN, ["ev-1", "ev-2"])
    transactions = reports(engine).ledger_export(JAN)
    rows = list(csv.DictReader(io.StringIO(to_csv(transactions))))
    assert len(rows) == sum(len(t.postings) for t in transactions)
    assert sum(D(r["amount_sek"]) for r in rows) == 0
    assert sum(D(r["amount_sek"]) for r in rows if r["account"] == "owner:c-1") == D("105.13")
    entries, errors, _ = loader.load_string(to_beancount(transactions))
    assert errors == []
    txns = [e for e in entries if isinstance(e, bc.Transaction)]
    assert [t.meta["key"] for t in txns] == [t.key for t in transactions]
    owner = sum((p.units.number for t in txns for p in t.postings if p.account == "Assets:Owners:C-1"), D(0))
    assert owner == D("105.13")


def test_billing_invoices_each_owner_once_after_the_close_and_takes_payments(engine: Engine) -> None:
    seed(engine)
    svc = service(engine, FixedClock(datetime(2026, 2, 6, 3, tzinfo=UTC)))
    billing = SettlementBilling(svc, SqlSettlementSources(engine), close_day=5)
    with pytest.raises(SettlementInputError, match="period: 2026-01 is not closed; close it before billing"):
        billing.bill(JAN)
    day = billing.settlement_day()
    assert day.run is not None
    assert [r.status for r in day.run.results] == ["posted", "posted"]
    assert day.closed == [JAN]
    # owner 1 owes 105.13; owner 2 owes 43.04 - 8.03 = 35.01: both invoiced in February
    assert [(b.period, b.invoices, b.payouts) for b in day.billed] == [
        (JAN, ["invoice/2026-01/c-1", "invoice/2026-01/c-2"], [])
    ]
    again = billing.settlement_day()
    assert (again.closed, again.billed[0].invoices, again.billed[0].unchanged) == ([], [], 2)
    assert [r.status for r in (again.run.results if again.run else [])] == ["unchanged", "unchanged"]
    with sql_settlement_tx(engine)() as store:
        assert store.account_balance("owner:c-1") == 0
        assert store.account_balance("receivable:c-1") == D("105.13")
    paid = billing.record_payment("c-1", D("105.13"), "bg-2026-0001")
    assert billing.record_payment("c-1", D("105.13"), "bg-2026-0001") == paid  # the same reference: once
    with pytest.raises(SettlementInputError, match="payment 'bg-2026-0001' is on record with other amounts"):
        billing.record_payment("c-1", D("100.00"), "bg-2026-0001")
    with sql_settlement_tx(engine)() as store:
        assert store.account_balance("receivable:c-1") == 0
        assert store.account_balance("bank:receipts") == D("105.13")
        assert sum(store.account_balances().values()) == 0
        assert [t.kind.value for t in store.transactions_in(FEB)] == ["invoice", "invoice", "payment"]


def _ctx(conn: Any, customer: str, now: datetime, result: dict[str, Any]) -> ServiceContext:
    journey = SimpleNamespace(customer_id=customer, id=f"j-{customer}")
    task = SimpleNamespace(result=result)
    return ServiceContext(journey, task, SqlJourneyRepository(conn), now, load_rules())  # type: ignore[arg-type]


def test_final_settlement_waits_for_its_month_then_settles_the_whole_balance_once(engine: Engine) -> None:
    seed(engine)
    handlers = settlement_handlers(
        lambda ctx: SqlSettlementStore(ctx.repo.conn),  # type: ignore[attr-defined]
        load_tariffs(),
        SettlementConfig({"org-dso-1": "ellevio"}),
    )
    final, payments = handlers["final_settlement"], handlers["handle_payments"]
    in_january = datetime(2026, 1, 20, tzinfo=UTC)
    with engine.begin() as conn:
        ready = payments(_ctx(conn, "c-1", in_january, {}))
        waiting = final(_ctx(conn, "c-1", in_january, {}))
    assert ready.completed
    assert ready.result["dso_tariffs"] == {"s-1": "ellevio"}
    assert ready.result["owner_revenue_share"] == "0.70"
    assert (waiting.completed, waiting.result) == (False, {"final_period": "2026-01"})
    assert waiting.reason == "the final settlement follows the end of 2026-01 (the month the service ends)"
    in_february = datetime(2026, 2, 2, tzinfo=UTC)
    with engine.begin() as conn:
        unsettled = final(_ctx(conn, "c-1", in_february, {"final_period": "2026-01"}))
    assert unsettled.reason == "2026-01 is not settled yet for ev-1 (the daily settlement job runs it)"
    service(engine).run_period(JAN, ["ev-1", "ev-2"])
    with engine.begin() as conn:
        done = final(_ctx(conn, "c-1", in_february, {"final_period": "2026-01"}))
        again = final(_ctx(conn, "c-1", in_february, {"final_period": "2026-01"}))
    assert (done.completed, done.outcome, done.result["transaction"], done.result["balance_sek"]) == (
        True, "invoice", "final/c-1", "105.13",
    )  # fmt: skip
    assert (again.completed, again.result["transaction"]) == (True, "final/c-1")
    with sql_settlement_tx(engine)() as store:
        assert store.account_balance("owner:c-1") == 0
        [tx] = [t for t in store.transactions_in(FEB) if t.key == "final/c-1"]
    assert tx.settles == JAN
    # the monthly billing leaves a customer settled finally alone
    svc = service(engine, FixedClock(datetime(2026, 2, 6, 3, tzinfo=UTC)))
    day = SettlementBilling(svc, SqlSettlementSources(engine)).settlement_day()
    assert day.billed[0].invoices == ["invoice/2026-01/c-2"]


def test_late_data_after_the_close_is_corrected_in_the_next_month_and_billed_with_it(engine: Engine) -> None:
    seed(engine)
    clock = FixedClock(datetime(2026, 2, 6, 3, tzinfo=UTC))
    billing = SettlementBilling(service(engine, clock), SqlSettlementSources(engine))
    billing.service.clock = clock
    first = billing.settlement_day()
    assert first.closed == [JAN]
    # readings of 20 January arrive on 10 February: ev-2 charged 2.0 kWh more (test_settlement.py: the
    # correction is +1.15 spot, +43.33 power charge, ...)
    late = register_ramp("cp-2", "Energy.Active.Import.Register", datetime(2026, 1, 20, 10, tzinfo=UTC), 20, 21.5, 0.1)
    SqlDeviceStore(engine).write_batch(late, [], datetime(2026, 2, 10, tzinfo=UTC))
    clock.at = datetime(2026, 2, 11, 3, tzinfo=UTC)
    day = billing.settlement_day()
    assert day.run is not None
    assert [(r.subject, r.status, r.kind, r.period) for r in day.run.results] == [
        ("ev-1", "unchanged", None, None),
        ("ev-2", "posted", "correction", "2026-02"),
    ]
    assert [b.invoices for b in day.billed] == [[]]  # January was billed; the correction waits for February
    statement = reports(engine, clock).owner_statement("c-2", JAN)
    kinds = [(x.kind, x.period) for x in statement.ledger]
    assert ("correction", "2026-02") in kinds
    assert statement.owner_net_sek == -statement.ledger_net_sek  # the statement shows the corrected month
    with sql_settlement_tx(engine)() as store:
        correction = sum((p.amount_sek for p in store.account_postings("owner:c-2") if p.kind == "correction"), D(0))
    clock.at = datetime(2026, 3, 6, 3, tzinfo=UTC)
    march = billing.settlement_day()
    assert march.closed == [FEB]
    assert [b.invoices for b in march.billed if b.period == FEB] == [["invoice/2026-02/c-2"]]
    with sql_settlement_tx(engine)() as store:
        [invoice] = [t for t in store.transactions_in(MAR) if t.key == "invoice/2026-02/c-2"]
        assert store.account_balance("owner:c-2") == 0
    assert invoice.postings[0].amount_sek == correction  # February's invoice is January's correction
