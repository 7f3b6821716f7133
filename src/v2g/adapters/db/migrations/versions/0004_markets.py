"""Market operations: bidding groups, bids, commitments, delivery records, pre-qualification results.

Revision ID: 0004_markets
Revises: 0003_devices
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import Money, UTCDateTime

revision = "0004_markets"
down_revision = "0003_devices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bidding_groups",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("bsp_org_id", sa.String(length=64), nullable=False),
        sa.Column("price_area", sa.String(length=3), nullable=False),
        sa.Column("control_mode", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("deregistered_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("control_mode IN ('central','local')", name=op.f("ck_bidding_groups_control_mode")),
        sa.CheckConstraint("price_area IN ('SE1','SE2','SE3','SE4')", name=op.f("ck_bidding_groups_price_area")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bidding_groups")),
    )
    op.create_index(op.f("ix_bidding_groups_bsp_org_id"), "bidding_groups", ["bsp_org_id"], unique=False)
    op.create_table(
        "prequal_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("product", sa.String(length=16), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("unit_type", sa.String(length=100), nullable=False),
        sa.Column("control_mode", sa.String(length=16), nullable=False),
        sa.Column("tested_capacity_kw", sa.Float(), nullable=False),
        sa.Column("qualified_capacity_kw", sa.Float(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("requirements_json", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "product IN ('fcr_n','fcr_d_up','fcr_d_down','mfrr')", name=op.f("ck_prequal_results_product")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prequal_results")),
    )
    op.create_index(op.f("ix_prequal_results_group_id"), "prequal_results", ["group_id"], unique=False)
    op.create_table(
        "bidding_group_capacity",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("product", sa.String(length=16), nullable=False),
        sa.Column("prequalified_mw", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "product IN ('fcr_n','fcr_d_up','fcr_d_down','mfrr')", name=op.f("ck_bidding_group_capacity_product")
        ),
        sa.CheckConstraint("prequalified_mw >= 0", name=op.f("ck_bidding_group_capacity_prequalified_mw_positive")),
        sa.ForeignKeyConstraint(
            ["group_id"], ["bidding_groups.id"], name=op.f("fk_bidding_group_capacity_group_id_bidding_groups")
        ),
        sa.PrimaryKeyConstraint("group_id", "product", name=op.f("pk_bidding_group_capacity")),
    )
    op.create_table(
        "bidding_group_members",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("ev_id", sa.String(length=64), nullable=False),
        sa.Column("charger_id", sa.String(length=64), nullable=False),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
        sa.Column("left_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"], ["bidding_groups.id"], name=op.f("fk_bidding_group_members_group_id_bidding_groups")
        ),
        sa.PrimaryKeyConstraint("group_id", "ev_id", name=op.f("pk_bidding_group_members")),
    )
    op.create_table(
        "delivery_records",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("product", sa.String(length=16), nullable=False),
        sa.Column("hour_start_at", UTCDateTime(), nullable=False),
        sa.Column("committed_mw", sa.Float(), nullable=False),
        sa.Column("required_mwh", sa.Float(), nullable=False),
        sa.Column("delivered_mwh", sa.Float(), nullable=False),
        sa.Column("availability", sa.Float(), nullable=False),
        sa.Column("mean_abs_deviation_mw", sa.Float(), nullable=False),
        sa.Column("undelivered_fraction", sa.Float(), nullable=False),
        sa.Column("capacity_payment_eur", Money(), nullable=False),
        sa.Column("repayment_eur", Money(), nullable=False),
        sa.Column("ev_contribution_json", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "product IN ('fcr_n','fcr_d_up','fcr_d_down','mfrr')", name=op.f("ck_delivery_records_product")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["bidding_groups.id"], name=op.f("fk_delivery_records_group_id_bidding_groups")
        ),
        sa.PrimaryKeyConstraint("group_id", "product", "hour_start_at", name=op.f("pk_delivery_records")),
    )
    op.create_table(
        "market_bids",
        sa.Column("id", sa.String(length=96), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("product", sa.String(length=16), nullable=False),
        sa.Column("price_area", sa.String(length=3), nullable=False),
        sa.Column("delivery_start_at", UTCDateTime(), nullable=False),
        sa.Column("volume_mw", sa.Float(), nullable=False),
        sa.Column("price_eur_per_mw_h", Money(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("auction", sa.String(length=32), nullable=True),
        sa.Column("submitted_at", UTCDateTime(), nullable=True),
        sa.Column("refused_rule", sa.String(length=48), nullable=True),
        sa.Column("refused_reason", sa.Text(), nullable=True),
        sa.Column("clearing_price_eur_per_mw_h", Money(), nullable=True),
        sa.CheckConstraint("price_area IN ('SE1','SE2','SE3','SE4')", name=op.f("ck_market_bids_price_area")),
        sa.CheckConstraint("product IN ('fcr_n','fcr_d_up','fcr_d_down','mfrr')", name=op.f("ck_market_bids_product")),
        sa.CheckConstraint(
            "status IN ('draft','submitted','accepted','rejected','refused')", name=op.f("ck_market_bids_status")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["bidding_groups.id"], name=op.f("fk_market_bids_group_id_bidding_groups")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_bids")),
    )
    op.create_index(
        "ix_market_bids_group_product_start", "market_bids", ["group_id", "product", "delivery_start_at"], unique=False
    )
    op.create_table(
        "market_commitments",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("bid_id", sa.String(length=96), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("product", sa.String(length=16), nullable=False),
        sa.Column("price_area", sa.String(length=3), nullable=False),
        sa.Column("start_at", UTCDateTime(), nullable=False),
        sa.Column("end_at", UTCDateTime(), nullable=False),
        sa.Column("mw", sa.Float(), nullable=False),
        sa.Column("price_eur_per_mw_h", Money(), nullable=False),
        sa.CheckConstraint(
            "product IN ('fcr_n','fcr_d_up','fcr_d_down','mfrr')", name=op.f("ck_market_commitments_product")
        ),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_market_commitments_period")),
        sa.ForeignKeyConstraint(["bid_id"], ["market_bids.id"], name=op.f("fk_market_commitments_bid_id_market_bids")),
        sa.ForeignKeyConstraint(
            ["group_id"], ["bidding_groups.id"], name=op.f("fk_market_commitments_group_id_bidding_groups")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_commitments")),
        sa.UniqueConstraint("bid_id", name=op.f("uq_market_commitments_bid_id")),
    )
    op.create_index("ix_market_commitments_group_start", "market_commitments", ["group_id", "start_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_market_commitments_group_start", table_name="market_commitments")
    op.drop_table("market_commitments")
    op.drop_index("ix_market_bids_group_product_start", table_name="market_bids")
    op.drop_table("market_bids")
    op.drop_table("delivery_records")
    op.drop_table("bidding_group_members")
    op.drop_table("bidding_group_capacity")
    op.drop_index(op.f("ix_prequal_results_group_id"), table_name="prequal_results")
    op.drop_table("prequal_results")
    op.drop_index(op.f("ix_bidding_groups_bsp_org_id"), table_name="bidding_groups")
    op.drop_table("bidding_groups")
