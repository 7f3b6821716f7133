"""The settlement API: owners read their own statements and ledger, aggregators those of the customers
they serve and the operator's books, BSPs their own groups' statements; 403 names the roles allowed,
404 names the id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from beancount import loader
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.integration.settlement_support import register_ramp
from tests.journey_support import PASSWORD, TEST_BLUEPRINT, World, seed_world, signup_body
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.market_repo import SqlMarketStore
from v2g.api.app import create_app
from v2g.bootstrap import Platform, bootstrap
from v2g.config import Settings
from v2g.devices import TransactionEventIn
from v2g.dispatch.verification import DeliveryRecord
from v2g.fleet.model import PriceArea
from v2g.markets.bids import BiddingGroup, ControlMode
from v2g.markets.rules import Product
from v2g.services.actors.ports import SYSTEM
from v2g.settlement.periods import SettlementPeriod

OCTOBER = SettlementPeriod(2026, 10)
NIGHT = datetime(2026, 10, 14, 1, tzinfo=UTC)


@pytest.fixture
def world(engine: Engine) -> World:
    return seed_world(engine)


@pytest.fixture
def platform(world: World) -> Platform:
    settings = Settings(
        database_url=str(world.engine.url),
        blueprint_path=TEST_BLUEPRINT,
        settlement_dso_tariffs={"org-dso": "ellevio"},
        settlement_job=False,
    )
    return bootstrap(settings, engine=world.engine, clock=world.clock, journeys=world.service)


@pytest.fixture
def client(platform: Platform, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(platform)) as test_client:
        agg, agg2 = world.bearer("aggregator"), world.bearer("aggregator2")
        assert test_client.post("/api/v1/customers", headers=agg, json=signup_body("c1")).status_code == 201
        assert test_client.post("/api/v1/customers", headers=agg2, json=signup_body("c2")).status_code == 201
        _october(world, platform)
        yield test_client


def _october(world: World, platform: Platform) -> None:
    """c1's car charges 3.0 kWh one October night; a reserve hour for the BSP's group, one for another's."""
    imp = "Energy.Active.Import.Register"
    samples = [*register_ramp("CP-c1", imp, NIGHT, 30, 10.0, 0.1), *register_ramp("CP-c2", imp, NIGHT, 10, 5.0, 0.1)]
    events = [
        TransactionEventIn("CP-c1", "t-1", 0, "Started", NIGHT, meter_wh=10_000.0),
        TransactionEventIn("CP-c1", "t-1", 1, "Ended", NIGHT + timedelta(minutes=30), meter_wh=13_000.0),
    ]
    SqlDeviceStore(world.engine).write_batch(samples, events, NIGHT)
    with world.engine.begin() as conn:
        store = SqlMarketStore(conn)
        store.add_group(BiddingGroup("own", "org-bsp", PriceArea.SE3, ControlMode.LOCAL, {}, ("veh-c1",)), NIGHT)
        store.add_group(BiddingGroup("theirs", "org-other", PriceArea.SE3, ControlMode.LOCAL), NIGHT)
        for group in ("own", "theirs"):
            store.save_delivery(
                [DeliveryRecord(group, Product.FCR_N, NIGHT, 0.1, 0, 0, 1.0, 0, 0, Decimal("2.00"), Decimal("0"), {})]
            )
    assert platform.settlement is not None
    report = platform.settlement.run_period(OCTOBER, ["veh-c1", "veh-c2"])
    assert [r.status for r in report.results] == ["posted", "posted", "posted", "posted"], report.results


