"""A period's ledger for many EVs at once: the vectorised economics over metered arrays, then one
read of what is posted and one bulk insert per chunk of EVs, exactly once.

It posts what :meth:`SettlementService.run_period` posts for the same metered quarters (the same
lines, the same ``settle/<period>/<ev>/<n>`` keys and differences), but takes the quarters as
arrays (already metered: capture keeps them) and writes neither metering snapshots nor statement
summaries: it is the ledger step of a large fleet's run, and what ``bench/settlement.py`` measures.
A chunk is one database transaction; a chunk that meets a key another run posted first is read
again and retried once, so two runs at once still post each difference once.
"""

from __future__ import annotations

from collections.abc import Sequence

from v2g.fleet.model import PriceArea
from v2g.services.settlement.ports import ConcurrentPostingError
from v2g.services.settlement.service import RunReport, SettlementService, SubjectResult
from v2g.settlement.economics import ContractTerms, LineAmount
from v2g.settlement.ledger import LedgerTransaction, dso_account, line_postings, owner_account, settlement_transaction
from v2g.settlement.money import ZERO, SettlementInputError, decimal_of
from v2g.settlement.vectorised import MeteredMonth, quarters_of, settle_month_vectorised


def settle_batch(
    service: SettlementService, month: MeteredMonth, price_area: PriceArea, *, chunk: int = 2000
) -> RunReport:
    """Post ``month`` for its EVs (all in ``price_area``); see the module docstring."""
    period = month.period
    now = service.clock.now()
    if now < period.end_at:
        msg = f"period: {period} has not ended yet (it ends {period.end_at.isoformat()})"
        raise SettlementInputError(msg)
    n_q = quarters_of(period)
    prices = service.prices.day_ahead_eur_per_mwh(price_area, period.start_at, n_q)
    if len(prices) != n_q:
        msg = f"day_ahead_eur_per_mwh: {len(prices)} prices for the {n_q} quarters of {period} in {price_area}"
        raise SettlementInputError(msg)
    spot = [decimal_of(v, field=f"day_ahead_eur_per_mwh[{price_area} {k}]") for k, v in enumerate(prices)]
    with service.tx() as store:
        own = store.contract_terms_of(sorted(set(month.customer_ids)), period.first_day)
    default = ContractTerms.default(service.tariffs, period.first_day)
    contracts = [own.get(c, default) for c in month.customer_ids]
    reserve = service._reserve(period).per_ev_sek
    lines = settle_month_vectorised(
        month, spot, service.tariffs, contracts, [reserve.get(e, ZERO) for e in month.ev_ids]
    )
    report = RunReport(period)
    for lo in range(0, len(month.ev_ids), chunk):
        rows = range(lo, min(lo + chunk, len(month.ev_ids)))
        try:
            report.results += _post_chunk(service, month, lines, rows)
        except ConcurrentPostingError:
            report.results += _post_chunk(service, month, lines, rows)
    return report


def _post_chunk(
    service: SettlementService, month: MeteredMonth, lines: Sequence[tuple[LineAmount, ...]], rows: range
) -> list[SubjectResult]:
    period = month.period
    subjects = [month.ev_ids[i] for i in rows]
    results: list[SubjectResult] = []
    txs: list[LedgerTransaction] = []
    with service.tx() as store:
        posted = store.postings_of_subjects(period, subjects)
        closed = store.closed_periods()
        for i in rows:
            ev = month.ev_ids[i]
            target = line_postings(
                lines[i], owner=owner_account(month.customer_ids[i]), dso=dso_account(month.dso_keys[i]), subject=ev
            )
            have, count = posted.get(ev, ([], 0))
            tx = settlement_transaction(
                settles=period,
                subject=ev,
                target=target,
                posted=have,
                posted_count=count,
                closed=closed,
                reason="the data or rules changed",
            )
            if tx is None:
                results.append(SubjectResult(ev, "unchanged"))
            else:
                txs.append(tx)
                results.append(SubjectResult(ev, "posted", tx.key, tx.kind.value, tx.period.code))
        store.append_many(txs, service.clock.now())
    return results
