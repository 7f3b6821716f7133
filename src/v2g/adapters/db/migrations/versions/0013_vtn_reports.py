"""The OpenADR 3 VEN's report queue: every report is stored before it is sent, and kept with its outcome.

Revision ID: 0013_vtn_reports
Revises: 0012_settlement_billing
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import UTCDateTime

revision = "0013_vtn_reports"
down_revision = "0012_settlement_billing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vtn_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("body_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("answer", sa.String(length=200), nullable=True),
        sa.CheckConstraint("status IN ('pending','sent','rejected')", name=op.f("ck_vtn_reports_vtn_report_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vtn_reports")),
    )
    op.create_index("ix_vtn_reports_status_id", "vtn_reports", ["status", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_vtn_reports_status_id", table_name="vtn_reports")
    op.drop_table("vtn_reports")