def _owner(client: TestClient, cid: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/login", json={"username": f"owner-{cid}", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def test_an_owner_reads_only_their_own_statement_and_ledger(client: TestClient) -> None:
    owner = _owner(client, "c1")
    answer = client.get("/api/v1/settlement/statements/c1/2026-10", headers=owner)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert [ev["ev_id"] for ev in doc["evs"]] == ["veh-c1"]
    assert doc["evs"][0]["import_kwh"] == "3.0000"
    assert doc["evs"][0]["energy_tax_refund_claim"]["credited"] is False
    assert {x["line"] for x in doc["evs"][0]["lines"]} >= {"energy.spot", "tax.vat", "grid.power_charge"}
    page = client.get("/api/v1/settlement/statements/c1/2026-10?format=html", headers=owner)
    assert page.headers["content-type"].startswith("text/html")
    assert "Månadsbesked oktober 2026" in page.text
    other = client.get("/api/v1/settlement/statements/c2/2026-10", headers=owner)
    assert (other.status_code, other.json()["detail"]) == (404, "statement for 2026-10 of customer 'c2' not found")
    ledger = client.get("/api/v1/settlement/ledger/c1?period=2026-10", headers=owner).json()
    assert {x["key"] for x in ledger} == {"settle/2026-10/veh-c1/0"}
    assert Decimal(sum(Decimal(x["amount_sek"]) for x in ledger)) == -Decimal(doc["owner_net_sek"])
    assert client.get("/api/v1/settlement/ledger/c2", headers=owner).status_code == 404
    for path in ("reconciliation", "export", "bsp-statements"):
        refused = client.get(f"/api/v1/settlement/periods/2026-10/{path}", headers=owner)
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith("role 'owner' may not read")


def test_aggregators_read_the_customers_they_serve_and_the_books(client: TestClient, world: World) -> None:
    agg, agg2 = world.bearer("aggregator"), world.bearer("aggregator2")
    assert client.get("/api/v1/settlement/statements/c1/2026-10", headers=agg).status_code == 200
    assert client.get("/api/v1/settlement/statements/c1/2026-10", headers=agg2).status_code == 404
    assert client.get("/api/v1/settlement/statements/c2/2026-10", headers=agg2).status_code == 200
    unknown = client.get("/api/v1/settlement/statements/c-404/2026-10", headers=agg)
    assert (unknown.status_code, unknown.json()["detail"]) == (
        404,
        "statement for 2026-10 of customer 'c-404' not found",
    )
    none_yet = client.get("/api/v1/settlement/statements/c1/2026-09", headers=agg)
    assert (none_yet.status_code, none_yet.json()["detail"]) == (
        404,
        "statement of customer 'c1' for 2026-09 not found",
    )
    bad = client.get("/api/v1/settlement/statements/c1/2026-13", headers=agg)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["path", "period"]
    rec = client.get("/api/v1/settlement/periods/2026-10/reconciliation", headers=agg).json()
    # 2 x 2.00 EUR x 11.47 = 45.88 SEK; nobody's plan held the reserve: unallocated, kept per group
    assert (rec["balanced"], rec["gross_sek"], rec["unallocated_sek"], rec["owners_sek"]) == (
        True, "45.88", "45.88", "0.00",
    )  # fmt: skip
    text = client.get("/api/v1/settlement/periods/2026-10/export?format=beancount", headers=agg).text
    _, errors, _ = loader.load_string(text)
    assert errors == []
    table = client.get("/api/v1/settlement/periods/2026-10/export", headers=agg)
    assert table.headers["content-type"].startswith("text/csv")
    assert "settle/2026-10/veh-c1/0" in table.text


def test_bsp_statements_by_organisation(client: TestClient, world: World) -> None:
    bsp, tso = world.bearer("bsp"), world.bearer("tso")
    mine = client.get("/api/v1/settlement/periods/2026-10/bsp-statements", headers=bsp).json()
    assert [(g["group_id"], g["capacity_sek"]) for g in mine] == [("own", "22.94")]
    hidden = client.get("/api/v1/settlement/periods/2026-10/bsp-statements/theirs", headers=bsp)
    assert (hidden.status_code, hidden.json()["detail"]) == (404, "bidding group 'theirs' not found")
    assert client.get("/api/v1/settlement/periods/2026-10/bsp-statements/own", headers=bsp).json()["net_sek"] == "22.94"
    everything = client.get("/api/v1/settlement/periods/2026-10/bsp-statements", headers=tso).json()
    assert [g["group_id"] for g in everything] == ["own", "theirs"]
    refused = client.get("/api/v1/settlement/statements/c1/2026-10", headers=bsp)
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "role 'bsp' may not read owner statements and ledger lines (allowed: owner, aggregator_operator)"
    )
    dso = client.get("/api/v1/settlement/periods/2026-10/bsp-statements", headers=world.bearer("dso"))
    assert dso.status_code == 403
    assert dso.json()["detail"] == "role 'dso' may not read BSP statements (allowed: aggregator_operator, bsp, tso)"


