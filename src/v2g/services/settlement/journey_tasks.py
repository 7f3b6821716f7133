"""The journey's settlement tasks: ``handle_payments`` (usage) and ``final_settlement`` (termination).

``handle_payments`` completes once the customer can be settled: every site's DSO has a tariff in the
settlement rules, and the contract terms in force (the owner's own, or the defaults) are recorded
on the task. ``final_settlement`` waits until the month of termination has ended and is settled
for every EV of the customer with a charger (the daily settlement job runs it and then looks at
the journeys again), then pays out or invoices the customer's whole balance once (``final/<id>``).
Both work on the journey's own database connection, in its transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from v2g.services.journey.automation import Handler, ServiceContext, ServiceOutcome
from v2g.services.settlement.ports import SettlementStore
from v2g.services.settlement.service import SettlementConfig
from v2g.settlement.economics import ContractTerms
from v2g.settlement.ledger import final_transaction, owner_account
from v2g.settlement.money import SettlementInputError
from v2g.settlement.periods import SettlementPeriod
from v2g.settlement.tariffs import TariffBook

StoreOf = Callable[[ServiceContext], SettlementStore]


def settlement_handlers(store_of: StoreOf, tariffs: TariffBook, config: SettlementConfig) -> dict[str, Handler]:
    """The handlers by blueprint service name."""

    def handle_payments(ctx: ServiceContext) -> ServiceOutcome:
        customer = ctx.journey.customer_id
        file = ctx.repo.customer_file(customer)
        if not file.sites:
            return ServiceOutcome.waiting("no site registered for the customer")
        dso_tariffs: dict[str, str] = {}
        for site in file.sites:
            area = ctx.repo.grid_area(site.grid_area_id)
            org = area.dso_org_id if area is not None else None
            try:
                dso_tariffs[site.id] = tariffs.dso(config.tariff_of_org(org, site.grid_area_id)).key
            except SettlementInputError as exc:
                return ServiceOutcome.waiting(f"the site {site.id} cannot be settled: {exc}")
        day = SettlementPeriod.containing(ctx.now).first_day
        store = store_of(ctx)
        terms = store.contract_terms(customer, day) or ContractTerms.default(tariffs, day)
        return ServiceOutcome.done(
            {
                "settlement": "monthly, after each month's close; payouts and invoices as ledger transactions",
                "owner_account": owner_account(customer).code,
                "dso_tariffs": dso_tariffs,
                "owner_revenue_share": str(terms.owner_revenue_share),
                "wear_allowance_ore_per_kwh": str(terms.wear_allowance_ore_per_kwh),
                "contract": terms.source,
            }
        )

    def final_settlement(ctx: ServiceContext) -> ServiceOutcome:
        customer = ctx.journey.customer_id
        store = store_of(ctx)
        key = f"final/{customer}"
        last = SettlementPeriod.parse(str(ctx.task.result.get("final_period") or SettlementPeriod.containing(ctx.now)))
        keep = {"final_period": last.code}
        posted = store.transaction(key)
        if posted is not None:
            return ServiceOutcome.done({**keep, "transaction": key, "kind": posted.kind.value})
        if ctx.now < last.end_at:
            return ServiceOutcome.waiting(
                f"the final settlement follows the end of {last} (the month the service ends)", keep
            )
        file = ctx.repo.customer_file(customer)
        charged_sites = {c.site_id for c in file.chargers}
        evs = sorted(v.id for v in file.vehicles if v.site_id in charged_sites)
        settled = store.latest_statement_digests(last, evs)
        missing = [ev for ev in evs if ev not in settled]
        if missing:
            return ServiceOutcome.waiting(
                f"{last} is not settled yet for {', '.join(missing)} (the daily settlement job runs it)", keep
            )
        balance = store.account_balance(owner_account(customer).code)
        tx = final_transaction(customer, balance, last, SettlementPeriod.containing(ctx.now), store.closed_periods())
        if tx is None:
            return ServiceOutcome.done({**keep, "balance_sek": "0.00", "transaction": None}, outcome="even")
        store.append(tx, ctx.now)
        return ServiceOutcome.done(
            {**keep, "balance_sek": str(balance), "transaction": tx.key, "kind": tx.kind.value},
            outcome=tx.kind.value,
        )

    return {"handle_payments": handle_payments, "final_settlement": final_settlement}
