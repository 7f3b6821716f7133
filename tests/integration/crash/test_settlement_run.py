"""SIGKILL inside a settlement run's database transaction, on SQLite and PostgreSQL: after a re-run
the ledger is exactly the ledger of a run that was never interrupted (no loss, no double posting).

The run is its own process (:mod:`settlement_main`) on the fleet of
:mod:`tests.integration.settlement_support` plus four more EVs. It is killed after the ledger rows of
the chunk holding the third EV (the third and fourth, two EVs per transaction) were inserted and
before that transaction committed. Then: the two EVs committed before are in the ledger once,
nothing of the third and fourth (their ledger rows, metering snapshots and statements were one
transaction); a re-run posts the third EV onwards once and nothing for the first two; every
transaction's key and content digest equal those of an uninterrupted run of the same data on a
fresh database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.integration.settlement_support import DAY, register_ramp, seed, service
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.migrate import upgrade
from v2g.adapters.db.settlement_repo import sql_settlement_tx
from v2g.fleet.model import Charger, ChargerProtocol, Customer, PriceArea, Site, Vehicle
from v2g.settlement.periods import SettlementPeriod

pytestmark = pytest.mark.slow

JAN = SettlementPeriod(2026, 1)
ROOT = Path(__file__).resolve().parents[3]
MAIN = Path(__file__).with_name("settlement_main.py")
EVS = [f"ev-{n}" for n in range(1, 7)]


def crash_fleet(engine: Engine) -> None:
    """The two EVs of the settlement tests and four more, each charging n kWh one January night."""
    seed(engine)
    with engine.begin() as conn:
        fleet = SqlFleetRepository(conn)
        for n in range(3, 7):
            fleet.add_customer(Customer(f"c-{n}", f"Owner {n}", f"owner{n}@example.se", DAY - timedelta(days=40)))
            fleet.add_site(Site(f"s-{n}", f"c-{n}", f"Gatan {n}", PriceArea.SE3, "GA-1", main_fuse_a=25))
            fleet.add_vehicle(Vehicle(f"ev-{n}", f"c-{n}", "Kia", "EV6", 77.0, 11.0, 11.0, site_id=f"s-{n}"))
            fleet.add_charger(Charger(f"cp-{n}", f"s-{n}", "Wallbox", "Quasar 2", ChargerProtocol.OCPP21, 11.0, 11.0))
    samples = [
        s
        for n in range(3, 7)
        for s in register_ramp(f"cp-{n}", "Energy.Active.Import.Register", DAY + timedelta(hours=n), 10 * n, 50.0, 0.1)
    ]
    SqlDeviceStore(engine).write_batch(samples, [], DAY)


def ledger_of(engine: Engine) -> list[tuple[str, str]]:
    with sql_settlement_tx(engine)() as store:
        return [(t.key, t.digest) for t in store.transactions_in(JAN)]


def test_sigkill_inside_a_chunks_transaction_loses_and_doubles_nothing(engine: Engine, tmp_path: Path) -> None:
    crash_fleet(engine)
    url = engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    with subprocess.Popen(
        [sys.executable, str(MAIN), url, "ev-3"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        lines: list[str] = []
        try:
            while not lines or not lines[-1].startswith("inside"):
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line.strip())
            os.kill(proc.pid, signal.SIGKILL)  # inside the chunk of ev-3 and ev-4: ledger rows inserted, not committed
        finally:
            proc.kill()
            _, stderr = proc.communicate(timeout=30)
    assert lines == ["committed ev-1 posted", "committed ev-2 posted", "inside ev-3"], stderr
    assert proc.returncode == -signal.SIGKILL
    assert [key for key, _ in ledger_of(engine)] == ["settle/2026-01/ev-1/0", "settle/2026-01/ev-2/0"]
    with sql_settlement_tx(engine)() as store:
        assert store.meter_months(JAN, ["ev-3", "ev-4"]) == {}
        assert store.latest_statement_digests(JAN, ["ev-3", "ev-4"]) == {}

    report = service(engine).run_period(JAN, EVS)
    assert [(r.subject, r.status) for r in report.results] == [
        ("ev-1", "unchanged"), ("ev-2", "unchanged"),
        ("ev-3", "posted"), ("ev-4", "posted"), ("ev-5", "posted"), ("ev-6", "posted"),
    ]  # fmt: skip
    assert [r.status for r in service(engine).run_period(JAN, EVS).results] == ["unchanged"] * 6

    reference = make_engine(f"sqlite:///{tmp_path / 'reference.sqlite3'}")
    try:
        upgrade(reference)
        crash_fleet(reference)
        service(reference).run_period(JAN, EVS)
        assert ledger_of(engine) == ledger_of(reference)
    finally:
        reference.dispose()
    with sql_settlement_tx(engine)() as store:
        assert sum(store.account_balances().values()) == 0