def test_the_settlement_day_and_the_journey_tasks_are_wired(
    client: TestClient, platform: Platform, world: World
) -> None:
    from v2g.services.journey.automation import ServiceContext

    assert [j.name for j in platform.scheduler.jobs if j.name == "settlement"] == []  # settlement_job=False
    assert platform.settlement_billing is not None
    world.clock.advance(days=4)  # 6 November, 09:00 UTC: past the close day (5)
    day = platform.settlement_billing.settlement_day()
    assert day.run is not None
    assert (day.run.period, [r.status for r in day.run.results]) == (OCTOBER, ["unchanged"] * 4)
    assert day.closed == [OCTOBER]
    assert [b.invoices for b in day.billed] == [["invoice/2026-10/c1", "invoice/2026-10/c2"]]
    assert day.summary() == (  # November's days so far captured for 2 EVs (1-6 November, local)
        "12 EV-days captured; 2026-10: 0 posted, 4 unchanged, 0 failed; closed 2026-10; "
        "billed 2026-10: 0 payouts, 2 invoices"
    )
    # the platform's own registry runs the settlement tasks (journeys built by bootstrap use it)
    journey = world.service.list_journeys(SYSTEM)[0]
    task = SimpleNamespace(service="final_settlement", result={})  # the termination stage's task, as it starts
    with world.service.uow() as repo:
        ctx = ServiceContext(journey, task, repo, world.clock.now(), world.service.rules)  # type: ignore[arg-type]
        outcome = platform.registry.run(ctx)
    assert outcome.reason == "the final settlement follows the end of 2026-11 (the month the service ends)"


def test_billing_list_and_payments_by_organisation(client: TestClient, world: World, platform: Platform) -> None:
    assert platform.settlement is not None
    assert platform.settlement_billing is not None
    agg, agg2, owner = world.bearer("aggregator"), world.bearer("aggregator2"), _owner(client, "c1")
    assert client.get("/api/v1/settlement/periods/2026-10/billing", headers=agg).json() == []  # not billed yet
    platform.settlement.close_period(OCTOBER)
    platform.settlement_billing.bill(OCTOBER)
    mine = client.get("/api/v1/settlement/periods/2026-10/billing", headers=agg).json()
    assert [(i["customer_id"], i["kind"], i["key"]) for i in mine] == [("c1", "invoice", "invoice/2026-10/c1")]
    owed = Decimal(mine[0]["amount_sek"])
    assert owed > 0
    theirs = client.get("/api/v1/settlement/periods/2026-10/billing", headers=agg2).json()
    assert [i["customer_id"] for i in theirs] == ["c2"]
    refused = client.get("/api/v1/settlement/periods/2026-10/billing", headers=owner)
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("role 'owner' may not read the billing of a month")

    body = {"customer_id": "c1", "amount_sek": str(owed), "reference": "BG-77"}
    paid = client.post("/api/v1/settlement/payments", headers=agg, json=body)
    assert paid.status_code == 201, paid.text
    assert paid.json()["key"] == "payment/BG-77"
    assert client.post("/api/v1/settlement/payments", headers=agg, json=body).json() == paid.json()  # once only
    spaced = client.post("/api/v1/settlement/payments", headers=agg, json={**body, "reference": " BG-77 "})
    assert spaced.json() == paid.json()  # the bank's reference is the same one with spaces around it
    blank = client.post("/api/v1/settlement/payments", headers=agg, json={**body, "reference": "   "})
    assert blank.status_code == 422
    assert blank.json()["detail"][0]["loc"] == ["body", "reference"]
    conflict = client.post("/api/v1/settlement/payments", headers=agg, json={**body, "amount_sek": "1.00"})
    assert conflict.status_code == 409
    assert "payment 'BG-77' is on record with other amounts or customer" in conflict.json()["detail"]
    assert client.post("/api/v1/settlement/payments", headers=agg2, json=body).status_code == 404  # not theirs
    assert client.post("/api/v1/settlement/payments", headers=owner, json=body).status_code == 403
    bad = client.post("/api/v1/settlement/payments", headers=agg, json={**body, "amount_sek": "0", "bank": "x"})
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {("body", "amount_sek"), ("body", "bank")}
    # in the books of the month it arrived: the bank debited, the owner's receivable credited
    posted_in = paid.json()["posted_in"]
    books = client.get(f"/api/v1/settlement/periods/{posted_in}/export", headers=agg).text
    legs = [line for line in books.splitlines() if ",payment/BG-77," in line]
    assert len(legs) == 2
    assert any("receivable" in leg and f"-{owed}" in leg for leg in legs), legs
