"""The one place that wires concrete adapters from settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from v2g.adapters.db.devices_repo import SqlCredentialStore
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.journey_repo import SqlJourneyRepository, sql_unit_of_work
from v2g.adapters.db.market_repo import SqlMarketStore
from v2g.adapters.db.migrate import ensure_schema_current
from v2g.adapters.db.preferences_repo import SqlEvAccess, SqlPreferencesAudit, SqlPreferencesStore
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.blueprint import load_blueprint
from v2g.config import Settings
from v2g.services.clock import Clock, SystemClock
from v2g.services.devices.handlers import device_handlers
from v2g.services.journey.automation import ServiceContext, ServiceRegistry
from v2g.services.journey.handlers import default_registry
from v2g.services.journey.service import JourneyService
from v2g.services.markets.handlers import market_handlers
from v2g.services.planning.preferences import PreferencesService

BSP_ORG_ID = "bsp"  # the organisation acting as balancing service provider (actor bsp)


@dataclass
class Platform:
    """Everything a running platform needs, built once at start-up."""

    settings: Settings
    engine: Engine
    clock: Clock = field(default_factory=SystemClock)
    registry: ServiceRegistry = field(default_factory=default_registry)
    journeys: JourneyService | None = None
    preferences: PreferencesService | None = None


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
    platform.preferences = PreferencesService(
        SqlPreferencesStore(engine), SqlEvAccess(engine), platform.clock, SqlPreferencesAudit(engine)
    )
    if settings.blueprint_path.is_file():
        platform.journeys = JourneyService(
            sql_unit_of_work(engine), platform.clock, load_blueprint(settings.blueprint_path), platform.registry
        )
    return platform
