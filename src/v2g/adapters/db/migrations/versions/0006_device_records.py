"""Device records: charger events, local charging limits, idTokens, protocols a charger may use.

Revision ID: 0006_device_records
Revises: 0005_operations
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import UTCDateTime

revision = "0006_device_records"
down_revision = "0005_operations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("charger_credentials") as batch:
        batch.add_column(sa.Column("also_allowed_protocols", sa.String(length=64), nullable=True))
    with op.batch_alter_table("charger_state") as batch:
        batch.add_column(sa.Column("charging_limit_kw", sa.Float(), nullable=True))
        batch.add_column(sa.Column("charging_limit_source", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("charging_limit_at", UTCDateTime(), nullable=True))
    op.create_table(
        "charger_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("summary", sa.String(length=400), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], name=op.f("fk_charger_events_charger_id_chargers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charger_events")),
    )
    op.create_index(op.f("ix_charger_events_charger_id"), "charger_events", ["charger_id"], unique=False)
    op.create_table(
        "id_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id_token", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("charger_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('Accepted','Blocked','Expired')", name=op.f("ck_id_tokens_id_token_status")),
        sa.CheckConstraint(
            "(charger_id IS NULL) <> (customer_id IS NULL)", name=op.f("ck_id_tokens_id_token_one_scope")
        ),
        sa.ForeignKeyConstraint(["charger_id"], ["chargers.id"], name=op.f("fk_id_tokens_charger_id_chargers")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_id_tokens_customer_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_id_tokens")),
        sa.UniqueConstraint("id_token", "charger_id", "customer_id", name="uq_id_tokens_scope"),
    )
    op.create_index(op.f("ix_id_tokens_id_token"), "id_tokens", ["id_token"], unique=False)
    op.create_index(op.f("ix_id_tokens_charger_id"), "id_tokens", ["charger_id"], unique=False)
    op.create_index(op.f("ix_id_tokens_customer_id"), "id_tokens", ["customer_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_id_tokens_id_token"), table_name="id_tokens")
    op.drop_index(op.f("ix_id_tokens_customer_id"), table_name="id_tokens")
    op.drop_index(op.f("ix_id_tokens_charger_id"), table_name="id_tokens")
    op.drop_table("id_tokens")
    op.drop_index(op.f("ix_charger_events_charger_id"), table_name="charger_events")
    op.drop_table("charger_events")
    with op.batch_alter_table("charger_state") as batch:
        batch.drop_column("charging_limit_at")
        batch.drop_column("charging_limit_source")
        batch.drop_column("charging_limit_kw")
    with op.batch_alter_table("charger_credentials") as batch:
        batch.drop_column("also_allowed_protocols")
