"""The batch run equals the Decimal reference EV by EV, on SQLite and PostgreSQL.

A fleet with a month of stored telemetry of every kind: clean registers (the bulk path), registers
in kWh, gaps with an advance (power-shaped, plugged-time, linear), a register reset, telemetry
starting mid-month, charging transactions with meter start and stop, random day-ahead prices with
negative ones, reserve money. For an EV of each kind the stored snapshot, statement summary and
ledger equal what the per-EV Decimal path (``meter_intervals``, ``settle_ev_period``,
``statement_summary``) gives from the same stored data, to the öre and string for string.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from tests.integration.settlement_support import FixedClock, seed, service
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.settlement_repo import sql_settlement_tx
from v2g.devices import MeterSample, TransactionEventIn
from v2g.fleet.model import Charger, ChargerProtocol, Customer, PriceArea, Site, Vehicle
from v2g.services.settlement.summary import statement_summary
from v2g.settlement.canonical import digest
from v2g.settlement.economics import ContractTerms, settle_ev_period
from v2g.settlement.ledger import dso_account, line_postings, net_by_key, owner_account
from v2g.settlement.meter_arrays import blob_intervals
from v2g.settlement.metering import meter_intervals
from v2g.settlement.periods import SettlementPeriod

JAN = SettlementPeriod(2026, 1)
IMP, EXP = "Energy.Active.Import.Register", "Energy.Active.Export.Register"
KINDS = ("clean", "clean_kwh", "gap_power", "gap_plugged", "gap_linear", "reset", "late_start", "clean")


class RandomPrices:
    """Day-ahead prices to the cent, a fifth of them negative."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.values = [rng.randrange(-8_000, 30_000) / 100 for _ in range(3000)]

    def day_ahead_eur_per_mwh(self, area: PriceArea, start_at: datetime, n_quarters: int) -> Sequence[float]:
        return self.values[:n_quarters]


def _telemetry(rng: random.Random, cp: str, kind: str) -> tuple[list[MeterSample], list[TransactionEventIn]]:
    start = JAN.start_at - timedelta(hours=1)
    n = int((JAN.end_at - start) / timedelta(minutes=15)) + 4
    units = {IMP: rng.randrange(0, 10**7), EXP: rng.randrange(0, 10**6)}
    kwh = kind == "clean_kwh"
    samples: list[MeterSample] = []
    events: list[TransactionEventIn] = []
    skip_from = start + timedelta(days=rng.randrange(3, 25), hours=rng.randrange(0, 20))
    skip_to = skip_from + timedelta(hours=3)
    reset_at = start + timedelta(days=20)

    def read(m: str, at: datetime) -> None:
        if kind.startswith("gap") and skip_from < at < skip_to:
            return
        if kind == "late_start" and at < start + timedelta(days=4):
            return
        u = units[m]
        value, unit = (u / 10_000, "kWh") if kwh else (u / 10, "Wh")
        samples.append(MeterSample(cp, 1, m, at, value, unit))

    for k in range(n):
        qs = start + k * timedelta(minutes=15)
        if kind == "reset" and qs == reset_at:
            units[IMP] = rng.randrange(0, 1000)
        for m in (IMP, EXP):
            read(m, qs)
        flow = {IMP: rng.random() < 0.12, EXP: rng.random() < 0.05}
        for m in (IMP, EXP):
            if flow[m]:
                for step in (5, 10):
                    units[m] += rng.randrange(0, 9_200)
                    read(m, qs + timedelta(minutes=step))
                units[m] += rng.randrange(0, 9_200)
        if kind == "gap_power" and skip_from <= qs < skip_to:
            for minute in range(0, 15, 2):
                p = 0.0 if not flow[IMP] else rng.randrange(1, 11_000) / 1.0
                samples.append(MeterSample(cp, 1, "Power.Active.Import", qs + timedelta(minutes=minute), p, "W"))
    if kind == "gap_plugged":
        events = [
            TransactionEventIn(cp, f"t-{cp}", 0, "Started", skip_from + timedelta(minutes=20), meter_wh=None),
            TransactionEventIn(cp, f"t-{cp}", 1, "Ended", skip_to - timedelta(minutes=40), meter_wh=None),
        ]
    return samples, events


