"""Journey engine: organisations, users, tokens, journeys, tasks, audit log, outbox.

Revision ID: 0002_journey
Revises: 0001_foundation
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import UTCDateTime

revision = "0002_journey"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

# On PostgreSQL the audit log is append-only in the database too: UPDATE and DELETE raise.
_AUDIT_GUARD = """
CREATE OR REPLACE FUNCTION v2g_audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION v2g_audit_log_append_only();
"""


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("organisation_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=200), nullable=False),
        sa.Column("journey_id", sa.String(length=64), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_journey_id"), "audit_log", ["journey_id"], unique=False)
    op.create_table(
        "organisations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "role IN ('owner','ev_supplier','aggregator_operator','installer','evse_supplier','dso',"
            "'energy_supplier','tso','insurer','bsp','brp')",
            name=op.f("ck_organisations_role"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("journey_id", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("recipient_organisation_id", sa.String(length=64), nullable=True),
        sa.Column("recipient_user_id", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("channel IN ('email','sms','app')", name=op.f("ck_outbox_channel")),
        sa.CheckConstraint("status IN ('pending','sent','failed')", name=op.f("ck_outbox_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_journey_id"), "outbox", ["journey_id"], unique=False)
    op.create_table(
        "journeys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("blueprint_id", sa.String(length=64), nullable=False),
        sa.Column("stage_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("offer", sa.String(length=120), nullable=False),
        sa.Column("stage_entered_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("paused_at", UTCDateTime(), nullable=True),
        sa.Column("terminated_at", UTCDateTime(), nullable=True),
        sa.Column("first_active_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('active','paused','terminating','terminated')", name=op.f("ck_journeys_status")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_journeys_customer_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journeys")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_journeys_customer_id")),
    )
    op.create_index(op.f("ix_journeys_stage_id"), "journeys", ["stage_id"], unique=False)
    op.create_table(
        "organisation_customers",
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_organisation_customers_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_organisation_customers_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("organisation_id", "customer_id", name=op.f("pk_organisation_customers")),
    )
    op.create_index(
        op.f("ix_organisation_customers_customer_id"), "organisation_customers", ["customer_id"], unique=False
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_users_customer_id_customers")),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_users_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_index(op.f("ix_users_customer_id"), "users", ["customer_id"], unique=False)
    op.create_index(op.f("ix_users_organisation_id"), "users", ["organisation_id"], unique=False)
    op.create_table(
        "api_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_api_tokens")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)
    op.create_table(
        "exit_feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("journey_id", sa.String(length=64), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["journey_id"], ["journeys.id"], name=op.f("fk_exit_feedback_journey_id_journeys")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exit_feedback")),
    )
    op.create_index(op.f("ix_exit_feedback_journey_id"), "exit_feedback", ["journey_id"], unique=False)
    op.create_table(
        "journey_tasks",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("journey_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=200), nullable=False),
        sa.Column("stage_id", sa.String(length=64), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=True),
        sa.Column("evidence_required", sa.JSON(), nullable=False),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("waiting_reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("completed_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint("kind IN ('automated','manual')", name=op.f("ck_journey_tasks_kind")),
        sa.CheckConstraint("status IN ('open','waiting','completed')", name=op.f("ck_journey_tasks_status")),
        sa.ForeignKeyConstraint(["journey_id"], ["journeys.id"], name=op.f("fk_journey_tasks_journey_id_journeys")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_tasks")),
    )
    op.create_index(op.f("ix_journey_tasks_journey_id"), "journey_tasks", ["journey_id"], unique=False)
    op.create_index(op.f("ix_journey_tasks_role"), "journey_tasks", ["role"], unique=False)
    op.create_table(
        "stage_visits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("journey_id", sa.String(length=64), nullable=False),
        sa.Column("stage_id", sa.String(length=64), nullable=False),
        sa.Column("entered_at", UTCDateTime(), nullable=False),
        sa.Column("left_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["journey_id"], ["journeys.id"], name=op.f("fk_stage_visits_journey_id_journeys")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_visits")),
    )
    op.create_index(op.f("ix_stage_visits_journey_id"), "stage_visits", ["journey_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_AUDIT_GUARD)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS v2g_audit_log_append_only()")
    op.drop_index(op.f("ix_stage_visits_journey_id"), table_name="stage_visits")
    op.drop_table("stage_visits")
    op.drop_index(op.f("ix_journey_tasks_role"), table_name="journey_tasks")
    op.drop_index(op.f("ix_journey_tasks_journey_id"), table_name="journey_tasks")
    op.drop_table("journey_tasks")
    op.drop_index(op.f("ix_exit_feedback_journey_id"), table_name="exit_feedback")
    op.drop_table("exit_feedback")
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index(op.f("ix_users_organisation_id"), table_name="users")
    op.drop_index(op.f("ix_users_customer_id"), table_name="users")
    op.drop_table("users")
    op.drop_index(op.f("ix_organisation_customers_customer_id"), table_name="organisation_customers")
    op.drop_table("organisation_customers")
    op.drop_index(op.f("ix_journeys_stage_id"), table_name="journeys")
    op.drop_table("journeys")
    op.drop_index(op.f("ix_outbox_journey_id"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("organisations")
    op.drop_index(op.f("ix_audit_log_journey_id"), table_name="audit_log")
    op.drop_table("audit_log")
