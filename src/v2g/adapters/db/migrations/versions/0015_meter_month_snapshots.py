"""Metering snapshots as one compressed row per EV, month and version (``meter_month_snapshots``):
the quarters' energy, quality and fill rules as arrays (``v2g.settlement.meter_arrays.encode_row``)
instead of JSON per EV and day (about 150 bytes a quarter). The latest version of every stored day
is copied into its month's first version; ``meter_day_snapshots`` stays as it was, unread.

Revision ID: 0015_meter_month_snapshots
Revises: 0014_ieee2030_5_reports
Create Date: 2026-12-10
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import UTCDateTime
from v2g.settlement.meter_arrays import MeterArrays, encode_row
from v2g.settlement.metering import MeterInterval
from v2g.settlement.periods import SettlementPeriod
from v2g.units import QUARTER

revision = "0015_meter_month_snapshots"
down_revision = "0014_ieee2030_5_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "meter_month_snapshots",
        sa.Column("ev_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("n_quarters", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("captured_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("ev_id", "period", "version", name=op.f("pk_meter_month_snapshots")),
    )
    _copy_days(table)


def _copy_days(table: sa.Table) -> None:
    conn = op.get_bind()
    days = sa.table(
        "meter_day_snapshots",
        sa.column("ev_id"),
        sa.column("day"),
        sa.column("version"),
        sa.column("charger_id"),
        sa.column("intervals_json"),
    )
    latest: dict[tuple[str, str], tuple[str, str]] = {}
    query = sa.select(days.c.ev_id, days.c.day, days.c.charger_id, days.c.intervals_json).order_by(
        days.c.ev_id, days.c.day, days.c.version
    )
    for r in conn.execute(query):  # ascending versions: the last one per day stays
        latest[(r.ev_id, r.day)] = (r.charger_id, r.intervals_json)
    months: dict[tuple[str, SettlementPeriod], list[tuple[str, str]]] = defaultdict(list)
    for (ev_id, day), value in sorted(latest.items()):
        d = date.fromisoformat(day)
        months[(ev_id, SettlementPeriod(d.year, d.month))].append(value)
    now = datetime.now(UTC)
    rows = []
    for (ev_id, period), values in months.items():
        n_q = int((period.end_at - period.start_at) / QUARTER)
        arrays = MeterArrays.empty(1, n_q)
        intervals = [MeterInterval.from_record(x) for _, doc in values for x in json.loads(doc)]
        arrays.set_intervals(0, period, intervals)
        blob, digest = encode_row(arrays, 0)
        rows.append(
            {
                "ev_id": ev_id,
                "period": period.code,
                "version": 1,
                "charger_id": values[-1][0],
                "n_quarters": n_q,
                "digest": digest,
                "data": blob,
                "captured_at": now,
            }
        )
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table("meter_month_snapshots")
