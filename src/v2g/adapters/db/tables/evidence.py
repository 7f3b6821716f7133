"""Evidence files of journey tasks (``task_evidence_files``): the content with its digest and who sent it."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, LargeBinary, String, Table, UniqueConstraint

from v2g.adapters.db.base import UTCDateTime, metadata

task_evidence_files = Table(
    "task_evidence_files",
    metadata,
    Column("id", String(40), primary_key=True),  # chosen by the platform, never the uploaded name
    Column("task_id", String(200), ForeignKey("journey_tasks.id"), nullable=False, index=True),
    Column("journey_id", String(64), nullable=False, index=True),
    Column("field", String(64), nullable=False),
    Column("organisation_id", String(64), ForeignKey("organisations.id"), nullable=False),
    Column("uploaded_by", String(64), nullable=False),
    Column("original_name", String(200), nullable=False),
    Column("media_type", String(40), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("uploaded_at", UTCDateTime(), nullable=False),
    Column("content", LargeBinary, nullable=False),
    UniqueConstraint("task_id", "field", "sha256", name="uq_task_evidence_files_task_field_sha256"),
)
