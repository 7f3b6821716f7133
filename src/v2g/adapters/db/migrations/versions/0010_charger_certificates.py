"""Charger certificates issued by the platform CA (OCPP security profile 3).

Revision ID: 0010_charger_certificates
Revises: 0009_delivery_progress
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import UTCDateTime

revision = "0010_charger_certificates"
down_revision = "0009_delivery_progress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "charger_certificates",
        sa.Column("serial_hex", sa.String(length=64), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("not_after", UTCDateTime(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("requested_via", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_detail", sa.Text(), nullable=True),
        sa.Column("status_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "requested_via IN ('operator','station')", name=op.f("ck_charger_certificates_requested_via")
        ),
        sa.CheckConstraint(
            "status IN ('issued','accepted','rejected','failed','revoked')", name=op.f("ck_charger_certificates_status")
        ),
        sa.ForeignKeyConstraint(
            ["charger_id"], ["chargers.id"], name=op.f("fk_charger_certificates_charger_id_chargers")
        ),
        sa.PrimaryKeyConstraint("serial_hex", name=op.f("pk_charger_certificates")),
        sa.UniqueConstraint("fingerprint_sha256", name=op.f("uq_charger_certificates_fingerprint_sha256")),
    )
    op.create_index(op.f("ix_charger_certificates_charger_id"), "charger_certificates", ["charger_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_charger_certificates_charger_id"), table_name="charger_certificates")
    op.drop_table("charger_certificates")
