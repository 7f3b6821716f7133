"""Device layer: charger credentials, OCPP sessions, transactions, telemetry.

Revision ID: 0003_devices
Revises: 0002_journey
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import UTCDateTime

revision = "0003_devices"
down_revision = "0002_journey"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "charger_credentials",
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("security_profile", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], name="fk_charger_credentials_charger_id_chargers"),
        sa.PrimaryKeyConstraint("charger_id", name="pk_charger_credentials"),
    )
    op.create_table(
        "charger_state",
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=True),
        sa.Column("connected_at", UTCDateTime(), nullable=True),
        sa.Column("disconnected_at", UTCDateTime(), nullable=True),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.Column("booted_at", UTCDateTime(), nullable=True),
        sa.Column("firmware_version", sa.String(64), nullable=True),
        sa.Column("discharge_supported", sa.Boolean(), nullable=False),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column("last_profile_status", sa.String(32), nullable=True),
        sa.Column("last_profile_detail", sa.Text(), nullable=True),
        sa.Column("last_profile_at", UTCDateTime(), nullable=True),
        sa.Column("p_kw", sa.Float(), nullable=True),
        sa.Column("soc_percent", sa.Float(), nullable=True),
        sa.Column("energy_import_wh", sa.Float(), nullable=True),
        sa.Column("energy_export_wh", sa.Float(), nullable=True),
        sa.Column("ev_connected", sa.Boolean(), nullable=False),
        sa.Column("measured_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], name="fk_charger_state_charger_id_chargers"),
        sa.PrimaryKeyConstraint("charger_id", name="pk_charger_state"),
    )
    op.create_table(
        "ev_charging_needs",
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("departure_at", UTCDateTime(), nullable=True),
        sa.Column("energy_request_kwh", sa.Float(), nullable=True),
        sa.Column("target_soc_percent", sa.Float(), nullable=True),
        sa.Column("max_charge_kw", sa.Float(), nullable=True),
        sa.Column("max_discharge_kw", sa.Float(), nullable=True),
        sa.Column("min_energy_kwh", sa.Float(), nullable=True),
        sa.Column("max_energy_kwh", sa.Float(), nullable=True),
        sa.Column("control_mode", sa.String(32), nullable=True),
        sa.Column("transfer_mode", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], name="fk_ev_charging_needs_charger_id_chargers"),
        sa.PrimaryKeyConstraint("charger_id", "evse_id", name="pk_ev_charging_needs"),
    )
    op.create_table(
        "charger_profiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(48), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.Column("valid_to", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], name="fk_charger_profiles_charger_id_chargers"),
        sa.PrimaryKeyConstraint("id", name="pk_charger_profiles"),
    )
    op.create_index("ix_charger_profiles_charger_id", "charger_profiles", ["charger_id"])
    op.create_table(
        "charging_transactions",
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("id_token", sa.String(64), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("meter_start_wh", sa.Float(), nullable=True),
        sa.Column("meter_stop_wh", sa.Float(), nullable=True),
        sa.Column("stop_reason", sa.String(64), nullable=True),
        sa.Column("max_seq_no", sa.Integer(), nullable=True),
        sa.Column("events_seen", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], name="fk_charging_transactions_charger_id_chargers"),
        sa.PrimaryKeyConstraint("charger_id", "transaction_id", name="pk_charging_transactions"),
    )
    op.create_table(
        "transaction_events",
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=False),
        sa.Column("seq_no", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("trigger_reason", sa.String(48), nullable=True),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("charger_id", "transaction_id", "seq_no", name="pk_transaction_events"),
    )
    op.create_table(
        "telemetry",
        sa.Column("charger_id", sa.String(64), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("measurand", sa.String(48), nullable=False),
        sa.Column("measured_at", UTCDateTime(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("transaction_id", sa.String(64), nullable=True),
        sa.Column("context", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("charger_id", "evse_id", "measurand", "measured_at", name="pk_telemetry"),
    )
    op.create_index("ix_telemetry_measured_at", "telemetry", ["measured_at"])


def downgrade() -> None:
    op.drop_index("ix_telemetry_measured_at", table_name="telemetry")
    op.drop_index("ix_charger_profiles_charger_id", table_name="charger_profiles")
    for table in (
        "telemetry",
        "transaction_events",
        "charging_transactions",
        "charger_profiles",
        "ev_charging_needs",
        "charger_state",
        "charger_credentials",
    ):
        op.drop_table(table)
