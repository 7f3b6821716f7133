"""Settings from the environment (prefix ``V2G_``); read once in :func:`v2g.bootstrap.bootstrap`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
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
    ocpp_ca_dir: Path | None = Field(
        default=None,
        description=(
            "folder of the platform CA (ca.pem, ca.key mode 0600; created on first use): enables security "
            "profile 3, TLS with charger client certificates, on ocpp_mtls_port"
        ),
    )
    ocpp_ca_organisation: str = Field(
        default="V2G Aggregator",
        min_length=1,
        max_length=64,
        description="the operator's organisation: O of the CA and of every charger certificate",
    )
    ocpp_mtls_port: int = Field(
        default=8181, ge=0, le=65535, description="security profile 3 listener (client certificates required)"
    )
    ocpp_server_names: str = Field(
        default="localhost,127.0.0.1",
        description=(
            "host names / IP addresses of the CSMS certificate the platform CA issues for the profile-3 "
            "listener when ocpp_tls_cert is not set (comma-separated)"
        ),
    )
    ocpp_station_cert_days: int = Field(
        default=365, ge=1, le=3650, description="validity of a charger certificate issued by the platform CA, days"
    )
    ocpp_cert_renew_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="ask a charger for a new certificate when the one it connects with expires within this",
    )
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
    dispatch_deadband_kw: float = Field(
        default=0.1, ge=0, le=5, description="central dispatch: send a charger a new setpoint when it moves by this"
    )
    dispatch_checkpoint_s: int = Field(
        default=60, ge=1, le=3600, description="how often the delivery of a committed hour under way is stored"
    )
    outbox_interval_s: int = Field(default=60, ge=1, le=3600, description="outbox delivery period")
    sla_sweep_interval_min: int = Field(default=15, ge=1, le=1440, description="SLA sweep period")
    openadr_vtn_url: str | None = Field(default=None, description="OpenADR VTN URL; the VEN starts when set")
    openadr_version: str = Field(
        default="2.0b", pattern=r"^(2\.0b|3\.0)$", description="the VTN's OpenADR version: 2.0b or 3.0 (3.0.1 API)"
    )
    openadr_ven_name: str = Field(default="v2g-aggregator", description="the VEN's name at the VTN")
    openadr3_client_id: str = Field(default="", description="OpenADR 3: OAuth2 client id ('' sends no token)")
    openadr3_client_secret: SecretStr = Field(
        default=SecretStr(""), description="OpenADR 3: OAuth2 client secret (kept out of logs and reprs)"
    )
    openadr3_token_url: str = Field(
        default="", description="OpenADR 3: OAuth2 token endpoint (default: the VTN URL + /auth/token)"
    )
    openadr3_programs: str = Field(
        default="", description="OpenADR 3: comma-separated program names followed (default: every program)"
    )
    openadr3_areas: str = Field(
        default="", description="OpenADR 3: comma-separated grid area ids served (default: every area on record)"
    )
    openadr3_poll_s: float = Field(default=30.0, gt=0, le=3600, description="OpenADR 3: how often events are read")
    openadr3_report_s: float = Field(
        default=60.0, gt=0, le=3600, description="OpenADR 3: how often fleet power and availability are reported"
    )
    openadr3_backoff_max_s: float = Field(
        default=300.0, gt=0, le=3600, description="OpenADR 3: longest wait between attempts to reach the VTN"
    )
    openadr3_callback_url: str = Field(
        default="", description="OpenADR 3: the public URL of the VEN's webhook ('' polls only)"
    )
    openadr3_callback_host: str = Field(default="127.0.0.1", description="OpenADR 3: address the webhook binds")
    openadr3_callback_port: int = Field(default=0, ge=0, le=65535, description="OpenADR 3: webhook port (0: free)")
    openadr_min_notice_min: int = Field(default=0, ge=0, description="opt out of limit events notified later than this")
    openadr_grid_area_id: str = Field(
        default="", description="the grid area the VTN's events apply to (default: the first grid area on record)"
    )
    openadr_min_limit_kw: float = Field(default=0.0, ge=0, description="opt out of limits below the fleet's minimum")
    iec61850_enabled: bool = Field(
        default=False, description="serve the fleet as an IEC 61850 (MMS) IED to the DSO/TSO control centre"
    )
    iec61850_host: str = Field(default="127.0.0.1", description="address the IEC 61850 server binds")
    iec61850_port: int = Field(default=102, ge=0, le=65535, description="IEC 61850 MMS port (0: any free port)")
    iec61850_ied_name: str = Field(
        default="V2GAgg", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$", description="the IED's name in the model"
    )
    iec61850_areas: str = Field(
        default="", description="comma-separated grid area ids served (default: every grid area on record)"
    )
    iec61850_update_s: float = Field(default=5.0, gt=0, le=3600, description="refresh of the served values, seconds")
    iec61850_limit_duration_min: int = Field(
        default=240, ge=15, le=10080, description="how long an import limit written by the DSO holds, minutes"
    )
    iec61850_max_connections: int = Field(default=4, ge=1, le=64, description="MMS clients served at once")
    ieee2030_5_server_url: str | None = Field(
        default=None, description="IEEE 2030.5 (CSIP) utility server, https://host:port; the client starts when set"
    )
    ieee2030_5_cert_file: Path | None = Field(default=None, description="the aggregator's client certificate (PEM)")
    ieee2030_5_key_file: Path | None = Field(default=None, description="the client certificate's private key (PEM)")
    ieee2030_5_ca_file: Path | None = Field(
        default=None, description="CA certificates (PEM) the server's certificate must chain to (default: system)"
    )
    ieee2030_5_areas: str = Field(
        default="", description="comma-separated grid area ids, one EndDevice each (default: every grid area on record)"
    )
    ieee2030_5_poll_s: float = Field(default=60.0, ge=1, le=3600, description="control poll period, seconds")
    ieee2030_5_report_s: float = Field(
        default=60.0, ge=1, le=3600, description="DER status and meter reading period, seconds"
    )
    ieee2030_5_backoff_max_s: float = Field(
        default=300.0, ge=1, le=3600, description="the longest wait between retries while the server is away"
    )

    # ---------------------------------------------------------------- settlement
    settlement_tariffs_file: Path | None = Field(
        default=None, description="settlement rules YAML (default: the shipped v2g/settlement/tariffs.yaml)"
    )
    settlement_dso_tariffs: dict[str, str] = Field(
        default_factory=dict,
        description='which DSO tariff of the settlement rules bills each DSO organisation, JSON: {"org-id": "ellevio"}',
    )
    settlement_default_dso_tariff: str = Field(
        default="", description="the DSO tariff for organisations not mapped (empty: such EVs are not settled)"
    )
    settlement_close_day: int = Field(
        default=5, ge=1, le=28, description="local day of the month from which the previous month is closed and billed"
    )
    settlement_job: bool = Field(
        default=True, description="run the daily settlement job (capture, run last month, close, bill) at 02:15 UTC"
    )

    # ---------------------------------------------------------------- HTTP API security
    login_token_ttl_min: int = Field(
        default=720, ge=1, le=43200, description="lifetime of a token from POST /auth/login, minutes (12 h)"
    )
    api_token_ttl_days: int = Field(
        default=365, ge=1, le=3650, description="lifetime of an API token from POST /auth/tokens, days"
    )
    login_max_failures_per_account: int = Field(
        default=5, ge=1, le=1000, description="failed sign-ins to one username before it is throttled"
    )
    login_max_failures_per_address: int = Field(
        default=20, ge=1, le=100000, description="failed sign-ins from one client address before it is throttled"
    )
    login_failure_window_s: int = Field(
        default=900, ge=1, le=86400, description="failed sign-ins count for this long after the last failure"
    )
    login_backoff_base_s: float = Field(
        default=1.0, gt=0, le=3600, description="first wait once throttled; doubles with each further failure"
    )
    login_backoff_max_s: float = Field(default=900.0, gt=0, le=86400, description="longest wait once throttled")
    login_throttle_max_keys: int = Field(
        default=100_000, ge=100, description="accounts and addresses remembered by the throttle (oldest forgotten)"
    )
    login_max_concurrent_verifications: int = Field(
        default=4, ge=1, le=256, description="argon2 password checks running at once (each takes ~64 MiB and CPU)"
    )
    login_verification_wait_s: float = Field(
        default=2.0, ge=0, le=60, description="wait this long for a free password check, then answer 503"
    )
    password_max_chars: int = Field(
        default=200, ge=8, le=1024, description="longest password accepted at sign-in and sign-up"
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="largest request body accepted (bigger ones get 413)"
    )
    evidence_max_bytes: int = Field(
        default=10_485_760,
        ge=1024,
        le=104_857_600,
        description="largest evidence file a task accepts (a PDF, PNG or JPEG); its upload may exceed max_body_bytes",
    )
    max_json_depth: int = Field(
        default=32, ge=2, le=1000, description="deepest nesting of a JSON request body (deeper ones get 422)"
    )
    error_echo_max_chars: int = Field(
        default=120, ge=0, le=10000, description="a 422 answer echoes at most this much of each invalid input"
    )
    grid_areas_public: bool = Field(
        default=False, description="serve GET /api/v1/grid-areas without sign-in (default: signed-in actors only)"
    )
    https: bool = Field(
        default=False,
        description="the API is reached over HTTPS (directly or behind a TLS proxy): send Strict-Transport-Security",
    )
    hsts_max_age_s: int = Field(default=31_536_000, ge=0, description="max-age of Strict-Transport-Security")
    content_security_policy: str = Field(
        default=(
            "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        ),
        description="Content-Security-Policy of every answer except the API documentation pages",
    )
    docs_content_security_policy: str = Field(
        default=(
            "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
            "connect-src 'self'; worker-src blob:; base-uri 'none'; frame-ancestors 'none'"
        ),
        description="Content-Security-Policy of /docs and /redoc (their scripts come from a CDN)",
    )
