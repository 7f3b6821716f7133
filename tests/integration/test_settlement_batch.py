"""The batch ledger step on SQLite and PostgreSQL: from the same metered quarters it posts exactly what
the per-EV run posts (keys and content digests), once; changed quarters become corrections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from tests.integration.settlement_support import seed, service
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.migrate import upgrade
from v2g.adapters.db.settlement_repo import sql_settlement_tx
from v2g.fleet.model import PriceArea
from v2g.services.settlement.batch import settle_batch
from v2g.settlement.periods import SettlementPeriod
from v2g.settlement.vectorised import MeteredMonth, quarters_of
from v2g.units import QUARTER

JAN = SettlementPeriod(2026, 1)


def metered_by_the_per_ev_run(tmp_path: Path) -> tuple[MeteredMonth, list[tuple[str, str]]]:
    """Run January per EV on a fresh SQLite database; its snapshots as arrays, and its ledger."""
    engine = make_engine(f"sqlite:///{tmp_path / 'per-ev.sqlite3'}")
    try:
        upgrade(engine)
        seed(engine)
        service(engine).run_period(JAN, ["ev-1", "ev-2"])
        n_q = quarters_of(JAN)
        imp = np.zeros((2, n_q), dtype=np.int64)
        exp = np.zeros((2, n_q), dtype=np.int64)
        with sql_settlement_tx(engine)() as store:
            for i, ev in enumerate(("ev-1", "ev-2")):
                for day in store.meter_days(ev, JAN.days()).values():
                    for iv in day.intervals:
                        k = int((iv.start_at - JAN.start_at) / QUARTER)
                        imp[i, k], exp[i, k] = int(iv.import_kwh.scaleb(4)), int(iv.export_kwh.scaleb(4))
            ledger = [(t.key, t.digest) for t in store.transactions_in(JAN)]
    finally:
        engine.dispose()
    return MeteredMonth(JAN, ["ev-1", "ev-2"], ["c-1", "c-2"], ["ellevio", "ellevio"], imp, exp), ledger


def test_the_batch_posts_what_the_per_ev_run_posts_once(engine: Engine, tmp_path: Path) -> None:
    month, per_ev = metered_by_the_per_ev_run(tmp_path)
    seed(engine)
    svc = service(engine)
    report = settle_batch(svc, month, PriceArea.SE3, chunk=1)
    assert [(r.subject, r.status, r.key) for r in report.results] == [
        ("ev-1", "posted", "settle/2026-01/ev-1/0"),
        ("ev-2", "posted", "settle/2026-01/ev-2/0"),
    ]
    with sql_settlement_tx(engine)() as store:
        assert [(t.key, t.digest) for t in store.transactions_in(JAN)] == per_ev
    assert [r.status for r in settle_batch(svc, month, PriceArea.SE3).results] == ["unchanged", "unchanged"]
    month.import_e4[1, 100] += 20_000  # 2.0 kWh more for ev-2 on 2 January: a correction
    again = settle_batch(svc, month, PriceArea.SE3)
    assert [(r.subject, r.status, r.kind) for r in again.results] == [
        ("ev-1", "unchanged", None),
        ("ev-2", "posted", "correction"),
    ]
    with sql_settlement_tx(engine)() as store:
        assert sum(store.account_balances().values()) == 0
        assert [t.key for t in store.transactions_in(JAN)][-1] == "settle/2026-01/ev-2/1"
