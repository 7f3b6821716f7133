"""A settlement run as its own process, for the crash test: ``settlement_main.py URL PAUSE_EV``.

It settles January 2026 for every EV of the crash fleet with the real service and SQL store, two EVs
per database transaction (a chunk of the batch run). Right after the ledger rows of the chunk
holding ``PAUSE_EV`` are inserted, inside that chunk's transaction and before its commit, it prints
``inside <ev>`` and waits, so the test can kill it exactly there.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from tests.integration.settlement_support import service
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.settlement_repo import SqlSettlementStore
from v2g.services.settlement.service import SubjectResult
from v2g.settlement.ledger import LedgerTransaction
from v2g.settlement.periods import SettlementPeriod


def main(url: str, pause_ev: str) -> None:
    engine = make_engine(url)

    class PausingStore(SqlSettlementStore):
        def append_many(self, txs: Sequence[LedgerTransaction], at: datetime) -> None:
            super().append_many(txs, at)
            if any(tx.subject == pause_ev for tx in txs):
                print(f"inside {pause_ev}", flush=True)
                time.sleep(120)  # killed here, before the commit

    @contextmanager
    def pausing_tx() -> Iterator[SqlSettlementStore]:
        with engine.begin() as conn:
            yield PausingStore(conn)

    def done(result: SubjectResult) -> None:
        print(f"committed {result.subject} {result.status}", flush=True)

    svc = service(engine, on_done=done)
    svc.tx = pausing_tx
    svc.batch_size = 2
    ev_ids = svc.sources.ev_accounts([f"ev-{n}" for n in range(1, 100)])
    svc.run_period(SettlementPeriod(2026, 1), [a.ev_id for a in ev_ids])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
