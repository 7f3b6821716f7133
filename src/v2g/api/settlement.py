"""Settlement over HTTP: owner statements and ledger lines, the operator's reconciliation and ledger
export, and the BSP statement of each bidding group.

Access by role and organisation:

* an owner reads their own statements and ledger lines only;
* an aggregator operator reads those of the customers its organisation serves, the
  reconciliation and the export;
* an aggregator operator reads the payouts and invoices billed for a month and records an owner's
  payment (of a customer its organisation serves);
* a BSP reads the statements of its own bidding groups, an aggregator operator those of the groups
  holding EVs it serves, the TSO every group's (as for the market records);
* any other role gets 403 naming the roles allowed. A customer, statement or group the caller may
  not read answers 404 naming the id, so its existence does not leak.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from v2g.api.deps import MarketUnit, platform_of
from v2g.api.inputs import CheckedJsonRoute
from v2g.api.journeys import Who
from v2g.services.actors.ports import ForbiddenError, NotFoundError, Principal
from v2g.services.markets.access import AGGREGATOR_ROLE, READERS, MarketScope
from v2g.services.settlement.access import OPERATOR_READERS, customer_visible, require_owner_data, require_role
from v2g.services.settlement.billing import SettlementBilling
from v2g.services.settlement.reports import SettlementNotFoundError, SettlementReports
from v2g.settlement.export import to_beancount, to_csv
from v2g.settlement.money import SettlementInputError
from v2g.settlement.periods import SettlementPeriod
from v2g.settlement.statement import render_statement_html

router = APIRouter(prefix="/settlement", tags=["settlement"], route_class=CheckedJsonRoute)


def _reports(request: Request) -> SettlementReports:
    reports = platform_of(request).settlement_reports
    if reports is None:
        raise HTTPException(503, "the platform has no settlement reports (bootstrap builds them)")
    return reports


Reports = Annotated[SettlementReports, Depends(_reports)]


def _billing(request: Request) -> SettlementBilling:
    billing = platform_of(request).settlement_billing
    if billing is None:
        raise HTTPException(503, "the platform has no settlement billing (bootstrap builds it)")
    return billing


Billing = Annotated[SettlementBilling, Depends(_billing)]


class PaymentIn(BaseModel):
    """An owner's payment received by the bank."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: str = Field(min_length=1, max_length=64)
    amount_sek: Decimal = Field(gt=0, max_digits=14, decimal_places=2, description="SEK to the öre, > 0")
    reference: str = Field(min_length=1, max_length=80, description="the bank's reference (unique per payment)")


def _period(code: str) -> SettlementPeriod:
    try:
        return SettlementPeriod.parse(code)
    except SettlementInputError as exc:
        raise HTTPException(422, [{"loc": ["path", "period"], "msg": str(exc), "type": "value_error"}]) from exc


def _require(who: Principal, allowed: tuple[str, ...], what: str) -> None:
    try:
        require_role(who, allowed, what)
    except ForbiddenError as exc:
        raise HTTPException(403, str(exc)) from exc


def _owner_scope(request: Request, who: Principal, customer_id: str, what: str) -> None:
    try:
        require_owner_data(who, customer_id, platform_of(request).journeys, what)
    except ForbiddenError as exc:
        raise HTTPException(403, str(exc)) from exc
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc


@router.get("/statements/{customer_id}/{period}", response_model=None)
def get_statement(
    request: Request,
    reports: Reports,
    who: Who,
    customer_id: str,
    period: str,
    fmt: Annotated[Literal["json", "html"], Query(alias="format")] = "json",
) -> dict[str, Any] | Response:
    """The owner's monthly statement: JSON (every line with its Swedish and English explanation) or
    the HTML page (``?format=html``)."""
    month = _period(period)
    _owner_scope(request, who, customer_id, f"statement for {month}")
    try:
        statement = reports.owner_statement(customer_id, month)
    except SettlementNotFoundError as exc:
        raise HTTPException(404, f"statement of customer {customer_id!r} for {month} not found") from exc
    if fmt == "html":
        return HTMLResponse(render_statement_html(statement))
    return statement.to_json()


