"""Operating day: owner charging preferences and the plans of the planning cycle.

Revision ID: 0005_operations
Revises: 0004_markets
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import UTCDateTime

revision = "0005_operations"
down_revision = "0004_markets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owner_preferences",
        sa.Column("ev_id", sa.String(length=64), nullable=False),
        sa.Column("departures_json", sa.Text(), nullable=False),
        sa.Column("target_soc_percent", sa.Float(), nullable=False),
        sa.Column("min_soc_percent", sa.Float(), nullable=False),
        sa.Column("charge_now_until", UTCDateTime(), nullable=True),
        sa.Column("opt_out_on", sa.String(length=10), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "min_soc_percent >= 0 AND min_soc_percent <= target_soc_percent",
            name=op.f("ck_owner_preferences_min_soc_range"),
        ),
        sa.CheckConstraint(
            "target_soc_percent > 0 AND target_soc_percent <= 100", name=op.f("ck_owner_preferences_target_soc_range")
        ),
        sa.ForeignKeyConstraint(["ev_id"], ["vehicles.id"], name=op.f("fk_owner_preferences_ev_id_vehicles")),
        sa.PrimaryKeyConstraint("ev_id", name=op.f("pk_owner_preferences")),
    )
    op.create_table(
        "operating_plans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("start_at", UTCDateTime(), nullable=False),
        sa.Column("n_intervals", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=200), nullable=False),
        sa.Column("n_evs", sa.Integer(), nullable=False),
        sa.Column("objective_eur", sa.Float(), nullable=False),
        sa.Column("plan_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operating_plans")),
    )
    op.create_index("ix_operating_plans_created_at", "operating_plans", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_operating_plans_created_at", table_name="operating_plans")
    op.drop_table("operating_plans")
    op.drop_table("owner_preferences")
