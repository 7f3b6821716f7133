"""IEEE 2030.5 client: the reports (responses, DER status, meter readings) still to deliver to the server.

Revision ID: 0014_ieee2030_5_reports
Revises: 0013_vtn_reports
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import UTCDateTime

revision = "0014_ieee2030_5_reports"
down_revision = "0013_vtn_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ieee2030_5_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("area_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=400), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=400), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ieee2030_5_reports")),
    )
    op.create_index("ix_ieee2030_5_reports_created_at", "ieee2030_5_reports", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_ieee2030_5_reports_created_at", table_name="ieee2030_5_reports")
    op.drop_table("ieee2030_5_reports")