def gap_fleet(engine: Engine, n: int, seed_: int) -> list[str]:
    """The settlement tests' fleet and ``n`` more EVs with a month of telemetry each."""
    seed(engine)
    rng = random.Random(seed_)
    created = datetime(2025, 12, 1, tzinfo=UTC)
    with engine.begin() as conn:
        fleet = SqlFleetRepository(conn)
        for i in range(10, 10 + n):
            fleet.add_customer(Customer(f"c-{i}", f"Owner {i}", f"owner{i}@example.se", created))
            fleet.add_site(Site(f"s-{i}", f"c-{i}", f"Gatan {i}", PriceArea.SE3, "GA-1", main_fuse_a=25))
            fleet.add_vehicle(Vehicle(f"ev-{i}", f"c-{i}", "Kia", "EV6", 77.0, 11.0, 11.0, site_id=f"s-{i}"))
            fleet.add_charger(Charger(f"cp-{i}", f"s-{i}", "Wallbox", "Quasar 2", ChargerProtocol.OCPP21, 11.0, 11.0))
    store = SqlDeviceStore(engine)
    for i in range(10, 10 + n):
        samples, events = _telemetry(rng, f"cp-{i}", KINDS[(i - 10) % len(KINDS)])
        store.write_batch(samples, events, JAN.end_at)
    return ["ev-1", "ev-2", *(f"ev-{i}" for i in range(10, 10 + n))]


def test_a_sample_of_batch_settled_evs_equals_the_decimal_path(engine: Engine) -> None:
    ev_ids = gap_fleet(engine, 8, seed_=3)  # every kind once ("clean" twice)
    svc = service(engine)
    svc.prices = RandomPrices(5)
    svc.batch_size = 5  # several chunks
    with sql_settlement_tx(engine)() as store:  # one owner has a contract of their own
        store.add_contract("c-12", JAN.first_day, ContractTerms(Decimal("0.85"), Decimal("45")), FixedClock().now())
    report = svc.run_period(JAN, ev_ids)
    assert [r.status for r in report.results if r.subject.startswith("ev-")] == ["posted"] * len(ev_ids)
    assert report.fast_metered == 3  # the clean ones (twice "clean", once "clean_kwh"); the rest one by one
    reserve = svc.reserve_per_ev(JAN)
    spot = svc.spot_prices(PriceArea.SE3, JAN)
    accounts = {a.ev_id: a for a in svc.sources.ev_accounts(ev_ids)}
    sample = [f"ev-{i}" for i in range(11, 17)] + ["ev-1"]  # each kind but the plain clean one, and a seeded EV
    for ev_id in sample:
        account = accounts[ev_id]
        data = svc.sources.meter_data(account, JAN.start_at, JAN.end_at)
        intervals = meter_intervals(data, JAN.start_at, JAN.end_at, svc.tariffs.metering)
        with sql_settlement_tx(engine)() as store:
            contract = store.contract_terms(account.customer_id, JAN.first_day) or ContractTerms.default(
                svc.tariffs, JAN.first_day
            )
            snapshot = store.meter_months(JAN, [ev_id])[ev_id]
            stored_summary = store.statement(JAN, ev_id)
            posted = [p for t in store.transactions_settling(JAN, ev_id) for p in t.postings]
        assert blob_intervals(snapshot.data, JAN) == intervals, ev_id
        settled = settle_ev_period(
            period=JAN,
            ev_id=ev_id,
            customer_id=account.customer_id,
            intervals=intervals,
            spot_ore_per_kwh=spot,
            tariffs=svc.tariffs,
            dso_key="ellevio",
            contract=contract,
            reserve_net_sek=reserve.get(ev_id, Decimal(0)),
        )
        reference = json.loads(json.dumps(statement_summary(settled, contract, svc.tariffs), sort_keys=True))
        assert stored_summary == reference, ev_id
        assert digest(stored_summary) == digest(reference)
        target = line_postings(
            settled.lines, owner=owner_account(account.customer_id), dso=dso_account("ellevio"), subject=ev_id
        )
        assert net_by_key(posted) == net_by_key(target), ev_id
    again = svc.run_period(JAN, ev_ids)
    assert {r.status for r in again.results} == {"unchanged"}
    with sql_settlement_tx(engine)() as store:
        assert sum(store.account_balances().values()) == 0
