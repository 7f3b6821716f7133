"""Fixtures for the device layer: a migrated database with a site, registered chargers, a live CSMS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.adapters.ocpp.gateway import OcppChargerGateway
from v2g.adapters.ocpp.server import CsmsConfig, CsmsServer
from v2g.devices import ChargerRegistration, IdTokenRecord, TokenStatus
from v2g.fleet.model import ChargerProtocol, Customer, GridArea, PriceArea, Site
from v2g.services.devices.installation import register_charger
from v2g.sim.battery import Battery, BatterySpec
from v2g.sim.ocpp_client import SIM_ID_TOKEN, Faults, SimCharger
from v2g.sim.wallbox import Wallbox

SITE_ID = "site-dev-1"
HASHER = Argon2Hasher(light=True)


def seed_site(engine: Engine) -> None:
    with engine.begin() as conn:
        repo = SqlFleetRepository(conn)
        repo.add_grid_area(GridArea("GA-T", "Test area", None, PriceArea.SE3, 500.0, 400.0, 600.0))
        repo.add_customer(Customer("cust-t", "Test Owner", "owner@example.se", datetime(2026, 1, 1, tzinfo=UTC)))
        repo.add_site(Site(SITE_ID, "cust-t", "Testgatan 1", PriceArea.SE3, "GA-T", main_fuse_a=25))


@dataclass
class Platform:
    engine: Engine
    store: SqlDeviceStore
    server: CsmsServer
    gateway: OcppChargerGateway
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    def register(
        self,
        protocol: str,
        *,
        charger_id: str | None = None,
        max_discharge_kw: float = 11.0,
        security_profile: int = 1,
    ) -> ChargerRegistration:
        proto = {"1.6": ChargerProtocol.OCPP16, "2.0.1": ChargerProtocol.OCPP201, "2.1": ChargerProtocol.OCPP21}[
            protocol
        ]
        reg = register_charger(
            self.store,
            HASHER,
            site_id=SITE_ID,
            vendor="V2G-Sim",
            model="BiDi-11",
            protocol=proto,
            max_charge_kw=11.0,
            max_discharge_kw=max_discharge_kw,
            charger_id=charger_id,
            security_profile=security_profile,
        )
        # the simulated owner's card is registered for the charger, as provisioning does
        self.store.add_id_token(IdTokenRecord(SIM_ID_TOKEN, TokenStatus.ACCEPTED, charger_id=reg.charger.id))
        return reg

    def sim(
        self,
        reg: ChargerRegistration,
        protocol: str,
        *,
        faults: Faults | None = None,
        max_discharge_kw: float = 11.0,
        url: str | None = None,
    ) -> SimCharger:
        wallbox = Wallbox(reg.charger.id, 11.0, max_discharge_kw)
        return SimCharger(
            reg.charger.id,
            reg.password,
            url or self.url,
            protocol,
            wallbox,
            faults=faults,
            response_timeout_s=5.0,
        )


def ev_battery(soc_kwh: float = 30.0) -> Battery:
    spec = BatterySpec(capacity_kwh=60.0, max_charge_kw=11.0, max_discharge_kw=11.0, soc_min_kwh=6.0, name="ev")
    return Battery(spec, soc_kwh=soc_kwh)


async def wait_for(predicate: Callable[[], bool], limit_s: float = 20.0) -> None:
    """Poll ``predicate`` until true or fail after ``limit_s`` (generous: a bound, not a speed check)."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def settle(platform: Platform, charger_id: str) -> None:
    """Wait until the CSMS finished the boot re-sync (default profile and test profile sent)."""

    def done() -> bool:
        return any(p["purpose"] == "connectivity_test" for p in platform.store.profiles(charger_id))

    await wait_for(done)


TEST_CONFIG = CsmsConfig(
    heartbeat_interval_s=60,
    response_timeout_s=3.0,
    profile_validity=timedelta(minutes=30),
)


@pytest.fixture
def platform_db(engine: Engine) -> str:
    """A migrated database with the test site, as a URL (for the CLI)."""
    seed_site(engine)
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
async def platform(engine: Engine) -> AsyncIterator[Platform]:
    seed_site(engine)
    store = SqlDeviceStore(engine)
    server = CsmsServer(store, TEST_CONFIG)
    port = await server.start("127.0.0.1", 0)
    try:
        yield Platform(engine, store, server, OcppChargerGateway(server), port)
    finally:
        await server.stop()
