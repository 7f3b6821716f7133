"""Settlement on SQLite and PostgreSQL: a period run from stored telemetry, exactly once.

The fleet of :mod:`tests.integration.settlement_support`: spot 50.00 EUR/MWh x 11.47 SEK/EUR = 57.35
öre/kWh; Ellevio's tariff (org-dso-1); the 2026 rules of tariffs.yaml.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.integration.settlement_support import FixedClock, register_ramp, seed, service
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.settlement_repo import SqlSettlementStore, sql_settlement_tx
from v2g.services.settlement.ports import ConcurrentPostingError
from v2g.settlement.economics import ContractTerms
from v2g.settlement.ledger import TxKind
from v2g.settlement.money import SettlementInputError
from v2g.settlement.periods import SettlementPeriod

JAN, FEB = SettlementPeriod(2026, 1), SettlementPeriod(2026, 2)
ROOT = Path(__file__).resolve().parents[2]


def ledger(engine: Engine) -> SqlSettlementStore:
    return SqlSettlementStore(engine.connect())


def lines(engine: Engine, ev_id: str) -> dict[str, Decimal]:
    with sql_settlement_tx(engine)() as store:
        summary = store.statement(JAN, ev_id)
    assert summary is not None
    return {x["line"]: Decimal(x["amount_sek"]) for x in summary["lines"]}


def test_a_period_is_posted_once_by_hand_and_a_rerun_posts_nothing(engine: Engine) -> None:
    seed(engine)
    with sql_settlement_tx(engine)() as store:  # owner 2 has a contract of their own
        store.add_contract("c-2", date(2025, 6, 1), ContractTerms(Decimal("0.80"), Decimal("40")), FixedClock().now())
    svc = service(engine)
    report = svc.run_period(JAN, ["ev-1", "ev-2"])
    assert [(r.subject, r.status, r.key) for r in report.results] == [
        ("ev-1", "posted", "settle/2026-01/ev-1/0"),
        ("ev-2", "posted", "settle/2026-01/ev-2/0"),
    ]
    ev1 = lines(engine, "ev-1")
    # ev-1 imported 6.0 kWh: spot 6 x 0.5735 = 3.441 -> 3.44; margin 6 x 0.05 = 0.30; fee 6 x 0.30 = 1.80;
    # energy tax 6 x 0.36 = 2.16; power charge (6 + 0 + 0) / 3 = 2 kW x 65 = 130.00;
    # VAT 25 % of 137.70 = 34.425 -> 34.43
    assert [ev1[k] for k in ("energy.spot", "energy.supplier_margin", "grid.energy_fee", "tax.energy")] == [
        Decimal("3.44"), Decimal("0.30"), Decimal("1.80"), Decimal("2.16"),
    ]  # fmt: skip
    assert (ev1["grid.power_charge"], ev1["tax.vat"]) == (Decimal("130.00"), Decimal("34.43"))
    # exported 3.0 kWh: 3 x 0.5735 = 1.7205 -> 1.72; grid benefit 3 x 0.05 = 0.15; wear 3 x 0.30 = 0.90
    assert (ev1["export.spot"], ev1["export.grid_benefit"], ev1["wear.allowance"]) == (
        Decimal("1.72"),
        Decimal("0.15"),
        Decimal("0.90"),
    )
    # reserve hour: 10.00 EUR x 11.47 = 114.70 SEK by capacity-hours held 4 : 1 -> 91.76 / 22.94;
    # 1.00 EUR repaid = 11.47 SEK, caused by ev-2 (plugged in half the hour): ev-2 nets 22.94 - 11.47 = 11.47.
    # ev-1 owner 0.70 x 91.76 = 64.232 -> 64.23, the aggregator keeps 27.53
    assert (ev1["reserve.owner_share"], ev1["reserve.aggregator_share"]) == (Decimal("64.23"), Decimal("27.53"))
    ev2 = lines(engine, "ev-2")
    # ev-2's own contract: 0.80 x 11.47 = 9.176 -> 9.18, the aggregator 2.29
    assert (ev2["reserve.owner_share"], ev2["reserve.aggregator_share"]) == (Decimal("9.18"), Decimal("2.29"))
    # ev-2 imported 1.5 kWh: power charge 1.5 / 3 = 0.5 kW x 65 = 32.50; VAT 25 % of
    # (0.86 + 0.08 + 0.45 + 32.50 + 0.54 = 34.43) = 8.6075 -> 8.61
    assert (ev2["grid.power_charge"], ev2["tax.vat"]) == (Decimal("32.50"), Decimal("8.61"))

    with sql_settlement_tx(engine)() as store:
        balances = store.account_balances()
        first = [t.digest for t in store.transactions_in(JAN)]
    assert sum(balances.values()) == 0
    # owner 1 owes 3.44 + 0.30 + 1.80 + 2.16 + 130.00 + 34.43 = 172.13 and is owed 1.72 + 0.15 + 64.23 + 0.90 = 67.00
    assert balances["owner:c-1"] == Decimal("105.13")
    assert balances["market:reserve"] == Decimal("91.76") + Decimal("11.47")

    again = svc.run_period(JAN, ["ev-2", "ev-1"])
    assert [(r.subject, r.status) for r in again.results] == [("ev-1", "unchanged"), ("ev-2", "unchanged")]
    with sql_settlement_tx(engine)() as store:
        assert [t.digest for t in store.transactions_in(JAN)] == first


def test_late_meter_data_is_a_correction_in_the_next_open_period(engine: Engine) -> None:
    seed(engine)
    svc = service(engine)
    svc.run_period(JAN, ["ev-1", "ev-2"])
    close = svc.close_period(JAN)
    assert close.transactions == 2
    assert sum(close.trial_balance.values()) == 0
    with sql_settlement_tx(engine)() as store:
        january = store.transactions_in(JAN)
    # readings from 20 Jan arrive in February: ev-2 charged 2.0 kWh at 10:00-10:20
    late = register_ramp("cp-2", "Energy.Active.Import.Register", datetime(2026, 1, 20, 10, tzinfo=UTC), 20, 21.5, 0.1)
    SqlDeviceStore(engine).write_batch(late, [], datetime(2026, 2, 3, tzinfo=UTC))
    report = svc.run_period(JAN, ["ev-1", "ev-2"])
    assert [(r.subject, r.status, r.key, r.kind, r.period) for r in report.results] == [
        ("ev-1", "unchanged", None, None, None),
        ("ev-2", "posted", "settle/2026-01/ev-2/1", "correction", "2026-02"),
    ]
    with sql_settlement_tx(engine)() as store:
        assert store.transactions_in(JAN) == january  # the closed period is untouched
        [correction] = store.transactions_in(FEB)
        assert (correction.kind, correction.settles) == (TxKind.CORRECTION, JAN)
        posted, count = store.subject_postings(JAN, "ev-2")
    delta = {p.line: p.amount_sek for p in correction.postings if p.account.code == "owner:c-2"}
    # spot: 3.5 kWh x 0.5735 = 2.00725 -> 2.01 (was 0.86): +1.15. Power charge: peaks 2.0 (20 Jan) and
    # 1.5 (10 Jan): 3.5 / 3 = 1.1666.. kW x 65 = 75.83 (was 32.50): +43.33
    assert (delta["energy.spot"], delta["grid.power_charge"]) == (Decimal("1.15"), Decimal("43.33"))
    assert count == 2
    new = lines(engine, "ev-2")
    owner = sum((p.amount_sek for p in posted if p.account.code == "owner:c-2"), Decimal(0))
    charged = sum(new[k] for k in ("energy.spot", "energy.supplier_margin", "grid.energy_fee", "grid.power_charge"))
    paid = new["reserve.owner_share"]
    assert owner == charged + new["tax.energy"] + new["tax.vat"] - paid  # settlement + correction = the new result
    assert svc.run_period(JAN, ["ev-2"]).results[0].status == "unchanged"


def test_snapshots_keep_the_period_when_retention_removes_the_telemetry(engine: Engine) -> None:
    seed(engine)
    svc = service(engine, FixedClock(datetime(2026, 1, 10, 23, tzinfo=UTC)))  # midnight in Stockholm
    assert svc.capture_metering(JAN, ["ev-1", "ev-2"]) == 20  # 10 local days (1-10 Jan) x 2 EVs so far
    assert svc.capture_metering(JAN, ["ev-1", "ev-2"]) == 0  # nothing new
    with pytest.raises(SettlementInputError, match=r"period: 2026-01 has not ended yet"):
        svc.run_period(JAN, ["ev-1"])
    svc.clock = FixedClock()
    svc.run_period(JAN, ["ev-1", "ev-2"])
    before = lines(engine, "ev-1")
    assert SqlDeviceStore(engine).purge_telemetry(datetime(2026, 2, 1, tzinfo=UTC)) > 0
    assert [r.status for r in svc.run_period(JAN, ["ev-1", "ev-2"]).results] == ["unchanged", "unchanged"]
    assert lines(engine, "ev-1") == before


def test_a_failure_inside_a_chunks_transaction_leaves_nothing_of_it(engine: Engine) -> None:
    seed(engine)
    real = sql_settlement_tx(engine)
    failed: list[str] = []

    class CrashError(Exception):
        pass

    class FailingStore(SqlSettlementStore):
        def save_statements(self, period, rows, at):  # type: ignore[no-untyped-def]
            if any(r.ev_id == "ev-2" for r in rows) and not failed:
                failed.append("ev-2")
                raise CrashError  # after the snapshot and ledger inserts, before the commit
            super().save_statements(period, rows, at)

    from contextlib import contextmanager

    @contextmanager
    def failing_tx():  # type: ignore[no-untyped-def]
        with engine.begin() as conn:
            yield FailingStore(conn)

    svc = service(engine)
    svc.tx = failing_tx
    svc.batch_size = 1  # one EV per transaction
    with pytest.raises(CrashError):
        svc.run_period(JAN, ["ev-1", "ev-2"])
    with real() as store:
        assert [t.subject for t in store.transactions_in(JAN)] == ["ev-1"]
        assert store.meter_months(JAN, ["ev-2"]) == {}
    report = svc.run_period(JAN, ["ev-1", "ev-2"])
    assert [(r.subject, r.status) for r in report.results] == [("ev-1", "unchanged"), ("ev-2", "posted")]


def test_a_run_killed_mid_way_resumes_without_loss_or_double_posting(engine: Engine) -> None:
    seed(engine)
    url = engine.url.render_as_string(hide_password=False)
    script = (
        "import sys, time\n"
        "from v2g.adapters.db.engine import make_engine\n"
        "from tests.integration.settlement_support import service\n"
        "from v2g.settlement.periods import SettlementPeriod\n"
        "def done(result):\n"
        "    print(result.subject, result.status, flush=True)\n"
        "    time.sleep(60)\n"
        "svc = service(make_engine(sys.argv[1]), on_done=done)\n"
        "svc.batch_size = 1\n"
        "svc.run_period(SettlementPeriod(2026, 1), ['ev-1', 'ev-2'])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    with subprocess.Popen(
        [sys.executable, "-c", script, url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        try:
            first = proc.stdout.readline()
            os.kill(proc.pid, signal.SIGKILL)  # killed after ev-1 committed, while it would go on to ev-2
        finally:
            proc.kill()
            _, stderr = proc.communicate(timeout=30)
    assert first.split() == ["ev-1", "posted"], stderr
    assert proc.returncode == -signal.SIGKILL
    with sql_settlement_tx(engine)() as store:
        assert [t.subject for t in store.transactions_in(JAN)] == ["ev-1"]
    report = service(engine).run_period(JAN, ["ev-1", "ev-2"])
    assert [(r.subject, r.status) for r in report.results] == [("ev-1", "unchanged"), ("ev-2", "posted")]
    with sql_settlement_tx(engine)() as store:
        assert [t.key for t in store.transactions_in(JAN)] == ["settle/2026-01/ev-1/0", "settle/2026-01/ev-2/0"]


def test_the_ledger_is_append_only_and_keys_are_unique(engine: Engine) -> None:
    seed(engine)
    service(engine).run_period(JAN, ["ev-1"])
    with sql_settlement_tx(engine)() as store:
        tx = store.transaction("settle/2026-01/ev-1/0")
    assert tx is not None
    duplicate = pytest.raises(
        ConcurrentPostingError, match=r"settle/2026-01/ev-1/0\]: the key was posted by another run"
    )
    with duplicate, sql_settlement_tx(engine)() as store:
        store.append(tx, FixedClock().now())
    for statement in (
        "UPDATE ledger_postings SET amount_sek = 0.01",
        "DELETE FROM ledger_postings",
        "UPDATE ledger_transactions SET description = 'x'",
        "DELETE FROM ledger_transactions",
    ):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with sql_settlement_tx(engine)() as store:
        assert store.transaction("settle/2026-01/ev-1/0") == tx


def test_periods_close_once_and_in_order(engine: Engine) -> None:
    seed(engine)
    svc = service(engine, FixedClock(datetime(2026, 3, 2, tzinfo=UTC)))
    svc.run_period(JAN, ["ev-1"])
    svc.close_period(JAN)
    with pytest.raises(SettlementInputError, match="period: 2026-01 is already closed"):
        svc.close_period(JAN)
    with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger_period_closes"))
    # a correction of January after its close lands in February, so February closes with it
    late = register_ramp("cp-1", "Energy.Active.Import.Register", datetime(2026, 1, 25, 8, tzinfo=UTC), 10, 106.0, 0.1)
    SqlDeviceStore(engine).write_batch(late, [], datetime(2026, 2, 5, tzinfo=UTC))
    assert svc.run_period(JAN, ["ev-1"]).results[0].period == "2026-02"
    assert svc.close_period(FEB).transactions == 1


def test_an_ev_whose_dso_has_no_tariff_is_reported_not_posted(engine: Engine) -> None:
    seed(engine)
    svc = service(engine)
    svc.config = type(svc.config)({})
    report = svc.run_period(JAN, ["ev-1"])
    [result] = report.failed
    assert "ev[ev-1].dso_tariff: grid area GA-1 (DSO organisation 'org-dso-1') has no tariff" in (result.error or "")
    with sql_settlement_tx(engine)() as store:
        assert store.transactions_in(JAN) == []


def test_march_has_its_own_hours_around_the_clock_change(engine: Engine) -> None:
    # March 2026 in Stockholm: 31 days, one of them 23 h long (29 Mar) -> 743 h = 2972 quarters
    march = SettlementPeriod(2026, 3)
    assert (march.end_at - march.start_at) == timedelta(hours=743)


def test_reserve_money_no_ev_earned_is_posted_for_the_group(engine: Engine) -> None:
    seed(engine)
    from v2g.adapters.db.market_repo import SqlMarketStore
    from v2g.dispatch.verification import DeliveryRecord
    from v2g.markets.rules import Product

    hour = datetime(2026, 1, 15, 10, tzinfo=UTC)  # no plan covers it: nobody held the reserve
    record = DeliveryRecord("g-1", Product.FCR_D_UP, hour, 0.1, 0, 0, 1.0, 0, 0, Decimal("2.00"), Decimal("0"), {})
    with engine.begin() as conn:
        SqlMarketStore(conn).save_delivery([record])
    svc = service(engine)
    report = svc.run_period(JAN, ["ev-1"])
    assert [(r.subject, r.status) for r in report.results] == [("ev-1", "posted"), ("group:g-1", "posted")]
    with sql_settlement_tx(engine)() as store:
        [tx] = store.transactions_settling(JAN, "group:g-1")
    # 2.00 EUR x 11.47 = 22.94 SEK from the market to the aggregator
    assert sorted((p.account.code, p.amount_sek) for p in tx.postings) == [
        ("aggregator:reserve_share", Decimal("-22.94")),
        ("market:reserve", Decimal("22.94")),
    ]
    assert [r.status for r in svc.run_period(JAN, ["ev-1"]).results] == ["unchanged", "unchanged"]


def test_the_platform_builds_settlement_on_the_recorded_prices(engine: Engine) -> None:
    from v2g.bootstrap import bootstrap
    from v2g.config import Settings

    seed(engine)
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        settlement_dso_tariffs={"org-dso-1": "goteborg_energi"},
    )
    platform = bootstrap(settings, engine=engine, clock=FixedClock())
    assert platform.settlement is not None
    assert [job.name for job in platform.scheduler.jobs if "settle" in job.name] == ["settlement"]  # the daily job
    report = platform.settlement.run_period(JAN, ["ev-1", "ev-2"])
    assert [(r.subject, r.status) for r in report.results] == [("ev-1", "posted"), ("ev-2", "posted")]
    with sql_settlement_tx(engine)() as store:
        summary = store.statement(JAN, "ev-1")
        assert sum(store.account_balances().values()) == 0
    assert summary is not None
    assert summary["dso_tariff"] == "goteborg_energi"
    # Göteborg Energi: 35.00 SEK/kW x 2 kW = 70.00 (the recorded spot prices vary; the power charge does not)
    assert {x["line"]: x["amount_sek"] for x in summary["lines"]}["grid.power_charge"] == "70.00"
