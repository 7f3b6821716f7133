"""Settlement: the append-only double-entry ledger (transactions with unique idempotency keys,
postings, period closes), metering day snapshots, statements and the owners' contract terms.
Triggers refuse UPDATE and DELETE on the ledger tables.

Revision ID: 0011_settlement
Revises: 0010_charger_certificates
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import Money, UTCDateTime

revision = "0011_settlement"
down_revision = "0010_charger_certificates"
branch_labels = None
depends_on = None

IMMUTABLE = ("ledger_transactions", "ledger_postings", "ledger_period_closes")


def upgrade() -> None:
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("settles_period", sa.String(length=7), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=400), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('settlement','correction','payout')", name=op.f("ck_ledger_transactions_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_transactions_idempotency_key")),
    )
    op.create_index("ix_ledger_transactions_period", "ledger_transactions", ["period"], unique=False)
    op.create_index(
        "ix_ledger_transactions_settles_subject", "ledger_transactions", ["settles_period", "subject"], unique=False
    )
    op.create_table(
        "ledger_postings",
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("line", sa.String(length=48), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("amount_sek", Money(), nullable=False),
        sa.CheckConstraint("amount_sek <> 0", name=op.f("ck_ledger_postings_amount_nonzero")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_postings_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("transaction_id", "seq", name=op.f("pk_ledger_postings")),
    )
    op.create_index(op.f("ix_ledger_postings_account"), "ledger_postings", ["account"], unique=False)
    op.create_table(
        "ledger_period_closes",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=False),
        sa.Column("transactions", sa.Integer(), nullable=False),
        sa.Column("trial_balance_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("period", name=op.f("pk_ledger_period_closes")),
    )
    op.create_table(
        "meter_day_snapshots",
        sa.Column("ev_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("intervals_json", sa.Text(), nullable=False),
        sa.Column("captured_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ev_id", "day", "version", name=op.f("pk_meter_day_snapshots")),
    )
    op.create_table(
        "settlement_statements",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("ev_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("summary_json", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("period", "ev_id", "version", name=op.f("pk_settlement_statements")),
    )
    op.create_index(
        op.f("ix_settlement_statements_customer_id"), "settlement_statements", ["customer_id"], unique=False
    )
    op.create_table(
        "owner_contracts",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("valid_from", sa.String(length=10), nullable=False),
        sa.Column("owner_revenue_share", sa.Numeric(precision=6, scale=4), nullable=False),
        sa.Column("wear_allowance_ore_per_kwh", sa.Numeric(precision=10, scale=4), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "owner_revenue_share >= 0 AND owner_revenue_share <= 1", name=op.f("ck_owner_contracts_share_range")
        ),
        sa.CheckConstraint("wear_allowance_ore_per_kwh >= 0", name=op.f("ck_owner_contracts_wear_positive")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_owner_contracts_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("customer_id", "valid_from", name=op.f("pk_owner_contracts")),
    )
    _immutable_ledger()


def _immutable_ledger() -> None:
    """The database itself refuses to change or remove a ledger row."""
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME; END $$"
        )
        for table in IMMUTABLE:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_immutable()"
            )
        return
    for table in IMMUTABLE:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: {action} on {table} refused'); END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in IMMUTABLE:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ledger_immutable()")
    else:
        for table in IMMUTABLE:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    op.drop_table("owner_contracts")
    op.drop_index(op.f("ix_settlement_statements_customer_id"), table_name="settlement_statements")
    op.drop_table("settlement_statements")
    op.drop_table("meter_day_snapshots")
    op.drop_table("ledger_period_closes")
    op.drop_index(op.f("ix_ledger_postings_account"), table_name="ledger_postings")
    op.drop_table("ledger_postings")
    op.drop_index("ix_ledger_transactions_settles_subject", table_name="ledger_transactions")
    op.drop_index("ix_ledger_transactions_period", table_name="ledger_transactions")
    op.drop_table("ledger_transactions")
