"""Settings from the environment (prefix ``V2G_``); read once in :func:`v2g.bootstrap.bootstrap`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "var" / "v2g.sqlite3"
BLUEPRINTS_DIR = PROJECT_ROOT / "blueprints"
DEFAULT_BLUEPRINT = BLUEPRINTS_DIR / "sweden-private-ev.yaml"


class Settings(BaseSettings):
    """Platform settings. Every field can be set as ``V2G_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="V2G_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}",
        description="SQLAlchemy URL; SQLite under ./var/ by default, e.g. postgresql+psycopg://user@host/db",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool = False
    blueprint_path: Path = DEFAULT_BLUEPRINT
    blueprints_dir: Path = Field(default=BLUEPRINTS_DIR, description="folder of blueprint YAML files served by the API")
    demo_chargers: int = Field(default=50, ge=0, description="simulated chargers started by `v2g demo`")
    ocpp_port: int = Field(default=8180, ge=0, le=65535, description="CSMS WebSocket port (/ocpp/{charger_id})")
    ocpp_workers: int = Field(
        default=1, ge=1, le=64, description="CSMS worker processes on the OCPP port (more than 1 needs NATS)"
    )
    nats_url: str = Field(default="nats://127.0.0.1:4222", description="NATS: command routing between CSMS workers")
    nats_namespace: str = Field(
        default="v2g",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="prefix of the CSMS subjects and registry bucket on NATS",
    )
    ocpp_tls_cert: Path | None = Field(default=None, description="PEM certificate: enables TLS (security profile 2)")
    ocpp_tls_key: Path | None = Field(default=None, description="PEM private key of ocpp_tls_cert")
    telemetry_retention_days: float = Field(default=14.0, gt=0, description="keep 1 s power logs this long (FCR)")

    # ---------------------------------------------------------------- the operating day (runtime jobs)
    demo_speed: float = Field(
        default=60.0, gt=0, le=3600, description="`v2g demo`: simulated seconds per real second (60 = a day in 24 min)"
    )
    planning_interval_min: int = Field(default=15, ge=1, le=60, description="planning cycle period, minutes")
    replan_check_s: int = Field(default=60, ge=5, le=3600, description="how often changes are checked for a re-plan")
    planning_strategy: str = Field(
        default="v2g-reserves", pattern=r"^(uncontrolled|smart|v2g-spot|v2g-reserves)$", description="planner strategy"
    )
    market_lead_min: int = Field(default=30, ge=5, le=720, description="offer reserves this long before a gate closes")
    tso_market: str = Field(
        default="simulator", pattern=r"^(simulator|none)$", description="who clears the bids: the TSO market simulator"
    )
    market_offer_price_factor: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description=(
            "offer FCR capacity at this share of the price the plan assumed (pay-as-cleared auctions pay "
            "the marginal price, so a lower offer clears more often and earns the same when it clears)"
        ),
    )
    bsp_org_id: str = Field(default="bsp", description="the organisation acting as balancing service provider")
    prices_file: Path | None = Field(
        default=None, description="day-ahead prices CSV (default: the shipped recorded SE3 excerpt, replayed)"
    )
    reserve_prices_file: Path | None = Field(
        default=None, description="FCR prices, Svk Mimer CSV (default: the shipped recorded excerpt, replayed)"
    )
    frequency_source: str = Field(
        default="",
        description="grid frequency: '' (none), 'udp://HOST:PORT' (live), or a recorded CSV(.gz) file to replay",
    )
    dispatch_mode: str = Field(
        default="central", pattern=r"^(central|local)$", description="frequency response control"
    )
    outbox_interval_s: int = Field(default=60, ge=1, le=3600, description="outbox delivery period")
    sla_sweep_interval_min: int = Field(default=15, ge=1, le=1440, description="SLA sweep period")
    openadr_vtn_url: str | None = Field(default=None, description="OpenADR 2.0b VTN URL; the VEN starts when set")
    openadr_ven_name: str = Field(default="v2g-aggregator", description="the VEN's name at the VTN")
    openadr_min_notice_min: int = Field(default=0, ge=0, description="opt out of limit events notified later than this")
    openadr_grid_area_id: str = Field(
        default="", description="the grid area the VTN's events apply to (default: the first grid area on record)"
    )
    openadr_min_limit_kw: float = Field(default=0.0, ge=0, description="opt out of limits below the fleet's minimum")
