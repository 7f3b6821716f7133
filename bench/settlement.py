"""Settlement of one month for N EVs at 15 minutes: the ledger step of a period run for a large fleet.

A synthetic metered month (every EV plugged in each evening, charging about 8-14 kWh in the night's
cheap quarters at 11 kW, a third of the nights discharging 2-6 kWh in the evening peak) is settled
with the shipped rules and the recorded SE3 day-ahead prices by ``settle_batch``: vectorised
owner economics exact to the öre, the posted ledger read once per chunk, every EV's transaction
bulk-inserted (a fresh database, migrated). Then the same month is run again, which must post
nothing (exactly once).

Measured: wall time of the run (economics + ledger), of the re-run, peak RSS, quarter-intervals per
second. Metering from raw registers (capture) is not part of it: it runs daily, per EV, as telemetry
arrives. Prints one JSON line.

    python bench/settlement.py --evs 10000 --db sqlite
    python bench/settlement.py --evs 1000 --db postgresql   # V2G_TEST_DATABASE_URL names the server
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.migrate import upgrade
from v2g.adapters.db.settlement_repo import SqlSettlementSources, sql_settlement_tx
from v2g.adapters.feeds.replay import RecordedMarketData
from v2g.fleet.model import PriceArea
from v2g.services.settlement.batch import settle_batch
from v2g.services.settlement.service import SettlementService
from v2g.settlement.economics import ContractTerms, settle_ev_period
from v2g.settlement.metering import FillRule, MeterInterval, Quality
from v2g.settlement.money import decimal_of
from v2g.settlement.periods import SettlementPeriod, local_date
from v2g.settlement.tariffs import load_tariffs
from v2g.settlement.vectorised import MeteredMonth, quarters_of, settle_month_vectorised
from v2g.units import QUARTER, STOCKHOLM


@dataclass
class AfterThePeriod:
    at: datetime

    def now(self) -> datetime:
        return self.at


def synthetic_month(period: SettlementPeriod, n_evs: int, seed: int) -> MeteredMonth:
    """Nightly charging in cheap quarters, some evening discharging (0.1 Wh units, int64)."""
    rng = np.random.default_rng(seed)
    n_q = quarters_of(period)
    starts = [period.start_at + k * QUARTER for k in range(n_q)]
    local_hour = np.array([at.astimezone(STOCKHOLM).hour for at in starts])
    day_index = np.array([(local_date(at) - period.first_day).days for at in starts])
    n_days = int(day_index.max()) + 1
    imp = np.zeros((n_evs, n_q), dtype=np.int64)
    exp = np.zeros((n_evs, n_q), dtype=np.int64)
    full = 27_500  # 11 kW for a quarter: 2.75 kWh
    for d in range(n_days):
        night = np.flatnonzero((day_index == d) & (local_hour < 6))
        evening = np.flatnonzero((day_index == d) & (local_hour >= 17) & (local_hour < 21))
        if len(night) >= 6:
            quarters = rng.integers(3, 6, size=n_evs)  # 8.25-13.75 kWh at full power
            picks = np.argsort(rng.random((n_evs, len(night))), axis=1)
            for j in range(5):
                chosen = night[picks[:, j]]
                imp[np.arange(n_evs), chosen] += np.where(j < quarters, full, 0)
        if len(evening) >= 2:
            discharging = rng.random(n_evs) < 1 / 3
            amount = rng.integers(20_000, 60_000, size=n_evs)
            first, second = evening[-2], evening[-1]
            exp[:, first] += np.where(discharging, np.minimum(amount, full), 0)
            exp[:, second] += np.where(discharging, np.maximum(amount - full, 0), 0)
    ids = [f"ev-{i:06d}" for i in range(n_evs)]
    customers = [f"c-{i:06d}" for i in range(n_evs)]
    dsos = ["ellevio" if i % 3 else "goteborg_energi" for i in range(n_evs)]
    return MeteredMonth(period, ids, customers, dsos, imp, exp)


def decimal_path(month: MeteredMonth, service: SettlementService, sample: int) -> tuple[float, bool]:
    """The per-EV Decimal economics of the first ``sample`` EVs: ms per EV, and whether every line
    equals the vectorised one."""
    period = month.period
    spot = service.spot_prices(PriceArea.SE3, period)
    starts = [period.start_at + k * QUARTER for k in range(quarters_of(period))]
    default = ContractTerms.default(service.tariffs, period.first_day)
    eur = service.prices.day_ahead_eur_per_mwh(PriceArea.SE3, period.start_at, len(starts))
    fast = settle_month_vectorised(
        MeteredMonth(
            period,
            month.ev_ids[:sample],
            month.customer_ids[:sample],
            month.dso_keys[:sample],
            month.import_e4[:sample],
            month.export_e4[:sample],
        ),
        [decimal_of(v, field="spot") for v in eur],
        service.tariffs,
        [default] * sample,
        [Decimal(0)] * sample,
    )
    same = True
    started = time.perf_counter()
    for i in range(sample):
        intervals = [
            MeterInterval(
                at,
                Decimal(int(month.import_e4[i, k])).scaleb(-4),
                Decimal(int(month.export_e4[i, k])).scaleb(-4),
                Quality.MEASURED,
                Quality.MEASURED,
                (FillRule.REGISTER,),
                (FillRule.REGISTER,),
            )
            for k, at in enumerate(starts)
        ]
        slow = settle_ev_period(
            period=period,
            ev_id=month.ev_ids[i],
            customer_id=month.customer_ids[i],
            intervals=intervals,
            spot_ore_per_kwh=spot,
            tariffs=service.tariffs,
            dso_key=month.dso_keys[i],
            contract=default,
            reserve_net_sek=Decimal(0),
        )
        same = same and [x.amount_sek for x in slow.lines] == [x.amount_sek for x in fast[i]]
    return (time.perf_counter() - started) * 1000 / max(sample, 1), same


def database(kind: str) -> tuple[str, object]:
    """A fresh database URL and a callable that drops it."""
    if kind == "sqlite":
        folder = tempfile.TemporaryDirectory(prefix="v2g-bench-")
        return f"sqlite:///{Path(folder.name) / 'bench.sqlite3'}", folder.cleanup
    admin_url = os.environ.get("V2G_TEST_DATABASE_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    name = f"v2g_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evs", type=int, default=10_000, help="EVs in the fleet (default 10000)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--period", default="2026-03", help="the month, YYYY-MM (default 2026-03: 2972 quarters)")
    parser.add_argument("--chunk", type=int, default=2000, help="EVs per database transaction")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=int, default=20, help="EVs also settled by the Decimal path (checked equal)")
    args = parser.parse_args()
    period = SettlementPeriod.parse(args.period)

    started = time.perf_counter()
    month = synthetic_month(period, args.evs, args.seed)
    generate_s = time.perf_counter() - started
    url, drop = database(args.db)
    engine = make_engine(url)
    try:
        upgrade(engine)
        service = SettlementService(
            sources=SqlSettlementSources(engine),
            prices=RecordedMarketData(),
            tx=sql_settlement_tx(engine),
            tariffs=load_tariffs(),
            clock=AfterThePeriod(period.end_at.astimezone(UTC)),
        )
        started = time.perf_counter()
        report = settle_batch(service, month, PriceArea.SE3, chunk=args.chunk)
        run_s = time.perf_counter() - started
        started = time.perf_counter()
        again = settle_batch(service, month, PriceArea.SE3, chunk=args.chunk)
        rerun_s = time.perf_counter() - started
        with sql_settlement_tx(engine)() as store:
            transactions = store.transactions_in(period)
            balances = store.account_balances(period)
        decimal_ms, exact = decimal_path(month, service, min(args.sample, args.evs))
    finally:
        engine.dispose()
        drop()  # type: ignore[operator]
    intervals = args.evs * quarters_of(period)
    figures = {
        "bench": "settlement",
        "evs": args.evs,
        "db": args.db,
        "period": period.code,
        "intervals": intervals,
        "generate_s": round(generate_s, 2),
        "wall_s": round(run_s, 2),
        "rerun_s": round(rerun_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "intervals_per_s": round(intervals / run_s),
        "posted": len(report.posted),
        "rerun_posted": len(again.posted),
        "transactions": len(transactions),
        "postings": sum(len(t.postings) for t in transactions),
        "ledger_sums_to_zero": sum(balances.values()) == 0,
        "decimal_path_ms_per_ev": round(decimal_ms, 1),
        "sample_equal_to_decimal_path": exact,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
