"""The one place that wires concrete adapters from settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import Engine

from v2g.adapters.db.devices_repo import SqlCredentialStore, SqlDeviceStore
from v2g.adapters.db.engine import database_health, make_engine
from v2g.adapters.db.fleet_repo import SqlGridAreas
from v2g.adapters.db.journey_repo import SqlJourneyRepository, sql_unit_of_work
from v2g.adapters.db.market_repo import SqlMarketStore, sql_market_tx
from v2g.adapters.db.migrate import ensure_schema_current
from v2g.adapters.db.operations_repo import SqlFleetState, SqlPlanStore
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.blueprint import load_blueprint
from v2g.config import Settings
from v2g.services.clock import Clock, SystemClock
from v2g.services.devices.handlers import device_handlers
from v2g.services.devices.ports import DeviceRecords
from v2g.services.fleet.ports import GridAreaReader
from v2g.services.journey.automation import ServiceContext, ServiceRegistry
from v2g.services.journey.handlers import default_registry
from v2g.services.journey.service import JourneyService
from v2g.services.markets.handlers import market_handlers
from v2g.services.markets.ports import MarketTx
from v2g.services.operations.status import DispatchSnapshot
from v2g.services.operations.view import OperationsView

BSP_ORG_ID = "bsp"  # the organisation acting as balancing service provider (actor bsp)


@dataclass
class Platform:
    """Everything a running platform needs, built once at start-up."""

    settings: Settings
    engine: Engine
    clock: Clock = field(default_factory=SystemClock)
    registry: ServiceRegistry = field(default_factory=default_registry)
    journeys: JourneyService | None = None
    # -- storage behind ports for the API and the CLI (built by attach_ports) --
    devices: DeviceRecords | None = None
    grid_areas: GridAreaReader | None = None
    market_tx: MarketTx | None = None
    health: Callable[[], str] | None = None  # raises when the database does not answer; returns its kind
    operations: OperationsView | None = None
    # -- filled by the runtime when it runs the dispatcher and the scheduler --
    last_dispatch: Callable[[], DispatchSnapshot | None] = field(default=lambda: None)
    jobs_state: Callable[[], list[dict[str, Any]]] = field(default=list)


def _market_store(ctx: ServiceContext) -> SqlMarketStore:
    """Market storage on the journey's own connection (one transaction per task)."""
    repo = ctx.repo
    if not isinstance(repo, SqlJourneyRepository):  # pragma: no cover - wiring error
        msg = "market services need the SQL journey repository"
        raise TypeError(msg)
    return SqlMarketStore(repo.conn)


def _credential_store(ctx: ServiceContext) -> SqlCredentialStore:
    """Charger credentials on the journey's own connection (one transaction per task)."""
    repo = ctx.repo
    if not isinstance(repo, SqlJourneyRepository):  # pragma: no cover - wiring error
        msg = "device services need the SQL journey repository"
        raise TypeError(msg)
    return SqlCredentialStore(repo.conn)


def bootstrap(settings: Settings | None = None, *, check_schema: bool = True, clock: Clock | None = None) -> Platform:
    """Build the platform; refuse an unmigrated or newer schema unless ``check_schema`` is off."""
    settings = settings or Settings()
    engine = make_engine(settings.database_url)
    if check_schema:
        ensure_schema_current(engine)
    platform = Platform(settings=settings, engine=engine, clock=clock or SystemClock())
    # Areas register the automated-service handlers they own here, one call each, e.g.
    # platform.registry.register("verify_connectivity", handler, replace=True)
    for name, handler in market_handlers(_market_store, bsp_org_id=BSP_ORG_ID).items():
        platform.registry.register(name, handler, replace=True)
    for name, handler in device_handlers(_credential_store, Argon2Hasher()).items():
        platform.registry.register(name, handler, replace=True)
    if settings.blueprint_path.is_file():
        platform.journeys = JourneyService(
            sql_unit_of_work(engine), platform.clock, load_blueprint(settings.blueprint_path), platform.registry
        )
    attach_ports(platform)
    return platform


def attach_ports(platform: Platform) -> Platform:
    """Build the storage ports the API and the CLI read through, over the platform's engine and clock."""
    engine = platform.engine
    platform.devices = SqlDeviceStore(engine, clock=platform.clock)
    platform.grid_areas = SqlGridAreas(engine)
    platform.market_tx = sql_market_tx(engine)
    platform.health = partial(database_health, engine)
    platform.operations = OperationsView(
        plans=SqlPlanStore(engine),
        fleet=SqlFleetState(engine),
        market_tx=platform.market_tx,
        chargers=platform.devices,
        last_dispatch=lambda: platform.last_dispatch(),  # read at call time: the runtime replaces it
        jobs=lambda: platform.jobs_state(),
        clock=platform.clock,
    )
    return platform
