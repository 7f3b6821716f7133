"""Evidence files of journey tasks: an installation photo or a signed approval PDF, kept with its
SHA-256, the evidence field it is for and who uploaded it, under an id the platform chooses.

Revision ID: 0016_task_evidence_files
Revises: 0015_meter_month_snapshots
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import UTCDateTime

revision = "0016_task_evidence_files"
down_revision = "0015_meter_month_snapshots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_evidence_files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("task_id", sa.String(length=200), nullable=False),
        sa.Column("journey_id", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("original_name", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=40), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", UTCDateTime(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["journey_tasks.id"], name=op.f("fk_task_evidence_files_task_id_journey_tasks")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_task_evidence_files_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_evidence_files")),
        sa.UniqueConstraint("task_id", "field", "sha256", name="uq_task_evidence_files_task_field_sha256"),
    )
    op.create_index(op.f("ix_task_evidence_files_task_id"), "task_evidence_files", ["task_id"])
    op.create_index(op.f("ix_task_evidence_files_journey_id"), "task_evidence_files", ["journey_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_task_evidence_files_journey_id"), table_name="task_evidence_files")
    op.drop_index(op.f("ix_task_evidence_files_task_id"), table_name="task_evidence_files")
    op.drop_table("task_evidence_files")
