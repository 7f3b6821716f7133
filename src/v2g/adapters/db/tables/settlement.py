"""Settlement tables: the append-only ledger, period closes, metering snapshots (one compressed row
per EV, month and version), statements and the owners' contract terms.

Nothing here is ever updated or deleted: a ledger transaction and its postings are inserted once
(its idempotency key is unique), a close is a row of its own, and a changed metering month or
statement is a new version. The migration adds triggers that refuse UPDATE and DELETE on the ledger.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from v2g.adapters.db.base import Money, UTCDateTime, metadata

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("period", String(7), nullable=False),  # posted in (YYYY-MM, Swedish local month)
    Column("settles_period", String(7), nullable=False),  # whose data it settles
    Column("subject", String(100), nullable=False),  # an EV id, or group:<id>, or owner:<id>
    Column("description", String(400), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint("kind IN ('settlement','correction','payout','invoice','payment')", name="kind"),
    Index("ix_ledger_transactions_settles_subject", "settles_period", "subject"),
    Index("ix_ledger_transactions_period", "period"),
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("transaction_id", Integer, ForeignKey("ledger_transactions.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("account", String(100), nullable=False, index=True),
    Column("line", String(48), nullable=False),
    Column("subject", String(100), nullable=False),
    Column("amount_sek", Money(), nullable=False),  # debit > 0, credit < 0, whole öre
    PrimaryKeyConstraint("transaction_id", "seq"),
    CheckConstraint("amount_sek <> 0", name="amount_nonzero"),
)

ledger_period_closes = Table(
    "ledger_period_closes",
    metadata,
    Column("period", String(7), primary_key=True),
    Column("closed_at", UTCDateTime(), nullable=False),
    Column("transactions", Integer, nullable=False),
    Column("trial_balance_json", Text, nullable=False),
)

meter_month_snapshots = Table(
    "meter_month_snapshots",
    metadata,
    Column("ev_id", String(64), nullable=False),
    Column("period", String(7), nullable=False),  # YYYY-MM, Swedish local month
    Column("version", Integer, nullable=False),
    Column("charger_id", String(64), nullable=False),
    Column("n_quarters", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),  # v2g.settlement.meter_arrays.encode_row: zlib, ~1-3 kB
    Column("captured_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("ev_id", "period", "version"),
)

# Before migration 0015 metering was kept as JSON per EV and local day; the migration copied the
# latest version of every day into meter_month_snapshots. Nothing reads or writes it any more.
meter_day_snapshots = Table(
    "meter_day_snapshots",
    metadata,
    Column("ev_id", String(64), nullable=False),
    Column("day", String(10), nullable=False),  # Swedish local date, YYYY-MM-DD
    Column("version", Integer, nullable=False),
    Column("charger_id", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("intervals_json", Text, nullable=False),
    Column("captured_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("ev_id", "day", "version"),
)

settlement_statements = Table(
    "settlement_statements",
    metadata,
    Column("period", String(7), nullable=False),
    Column("ev_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("digest", String(64), nullable=False),
    Column("summary_json", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("period", "ev_id", "version"),
)

owner_contracts = Table(
    "owner_contracts",
    metadata,
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False),
    Column("valid_from", String(10), nullable=False),  # Swedish local date, YYYY-MM-DD
    Column("owner_revenue_share", Numeric(6, 4), nullable=False),
    Column("wear_allowance_ore_per_kwh", Numeric(10, 4), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("customer_id", "valid_from"),
    CheckConstraint("owner_revenue_share >= 0 AND owner_revenue_share <= 1", name="share_range"),
    CheckConstraint("wear_allowance_ore_per_kwh >= 0", name="wear_positive"),
)
