"""Operating-day tables: the owners' charging preferences and the plans the planning cycle made."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from v2g.adapters.db.base import UTCDateTime, metadata

owner_preferences = Table(
    "owner_preferences",
    metadata,
    Column("ev_id", String(64), ForeignKey("vehicles.id"), primary_key=True),
    Column("departures_json", Text, nullable=False),  # {"mon": "07:00", ...} local Swedish time
    Column("target_soc_percent", Float, nullable=False),
    Column("min_soc_percent", Float, nullable=False),
    Column("charge_now_until", UTCDateTime(), nullable=True),
    Column("opt_out_on", String(10), nullable=True),  # a local date, YYYY-MM-DD
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    CheckConstraint("target_soc_percent > 0 AND target_soc_percent <= 100", name="target_soc_range"),
    CheckConstraint("min_soc_percent >= 0 AND min_soc_percent <= target_soc_percent", name="min_soc_range"),
)

operating_plans = Table(
    "operating_plans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("start_at", UTCDateTime(), nullable=False),
    Column("n_intervals", Integer, nullable=False),
    Column("strategy", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("trigger", String(200), nullable=False),
    Column("n_evs", Integer, nullable=False),
    Column("objective_eur", Float, nullable=False),
    Column("plan_json", Text, nullable=False),
    Index("ix_operating_plans_created_at", "created_at"),
)

vtn_reports = Table(
    "vtn_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("body_json", Text, nullable=False),  # the report as the VTN gets it (OpenADR 3 JSON)
    Column("status", String(16), nullable=False),  # pending | sent | rejected
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_attempt_at", UTCDateTime(), nullable=True),
    Column("last_error", String(1000), nullable=True),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("answer", String(200), nullable=True),  # the id the VTN gave the report
    CheckConstraint("status IN ('pending','sent','rejected')", name="vtn_report_status"),
    Index("ix_vtn_reports_status_id", "status", "id"),
)
