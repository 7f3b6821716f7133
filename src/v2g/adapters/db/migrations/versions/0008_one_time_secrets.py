"""One-time secrets: a charger's OCPP password is retrieved once by the installer through its task,
never sent through the outbox; passwords already in the outbox are redacted.

Revision ID: 0008_one_time_secrets
Revises: 0007_bid_ownership
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import UTCDateTime

revision = "0008_one_time_secrets"
down_revision = "0007_bid_ownership"
branch_labels = None
depends_on = None

REDACTED = (
    "Charger OCPP credentials were issued; the password is no longer kept in messages. "
    "Ask the aggregator operator to issue new credentials."
)


def upgrade() -> None:
    op.create_table(
        "one_time_secrets",
        sa.Column("task_id", sa.String(length=200), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("journey_id", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("retrieved_at", UTCDateTime(), nullable=True),
        sa.Column("retrieved_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"], ["journey_tasks.id"], name=op.f("fk_one_time_secrets_task_id_journey_tasks")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_one_time_secrets_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("task_id", "organisation_id", name=op.f("pk_one_time_secrets")),
    )
    op.create_index(op.f("ix_one_time_secrets_journey_id"), "one_time_secrets", ["journey_id"], unique=False)
    outbox = sa.table("outbox", sa.column("subject", sa.String), sa.column("body", sa.Text))
    op.execute(
        outbox.update()
        .where(outbox.c.subject == "Charger OCPP credentials", outbox.c.body.like("%password%"))
        .values(body=REDACTED)
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_one_time_secrets_journey_id"), table_name="one_time_secrets")
    op.drop_table("one_time_secrets")
