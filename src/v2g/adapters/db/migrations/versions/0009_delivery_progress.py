"""Delivery records say how many seconds of their hour they verified and the response not delivered,
so the delivery of an hour interrupted by a restart continues in the same record.

Revision ID: 0009_delivery_progress
Revises: 0008_one_time_secrets
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_delivery_progress"
down_revision = "0008_one_time_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_records") as batch:
        batch.add_column(sa.Column("seconds", sa.Integer(), server_default="3600", nullable=False))
        batch.add_column(sa.Column("shortfall_mwh", sa.Float(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("delivery_records") as batch:
        batch.drop_column("shortfall_mwh")
        batch.drop_column("seconds")
