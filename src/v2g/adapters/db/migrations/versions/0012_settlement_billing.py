"""Settlement billing: ledger transactions may also be invoices (an owner's balance billed) and
payments received, beside settlements, corrections and payouts.

Only the check constraint on ``ledger_transactions.kind`` changes. SQLite cannot alter a check
constraint, so there the table is rebuilt (rows copied as they are) and its append-only triggers
are created again; PostgreSQL swaps the constraint in place (its triggers stay).

Revision ID: 0012_settlement_billing
Revises: 0011_settlement
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import UTCDateTime

revision = "0012_settlement_billing"
down_revision = "0011_settlement"
branch_labels = None
depends_on = None

KINDS_BEFORE = ("settlement", "correction", "payout")
KINDS_AFTER = (*KINDS_BEFORE, "invoice", "payment")
CHECK = "ck_ledger_transactions_kind"


def _kinds_sql(kinds: tuple[str, ...]) -> str:
    return "kind IN (" + ",".join(f"'{k}'" for k in kinds) + ")"


def _set_kinds(kinds: tuple[str, ...]) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.drop_constraint(op.f(CHECK), "ledger_transactions", type_="check")
        op.create_check_constraint(op.f(CHECK), "ledger_transactions", _kinds_sql(kinds))
        return
    _rebuild_on_sqlite(kinds)


def _rebuild_on_sqlite(kinds: tuple[str, ...]) -> None:
    """A new table with the new check, the rows copied, the old dropped, the new renamed; then the
    indexes and the append-only triggers again (they went with the old table)."""
    op.create_table(
        "ledger_transactions_rebuilt",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("settles_period", sa.String(length=7), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=400), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(_kinds_sql(kinds), name=op.f(CHECK)),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_transactions_idempotency_key")),
    )
    columns = "id, idempotency_key, kind, period, settles_period, subject, description, digest, created_at"
    op.execute(f"INSERT INTO ledger_transactions_rebuilt ({columns}) SELECT {columns} FROM ledger_transactions")
    op.execute("DROP TABLE ledger_transactions")  # its indexes and triggers go with it
    op.rename_table("ledger_transactions_rebuilt", "ledger_transactions")
    op.create_index("ix_ledger_transactions_period", "ledger_transactions", ["period"], unique=False)
    op.create_index(
        "ix_ledger_transactions_settles_subject", "ledger_transactions", ["settles_period", "subject"], unique=False
    )
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER ledger_transactions_no_{action.lower()} BEFORE {action} ON ledger_transactions "
            f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: {action} on ledger_transactions refused'); END"
        )


def upgrade() -> None:
    _set_kinds(KINDS_AFTER)


def downgrade() -> None:
    _set_kinds(KINDS_BEFORE)  # refused by the check while invoices or payments are on record
