"""Device-layer tables: charger credentials and certificates, OCPP connection state, profiles,
transactions, telemetry.

Telemetry is a plain time-series table written in batches (``INSERT ... ON CONFLICT DO NOTHING``
on SQLite and PostgreSQL alike), so a reading delivered twice is stored once.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from v2g.adapters.db.base import UTCDateTime, metadata

charger_credentials = Table(
    "charger_credentials",
    metadata,
    Column("charger_id", String(64), ForeignKey("chargers.id"), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("security_profile", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime(), nullable=False),
    # OCPP versions the charger may connect with besides its registered one (comma-separated)
    Column("also_allowed_protocols", String(64), nullable=True),
)

# charger certificates issued by the platform CA (security profile 3); the certificate is public,
# the charger's private key never reaches the platform
charger_certificates = Table(
    "charger_certificates",
    metadata,
    Column("serial_hex", String(64), primary_key=True),
    Column("charger_id", String(64), ForeignKey("chargers.id"), nullable=False, index=True),
    Column("fingerprint_sha256", String(64), nullable=False, unique=True),
    Column("not_before", UTCDateTime(), nullable=False),
    Column("not_after", UTCDateTime(), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("requested_via", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_detail", Text, nullable=True),
    Column("status_at", UTCDateTime(), nullable=True),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("certificate_pem", Text, nullable=False),
    CheckConstraint("requested_via IN ('operator','station')", name="requested_via"),
    CheckConstraint("status IN ('issued','accepted','rejected','failed','revoked')", name="status"),
)

charger_state = Table(
    "charger_state",
    metadata,
    Column("charger_id", String(64), ForeignKey("chargers.id"), primary_key=True),
    Column("online", Boolean, nullable=False, default=False),
    Column("protocol", String(16), nullable=True),
    Column("connected_at", UTCDateTime(), nullable=True),
    Column("disconnected_at", UTCDateTime(), nullable=True),
    Column("last_seen_at", UTCDateTime(), nullable=True),
    Column("booted_at", UTCDateTime(), nullable=True),
    Column("firmware_version", String(64), nullable=True),
    Column("discharge_supported", Boolean, nullable=False, default=False),
    Column("verified_at", UTCDateTime(), nullable=True),
    Column("last_profile_status", String(32), nullable=True),
    Column("last_profile_detail", Text, nullable=True),
    Column("last_profile_at", UTCDateTime(), nullable=True),
    Column("p_kw", Float, nullable=True),
    Column("soc_percent", Float, nullable=True),
    Column("energy_import_wh", Float, nullable=True),
    Column("energy_export_wh", Float, nullable=True),
    Column("ev_connected", Boolean, nullable=False, default=False),
    Column("measured_at", UTCDateTime(), nullable=True),
    # a limit the charger applies on its own (NotifyChargingLimit, e.g. a local energy manager)
    Column("charging_limit_kw", Float, nullable=True),
    Column("charging_limit_source", String(32), nullable=True),
    Column("charging_limit_at", UTCDateTime(), nullable=True),
)

ev_charging_needs = Table(
    "ev_charging_needs",
    metadata,
    Column("charger_id", String(64), ForeignKey("chargers.id"), nullable=False),
    Column("evse_id", Integer, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("departure_at", UTCDateTime(), nullable=True),
    Column("energy_request_kwh", Float, nullable=True),
    Column("target_soc_percent", Float, nullable=True),
    Column("max_charge_kw", Float, nullable=True),
    Column("max_discharge_kw", Float, nullable=True),
    Column("min_energy_kwh", Float, nullable=True),
    Column("max_energy_kwh", Float, nullable=True),
    Column("control_mode", String(32), nullable=True),
    Column("transfer_mode", String(32), nullable=True),
    PrimaryKeyConstraint("charger_id", "evse_id"),
)

charger_profiles = Table(
    "charger_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("charger_id", String(64), ForeignKey("chargers.id"), nullable=False, index=True),
    Column("profile_id", Integer, nullable=False),
    Column("purpose", String(48), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=False),
    Column("valid_to", UTCDateTime(), nullable=True),
    Column("status", String(32), nullable=False),
    Column("detail", Text, nullable=True),
)

charging_transactions = Table(
    "charging_transactions",
    metadata,
    Column("charger_id", String(64), ForeignKey("chargers.id"), nullable=False),
    Column("transaction_id", String(64), nullable=False),
    Column("evse_id", Integer, nullable=False, default=1),
    Column("id_token", String(64), nullable=True),
    Column("started_at", UTCDateTime(), nullable=True),
    Column("ended_at", UTCDateTime(), nullable=True),
    Column("meter_start_wh", Float, nullable=True),
    Column("meter_stop_wh", Float, nullable=True),
    Column("stop_reason", String(64), nullable=True),
    Column("max_seq_no", Integer, nullable=True),
    Column("events_seen", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("charger_id", "transaction_id"),
)

transaction_events = Table(
    "transaction_events",
    metadata,
    Column("charger_id", String(64), nullable=False),
    Column("transaction_id", String(64), nullable=False),
    Column("seq_no", Integer, nullable=False),
    Column("event_type", String(16), nullable=False),
    Column("trigger_reason", String(48), nullable=True),
    Column("offline", Boolean, nullable=False, default=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("charger_id", "transaction_id", "seq_no"),
)

telemetry = Table(
    "telemetry",
    metadata,
    Column("charger_id", String(64), nullable=False),
    Column("evse_id", Integer, nullable=False),
    Column("measurand", String(48), nullable=False),
    Column("measured_at", UTCDateTime(), nullable=False),
    Column("value", Float, nullable=False),
    Column("unit", String(16), nullable=False),
    Column("transaction_id", String(64), nullable=True),
    Column("context", String(32), nullable=True),
    PrimaryKeyConstraint("charger_id", "evse_id", "measurand", "measured_at"),
)
Index("ix_telemetry_measured_at", telemetry.c.measured_at)

charger_events = Table(
    "charger_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("charger_id", String(64), ForeignKey("chargers.id"), nullable=False, index=True),
    Column("kind", String(48), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("summary", String(400), nullable=False),
    Column("payload_json", Text, nullable=False),
)

id_tokens = Table(
    "id_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("id_token", String(64), nullable=False, index=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=True, index=True),
    Column("charger_id", String(64), ForeignKey("chargers.id"), nullable=True, index=True),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint("status IN ('Accepted','Blocked','Expired')", name="id_token_status"),
    CheckConstraint("(charger_id IS NULL) <> (customer_id IS NULL)", name="id_token_one_scope"),
    UniqueConstraint("id_token", "charger_id", "customer_id", name="uq_id_tokens_scope"),
)
