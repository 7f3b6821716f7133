"""Journey tables: organisations, users, tokens, assignments, journeys, tasks, audit log, outbox, feedback."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from v2g.adapters.db.base import UTCDateTime, metadata

ROLES = (
    "owner",
    "ev_supplier",
    "aggregator_operator",
    "installer",
    "evse_supplier",
    "dso",
    "energy_supplier",
    "tso",
    "insurer",
    "bsp",
    "brp",
)
_ROLE_CHECK = "role IN (" + ",".join(f"'{r}'" for r in ROLES) + ")"

organisations = Table(
    "organisations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    CheckConstraint(_ROLE_CHECK, name="role"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("organisation_id", String(64), ForeignKey("organisations.id"), nullable=False, index=True),
    Column("username", String(120), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=True, index=True),
    Column("email", String(320), nullable=True),
    Column("phone", String(40), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id"), nullable=False, index=True),
    Column("label", String(120), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
)

organisation_customers = Table(
    "organisation_customers",
    metadata,
    Column("organisation_id", String(64), ForeignKey("organisations.id"), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), primary_key=True, index=True),
)

journeys = Table(
    "journeys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False, unique=True),
    Column("blueprint_id", String(64), nullable=False),
    Column("stage_id", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("offer", String(120), nullable=False),
    Column("stage_entered_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("version", Integer, nullable=False),
    Column("paused_at", UTCDateTime(), nullable=True),
    Column("terminated_at", UTCDateTime(), nullable=True),
    Column("first_active_at", UTCDateTime(), nullable=True),
    CheckConstraint("status IN ('active','paused','terminating','terminated')", name="status"),
)

journey_tasks = Table(
    "journey_tasks",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("journey_id", String(64), ForeignKey("journeys.id"), nullable=False, index=True),
    Column("item_id", String(200), nullable=False),
    Column("stage_id", String(64), nullable=False),
    Column("actor_id", String(64), nullable=False),
    Column("role", String(32), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("service", String(64), nullable=True),
    Column("evidence_required", JSON, nullable=False),
    Column("outcomes", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(64), nullable=True),
    Column("evidence", JSON, nullable=False),
    Column("result", JSON, nullable=False),
    Column("waiting_reason", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime(), nullable=True),
    Column("completed_by", String(64), nullable=True),
    CheckConstraint("status IN ('open','waiting','completed')", name="status"),
    CheckConstraint("kind IN ('automated','manual')", name="kind"),
)

stage_visits = Table(
    "stage_visits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("journey_id", String(64), ForeignKey("journeys.id"), nullable=False, index=True),
    Column("stage_id", String(64), nullable=False),
    Column("entered_at", UTCDateTime(), nullable=False),
    Column("left_at", UTCDateTime(), nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("user_id", String(64), nullable=True),
    Column("organisation_id", String(64), nullable=True),
    Column("action", String(64), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("entity_id", String(200), nullable=False),
    Column("journey_id", String(64), nullable=True, index=True),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("journey_id", String(64), nullable=True, index=True),
    Column("channel", String(8), nullable=False),
    Column("recipient_organisation_id", String(64), nullable=True),
    Column("recipient_user_id", String(64), nullable=True),
    Column("address", String(320), nullable=True),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(8), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("error", Text, nullable=True),
    CheckConstraint("channel IN ('email','sms','app')", name="channel"),
    CheckConstraint("status IN ('pending','sent','failed')", name="status"),
)

one_time_secrets = Table(
    "one_time_secrets",
    metadata,
    Column("task_id", String(200), ForeignKey("journey_tasks.id"), nullable=False),
    Column("organisation_id", String(64), ForeignKey("organisations.id"), nullable=False),
    Column("journey_id", String(64), nullable=False, index=True),
    Column("subject", String(100), nullable=False),
    Column("label", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("value", Text, nullable=True),  # kept until retrieved, then cleared
    Column("retrieved_at", UTCDateTime(), nullable=True),
    Column("retrieved_by", String(64), nullable=True),
    PrimaryKeyConstraint("task_id", "organisation_id"),
)

exit_feedback = Table(
    "exit_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("journey_id", String(64), ForeignKey("journeys.id"), nullable=False, index=True),
    Column("reasons", JSON, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

ALL = (
    organisations,
    users,
    api_tokens,
    organisation_customers,
    journeys,
    journey_tasks,
    stage_visits,
    audit_log,
    outbox,
    one_time_secrets,
    exit_feedback,
)
