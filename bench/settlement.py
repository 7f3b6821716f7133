"""Settlement of one month for N EVs at 15 minutes, through the product's run from stored telemetry.

The month's telemetry is generated into a database first (untimed; kept with ``--telemetry-db`` and
reused when it exists): a fleet of N EVs with chargers in two DSOs' grid areas, and each charger's
import and export registers as the platform stores them (``telemetry`` rows in Wh), read every hour
while idle and every 5 minutes while energy flows (the charger's clock-aligned and sampled
intervals). The energy is a synthetic month: every EV plugged in each evening, charging about
8-14 kWh in the night at 11 kW, a third of the nights discharging 2-6 kWh in the evening peak.

Then, on a copy of that database, ``SettlementService.run_period`` settles the month for every EV as
``v2g settle run`` and the daily job do: bulk register reads metered with numpy, month snapshots,
integer economics, the ledger and statement summaries, a chunk of EVs per transaction; then the
same month again, which must post nothing. Checked: every EV's metered quarters equal the
generated ones, and a sample of EVs equals the per-EV Decimal path (metering, lines, statement).

Prints one JSON line: wall seconds per phase, peak RSS, intervals per second, sizes.

    python bench/settlement.py --evs 10000 --db sqlite --telemetry-db /var/tmp/settle-10000.sqlite3
    python bench/settlement.py --evs 1000 --db postgresql --telemetry-db v2g_bench_settle_1000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.migrate import upgrade
from v2g.adapters.db.settlement_repo import SqlSettlementSources, sql_settlement_tx
from v2g.adapters.feeds.replay import RecordedMarketData
from v2g.fleet.model import PriceArea
from v2g.services.settlement.service import SettlementConfig, SettlementService
from v2g.services.settlement.summary import statement_summary
from v2g.settlement.economics import ContractTerms, settle_ev_period
from v2g.settlement.meter_arrays import MeterArrays, blob_intervals, decode_into
from v2g.settlement.metering import meter_intervals
from v2g.settlement.periods import SettlementPeriod, local_date
from v2g.settlement.tariffs import load_tariffs
from v2g.settlement.vectorised import MeteredMonth, quarters_of
from v2g.units import HOUR, QUARTER, STOCKHOLM


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


def _fleet_rows(n_evs: int) -> dict[str, list[dict[str, object]]]:
    created = datetime(2025, 1, 1, tzinfo=UTC)
    areas = [
        {"id": "GA-E", "name": "Ellevio area", "dso_org_id": "org-ellevio", "price_area": "SE3", "import_limit_kw": 1e6,
         "export_limit_kw": 1e6, "hosting_capacity_kw": 1e6, "connection_queue_length": 0},
        {"id": "GA-G", "name": "Göteborg Energi area", "dso_org_id": "org-goteborg", "price_area": "SE3",
         "import_limit_kw": 1e6, "export_limit_kw": 1e6, "hosting_capacity_kw": 1e6, "connection_queue_length": 0},
    ]  # fmt: skip
    rows: dict[str, list[dict[str, object]]] = {
        "grid_areas": areas,
        "customers": [],
        "sites": [],
        "vehicles": [],
        "chargers": [],
    }
    for i in range(n_evs):
        n = f"{i:06d}"
        rows["customers"].append(
            {"id": f"c-{n}", "name": f"Owner {n}", "email": f"o{n}@example.se", "created_at": created}
        )
        rows["sites"].append(
            {"id": f"s-{n}", "customer_id": f"c-{n}", "address": f"Gatan {i}", "price_area": "SE3",
             "grid_area_id": "GA-E" if i % 3 else "GA-G", "main_fuse_a": 25, "phases": 3, "voltage_v": 230.0,
             "household_peak_kw": 0.0, "pv_kw": 0.0, "has_bess": False}
        )  # fmt: skip
        rows["vehicles"].append(
            {"id": f"ev-{n}", "customer_id": f"c-{n}", "site_id": f"s-{n}", "make": "Volvo", "model": "EX30",
             "battery_kwh": 64.0, "max_charge_kw": 11.0, "max_discharge_kw": 11.0, "v2g_capable": True}
        )  # fmt: skip
        rows["chargers"].append(
            {"id": f"cp-{n}", "site_id": f"s-{n}", "vendor": "Wallbox", "model": "Quasar 2", "protocol": "ocpp2.1",
             "max_charge_kw": 11.0, "max_discharge_kw": 11.0, "active": True}
        )  # fmt: skip
    return rows


def _readings(energy: np.ndarray, idle_every: int, base: int) -> tuple[np.ndarray, np.ndarray]:
    """One register's readings for one EV: (5-minute step index from an hour before the period,
    value in 0.1 Wh): every ``idle_every`` steps, and every step around a quarter with energy."""
    n_q = energy.size
    steps = 3 * n_q + 24  # 12 steps before, 12 after
    value = np.zeros(steps + 1, dtype=np.int64)
    per_step = np.zeros(steps, dtype=np.int64)
    third = energy // 3
    per_step[12 : 12 + 3 * n_q : 3] = third
    per_step[13 : 13 + 3 * n_q : 3] = third
    per_step[14 : 14 + 3 * n_q : 3] = energy - 2 * third
    value[1:] = base + np.cumsum(per_step)
    value[0] = base
    wanted = np.zeros(steps + 1, dtype=np.bool_)
    wanted[::idle_every] = True
    flowing = np.flatnonzero(energy > 0)
    for offset in range(4):
        wanted[12 + 3 * flowing + offset] = True
    idx = np.flatnonzero(wanted)
    return idx, value[idx]


def generate(url: str, n_evs: int, period: SettlementPeriod, seed: int, idle_min: int) -> int:
    """Migrate a fresh database and store the fleet and the month's register readings; rows written."""
    from v2g.adapters.db.tables import fleet as fleet_tables

    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        for name, rows in _fleet_rows(n_evs).items():
            conn.execute(getattr(fleet_tables, name).insert(), rows)
    month = synthetic_month(period, n_evs, seed)
    t0 = period.start_at - HOUR
    n_steps = 3 * quarters_of(period) + 25
    stamps = [(t0 + k * timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S.%f") for k in range(n_steps)]
    pg_stamps = [(t0 + k * timedelta(minutes=5)).isoformat() for k in range(n_steps)]
    written = 0
    with engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        for i in range(n_evs):
            charger = f"cp-{i:06d}"
            rows = []
            for measurand, energy, base in (
                ("Energy.Active.Import.Register", month.import_e4[i], 1_000_000 * (i % 50)),
                ("Energy.Active.Export.Register", month.export_e4[i], 100_000 * (i % 7)),
            ):
                idx, values = _readings(energy, idle_min // 5, base)
                rows += zip(idx.tolist(), (values / 10).tolist(), strict=True)
                if engine.dialect.name == "sqlite":
                    cursor.executemany(
                        "INSERT INTO telemetry (charger_id, evse_id, measurand, measured_at, value, unit)"
                        " VALUES (?, 1, ?, ?, ?, 'Wh')",
                        [(charger, measurand, stamps[k], v) for k, v in rows],
                    )
                else:
                    with cursor.copy(
                        "COPY telemetry (charger_id, evse_id, measurand, measured_at, value, unit) FROM STDIN"
                    ) as copy:
                        copy.write("".join(f"{charger}\t1\t{measurand}\t{pg_stamps[k]}\t{v!r}\tWh\n" for k, v in rows))
                written += len(rows)
                rows = []
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return written


def decimal_sample(service: SettlementService, period: SettlementPeriod, ev_ids: list[str]) -> tuple[float, bool]:
    """The per-EV Decimal path for ``ev_ids`` from the same stored telemetry: ms per EV, and whether
    its intervals, statement summary and lines equal what the run stored."""
    spot = service.spot_prices(PriceArea.SE3, period)
    reserve = service.reserve_per_ev(period)
    same = True
    started = time.perf_counter()
    for account in service.sources.ev_accounts(ev_ids):
        data = service.sources.meter_data(account, period.start_at, period.end_at)
        intervals = meter_intervals(data, period.start_at, period.end_at, service.tariffs.metering)
        dso = service.config.tariff_of(account)
        contract = ContractTerms.default(service.tariffs, period.first_day)
        settled = settle_ev_period(
            period=period,
            ev_id=account.ev_id,
            customer_id=account.customer_id,
            intervals=intervals,
            spot_ore_per_kwh=spot,
            tariffs=service.tariffs,
            dso_key=dso,
            contract=contract,
            reserve_net_sek=reserve.get(account.ev_id, Decimal(0)),
        )
        summary = json.loads(json.dumps(statement_summary(settled, contract, service.tariffs), sort_keys=True))
        with service.tx() as store:
            stored = store.meter_months(period, [account.ev_id])[account.ev_id]
            same = same and blob_intervals(stored.data, period) == intervals
            same = same and summary == store.statement(period, account.ev_id)  # type: ignore[attr-defined]
    return (time.perf_counter() - started) * 1000 / max(len(ev_ids), 1), same


def metered_equal_generated(service: SettlementService, month: MeteredMonth) -> bool:
    """Every EV's stored quarters equal the generated energy."""
    arrays = MeterArrays.empty(len(month.ev_ids), quarters_of(month.period))
    with service.tx() as store:
        stored = store.meter_months(month.period, list(month.ev_ids))
    for i, ev_id in enumerate(month.ev_ids):
        decode_into(stored[ev_id].data, arrays, i)
    return bool((arrays.import_e4 == month.import_e4).all() and (arrays.export_e4 == month.export_e4).all())


def _sizes(engine: Engine) -> dict[str, float]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            path = Path(str(engine.url.database))
            db = path.stat().st_size
            snap = conn.execute(text("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM meter_month_snapshots")).scalar_one()
            statements = conn.execute(
                text("SELECT COALESCE(SUM(LENGTH(summary_json)), 0) FROM settlement_statements")
            ).scalar_one()
        else:
            db = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            snap = conn.execute(text("SELECT pg_total_relation_size('meter_month_snapshots')")).scalar_one()
            statements = conn.execute(text("SELECT pg_total_relation_size('settlement_statements')")).scalar_one()
        rows = conn.execute(text("SELECT COUNT(*) FROM telemetry")).scalar_one()
    mb = 1024 * 1024
    return {
        "db_mb": round(db / mb, 1),
        "snapshots_mb": round(int(snap) / mb, 2),
        "statements_mb": round(int(statements) / mb, 2),
        "telemetry_rows": int(rows),
    }


def _admin() -> tuple[str, Engine]:
    url = os.environ.get("V2G_TEST_DATABASE_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    return url, create_engine(url, isolation_level="AUTOCOMMIT")


def _generate_into(kind: str, keep: str, n_evs: int, period: SettlementPeriod, seed: int, idle_min: int) -> None:
    if kind == "sqlite":
        generate(f"sqlite:///{keep}", n_evs, period, seed, idle_min)
        return
    url, admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{keep}"'))
    admin.dispose()
    generate(make_url(url).set(database=keep).render_as_string(hide_password=False), n_evs, period, seed, idle_min)


def _exists(kind: str, keep: str) -> bool:
    if kind == "sqlite":
        return Path(keep).exists()
    _, admin = _admin()
    try:
        with admin.connect() as conn:
            return conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": keep}).first() is not None
    finally:
        admin.dispose()


def _copy(kind: str, keep: str) -> tuple[str, Callable[[], None]]:
    """A fresh copy of the telemetry database to run on, and a callable that drops it."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="v2g-bench-")
        copy = Path(folder) / "run.sqlite3"
        shutil.copyfile(keep, copy)
        return f"sqlite:///{copy}", lambda: shutil.rmtree(folder, ignore_errors=True)
    url, admin = _admin()
    name = f"v2g_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{keep}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(url).set(database=name).render_as_string(hide_password=False), drop


def _drop_generated(kind: str, keep: str) -> None:
    if kind == "sqlite":
        Path(keep).unlink(missing_ok=True)
        return
    _, admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{keep}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evs", type=int, default=10_000, help="EVs in the fleet (default 10000)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--period", default="2026-03", help="the month, YYYY-MM (default 2026-03: 2972 quarters)")
    parser.add_argument("--chunk", type=int, default=1000, help="EVs per database transaction")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--idle-reading-min", type=int, default=60, help="register reading interval while idle")
    parser.add_argument("--sample", type=int, default=10, help="EVs also settled by the Decimal path (checked equal)")
    parser.add_argument(
        "--telemetry-db",
        help="SQLite file or PostgreSQL database holding the generated telemetry: generated when missing, "
        "else reused (each run works on a copy); without it the telemetry is generated and dropped",
    )
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    period = SettlementPeriod.parse(args.period)
    if args.generate_only:
        _generate_into(args.db, args.telemetry_db, args.evs, period, args.seed, args.idle_reading_min)
        return
    keep = args.telemetry_db
    if keep is None:
        keep = (
            str(Path(tempfile.gettempdir()) / f"v2g-bench-{uuid.uuid4().hex[:10]}.sqlite3")
            if args.db == "sqlite"
            else f"v2g_bench_tpl_{uuid.uuid4().hex[:10]}"
        )
    generate_s = 0.0
    if not _exists(args.db, keep):
        started = time.perf_counter()  # in its own process: its memory is not the run's
        argv = [f"--evs={args.evs}", f"--db={args.db}", f"--period={args.period}", f"--seed={args.seed}"]
        argv += [f"--idle-reading-min={args.idle_reading_min}", f"--telemetry-db={keep}", "--generate-only"]
        subprocess.run([sys.executable, __file__, *argv], check=True)
        generate_s = time.perf_counter() - started
    url, drop = _copy(args.db, keep)
    engine = make_engine(url)
    try:
        service = SettlementService(
            sources=SqlSettlementSources(engine),
            prices=RecordedMarketData(),
            tx=sql_settlement_tx(engine),
            tariffs=load_tariffs(),
            clock=AfterThePeriod(period.end_at.astimezone(UTC)),
            config=SettlementConfig({"org-ellevio": "ellevio", "org-goteborg": "goteborg_energi"}),
            batch_size=args.chunk,
        )
        ev_ids = [f"ev-{i:06d}" for i in range(args.evs)]
        started = time.perf_counter()
        report = service.run_period(period, ev_ids)
        run_s = time.perf_counter() - started
        phases = {k: round(v, 2) for k, v in sorted(service.timings.items())}
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sizes = _sizes(engine)
        started = time.perf_counter()
        again = service.run_period(period, ev_ids)
        rerun_s = time.perf_counter() - started
        with sql_settlement_tx(engine)() as store:
            balances = store.account_balances(period)
        sample = random.Random(args.seed).sample(ev_ids, min(args.sample, args.evs))
        decimal_ms, exact = decimal_sample(service, period, sample)
        generated = metered_equal_generated(service, synthetic_month(period, args.evs, args.seed))
    finally:
        engine.dispose()
        drop()
        if args.telemetry_db is None:
            _drop_generated(args.db, keep)
    intervals = args.evs * quarters_of(period)
    figures = {
        "bench": "settlement",
        "evs": args.evs,
        "db": args.db,
        "period": period.code,
        "intervals": intervals,
        "telemetry_rows": sizes["telemetry_rows"],
        "generate_s": round(generate_s, 1),
        "wall_s": round(run_s, 2),
        "phases_s": phases,
        "rerun_s": round(rerun_s, 2),
        "peak_rss_mb": round(peak_rss, 1),
        "intervals_per_s": round(intervals / run_s),
        "db_mb": sizes["db_mb"],
        "snapshots_mb": sizes["snapshots_mb"],
        "statements_mb": sizes["statements_mb"],
        "posted": len(report.posted),
        "failed": len(report.failed),
        "fast_metered": report.fast_metered,
        "rerun_posted": len(again.posted),
        "ledger_sums_to_zero": sum(balances.values()) == 0,
        "metered_equal_generated": generated,
        "decimal_path_ms_per_ev": round(decimal_ms, 1),
        "sample_equal_to_decimal_path": exact,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