@router.get("/ledger/{customer_id}")
def get_ledger(
    request: Request,
    reports: Reports,
    who: Who,
    customer_id: str,
    period: Annotated[str | None, Query(description="only postings posted in or settling this month")] = None,
) -> list[dict[str, Any]]:
    """The postings on the customer's account (debit: the owner owes more; credit: is owed more)."""
    month = _period(period) if period is not None else None
    _owner_scope(request, who, customer_id, "ledger")
    return [
        {
            "key": p.key,
            "kind": p.kind,
            "period": p.period,
            "settles": p.settles,
            "line": p.line,
            "subject": p.subject,
            "amount_sek": str(p.amount_sek),
        }
        for p in reports.owner_ledger(customer_id, month)
    ]


@router.get("/periods/{period}/reconciliation")
def get_reconciliation(reports: Reports, who: Who, period: str) -> dict[str, Any]:
    """Market revenue = owner allocations + the aggregator's share + repayments, to the öre."""
    month = _period(period)
    _require(who, OPERATOR_READERS, "the reconciliation")
    return reports.reconcile(month).to_json()


@router.get("/periods/{period}/export")
def get_export(
    reports: Reports,
    who: Who,
    period: str,
    fmt: Annotated[Literal["csv", "beancount"], Query(alias="format")] = "csv",
) -> PlainTextResponse:
    """Every transaction posted in the month, as CSV or Beancount."""
    month = _period(period)
    _require(who, OPERATOR_READERS, "the ledger export")
    transactions = reports.ledger_export(month)
    if fmt == "csv":
        return PlainTextResponse(to_csv(transactions), media_type="text/csv")
    return PlainTextResponse(to_beancount(transactions, title=f"V2G settlement {month}"))


def _group_scope(request: Request, who: Principal) -> MarketScope:
    allowed = tuple(sorted(READERS))
    _require(who, allowed, "BSP statements")
    served: frozenset[str] = frozenset()
    if who.role == AGGREGATOR_ROLE:
        journeys = platform_of(request).journeys
        served = journeys.served_vehicle_ids(who) if journeys is not None else frozenset()
    return MarketScope.of(who, served)


def _visible_groups(request: Request, who: Principal, market_tx: MarketUnit) -> set[str]:
    scope = _group_scope(request, who)
    with market_tx() as store:
        return {g.id for g in scope.groups(store)}


@router.get("/periods/{period}/bsp-statements")
def list_bsp_statements(
    request: Request, reports: Reports, market_tx: MarketUnit, who: Who, period: str
) -> list[dict[str, Any]]:
    """The BSP statement of each bidding group the caller may read with market money in the month."""
    month = _period(period)
    visible = _visible_groups(request, who, market_tx)
    return [g.to_json() for g in reports.bsp_statements(month) if g.group_id in visible]


@router.get("/periods/{period}/bsp-statements/{group_id}")
def get_bsp_statement(
    request: Request, reports: Reports, market_tx: MarketUnit, who: Who, period: str, group_id: str
) -> dict[str, Any]:
    """One bidding group's statement for the month."""
    month = _period(period)
    visible = _visible_groups(request, who, market_tx)
    if group_id not in visible:
        raise HTTPException(404, f"bidding group {group_id!r} not found")
    for g in reports.bsp_statements(month):
        if g.group_id == group_id:
            return g.to_json()
    raise HTTPException(404, f"bidding group {group_id!r} has no market money in {month}")


@router.get("/periods/{period}/billing")
def get_billing(request: Request, billing: Billing, who: Who, period: str) -> list[dict[str, str]]:
    """The payouts and invoices billed for a closed month (of the customers the caller's organisation
    serves): the bank's payout list and the invoice run."""
    month = _period(period)
    _require(who, OPERATOR_READERS, "the billing of a month")
    journeys = platform_of(request).journeys
    served = {j.customer_id for j in journeys.list_journeys(who)} if journeys is not None else set()
    return [i.to_json() for i in billing.billing_items(month) if i.customer_id in served]


@router.post("/payments", status_code=201)
def post_payment(request: Request, billing: Billing, who: Who, body: PaymentIn) -> dict[str, str]:
    """Record an owner's payment of an invoice; the same reference and amount again answers the
    payment already on record, the same reference with another amount or customer is refused (409)."""
    _require(who, OPERATOR_READERS, "payments")
    if not customer_visible(who, body.customer_id, platform_of(request).journeys):
        raise HTTPException(404, f"customer {body.customer_id!r} not found")
    try:
        tx = billing.record_payment(body.customer_id, body.amount_sek, body.reference)
    except SettlementNotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    except SettlementInputError as exc:
        raise HTTPException(409, str(exc)) from exc
    return {"key": tx.key, "posted_in": tx.period.code, "amount_sek": str(body.amount_sek)}
