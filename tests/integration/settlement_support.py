"""A small fleet with stored telemetry, a plan and a verified market hour, for the settlement tests
(also imported by the subprocess that is killed mid-run)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine

from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.market_repo import SqlMarketStore
from v2g.adapters.db.operations_repo import SqlPlanStore
from v2g.adapters.db.settlement_repo import SqlSettlementSources, sql_settlement_tx
from v2g.devices import MeterSample, TransactionEventIn
from v2g.dispatch.verification import DeliveryRecord
from v2g.fleet.model import Charger, ChargerProtocol, Customer, GridArea, PriceArea, Site, Vehicle
from v2g.markets.bids import BiddingGroup, ControlMode
from v2g.markets.rules import Product
from v2g.services.settlement.service import SettlementConfig, SettlementService, SubjectResult
from v2g.settlement.tariffs import load_tariffs

DAY = datetime(2026, 1, 10, tzinfo=UTC)
AFTER_JANUARY = datetime(2026, 2, 2, 9, tzinfo=UTC)
SPOT_EUR_PER_MWH = 50.0  # x 11.47 SEK/EUR / 10 = 57.35 öre/kWh


@dataclass
class FixedClock:
    at: datetime = AFTER_JANUARY

    def now(self) -> datetime:
        return self.at


class FixedPrices:
    """One day-ahead price for every quarter (the port the recorded prices fill in production)."""

    def day_ahead_eur_per_mwh(self, area: PriceArea, start_at: datetime, n_quarters: int) -> Sequence[float]:
        return (SPOT_EUR_PER_MWH,) * n_quarters


def register_ramp(
    charger_id: str, measurand: str, start: datetime, minutes: int, kwh0: float, kwh_per_min: float
) -> list[MeterSample]:
    """A register read every minute for ``minutes`` minutes (inclusive of both ends), in Wh."""
    return [
        MeterSample(
            charger_id, 1, measurand, start + timedelta(minutes=k), round((kwh0 + kwh_per_min * k) * 1000, 1), "Wh"
        )
        for k in range(minutes + 1)
    ]


def constant(charger_id: str, measurand: str, start: datetime, minutes: int, kwh: float) -> list[MeterSample]:
    return register_ramp(charger_id, measurand, start, minutes, kwh, 0.0)


def seed(engine: Engine) -> None:
    """Two owners, two EVs and chargers in one grid area; a night charge, a discharge, a reserve hour.

    ev-1 (cp-1): imports 6.0 kWh on 10 Jan 02:00-03:00 UTC (plugged 01:55-03:05), exports 3.0 kWh on
    12 Jan 17:00-17:30. ev-2 (cp-2): imports 1.5 kWh on 10 Jan 02:00-02:30 (plugged 02:00-02:30).
    Market hour 10 Jan 02:00 FCR-N: 10.00 EUR capacity, 1.00 EUR repaid; the plan in force gave ev-1
    4 kW and ev-2 2 kW; ev-2 was plugged in half the hour (held 1 kW-h, short 1 kW-h).
    """
    created = datetime(2025, 12, 1, tzinfo=UTC)
    with engine.begin() as conn:
        fleet = SqlFleetRepository(conn)
        fleet.add_grid_area(GridArea("GA-1", "Area 1", "org-dso-1", PriceArea.SE3, 500.0, 400.0, 600.0))
        for n in (1, 2):
            fleet.add_customer(Customer(f"c-{n}", f"Owner {n}", f"owner{n}@example.se", created))
            fleet.add_site(Site(f"s-{n}", f"c-{n}", f"Gatan {n}", PriceArea.SE3, "GA-1", main_fuse_a=25))
            fleet.add_vehicle(Vehicle(f"ev-{n}", f"c-{n}", "Volvo", "EX30", 64.0, 11.0, 11.0, site_id=f"s-{n}"))
            fleet.add_charger(Charger(f"cp-{n}", f"s-{n}", "Wallbox", "Quasar 2", ChargerProtocol.OCPP21, 11.0, 11.0))
        market = SqlMarketStore(conn)
        market.add_group(BiddingGroup("g-1", "bsp", PriceArea.SE3, ControlMode.CENTRAL), created)
        market.save_delivery(
            [
                DeliveryRecord(
                    "g-1", Product.FCR_N, DAY + timedelta(hours=2), 0.006, 0.001, 0.0005, 1.0, 0.0, 0.1,
                    Decimal("10.00"), Decimal("1.00"), {"ev-1": 0.0005, "ev-2": -0.0001},
                )
            ]
        )  # fmt: skip
    SqlPlanStore(engine).save_plan(
        created_at=DAY + timedelta(hours=1),
        start_at=DAY + timedelta(hours=1),
        n_intervals=8,
        strategy="v2g-reserves",
        status="optimal",
        trigger="test",
        n_evs=2,
        objective_eur=0.0,
        plan={
            "evs": [
                {"id": "ev-1", "charger_id": "cp-1", "reserve_kw": {"fcr_n": [0.0, 4.0]}},
                {"id": "ev-2", "charger_id": "cp-2", "reserve_kw": {"fcr_n": [0.0, 2.0]}},
            ]
        },
    )
    imp, exp = "Energy.Active.Import.Register", "Energy.Active.Export.Register"
    night = DAY + timedelta(hours=2)
    evening = datetime(2026, 1, 12, 17, tzinfo=UTC)
    samples = [
        *register_ramp("cp-1", imp, night, 60, 100.0, 0.1),
        *constant("cp-1", exp, night, 60, 50.0),
        *constant("cp-1", imp, evening, 30, 106.0),
        *register_ramp("cp-1", exp, evening, 30, 50.0, 0.1),
        *register_ramp("cp-2", imp, night, 30, 20.0, 0.05),
        *constant("cp-2", exp, night, 30, 0.0),
    ]
    events = [
        TransactionEventIn("cp-1", "t-1", 0, "Started", night - timedelta(minutes=5), meter_wh=100_000.0),
        TransactionEventIn("cp-1", "t-1", 1, "Ended", night + timedelta(minutes=65), meter_wh=106_000.0),
        TransactionEventIn("cp-2", "t-2", 0, "Started", night, meter_wh=20_000.0),
        TransactionEventIn("cp-2", "t-2", 1, "Ended", night + timedelta(minutes=30), meter_wh=21_500.0),
    ]
    SqlDeviceStore(engine).write_batch(samples, events, night)


def service(
    engine: Engine, clock: FixedClock | None = None, on_done: Callable[[SubjectResult], None] | None = None
) -> SettlementService:
    return SettlementService(
        sources=SqlSettlementSources(engine),
        prices=FixedPrices(),
        tx=sql_settlement_tx(engine),
        tariffs=load_tariffs(),
        clock=clock or FixedClock(),
        config=SettlementConfig({"org-dso-1": "ellevio"}),
        on_subject_done=on_done,
    )
