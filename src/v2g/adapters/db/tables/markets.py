"""Market-operations tables: bidding groups, bids, commitments, delivery records, pre-qualification results."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from v2g.adapters.db.base import Money, UTCDateTime, metadata

_PRODUCTS = "('fcr_n','fcr_d_up','fcr_d_down','mfrr')"
_AREAS = "('SE1','SE2','SE3','SE4')"

bidding_groups = Table(
    "bidding_groups",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("bsp_org_id", String(64), nullable=False, index=True),
    Column("price_area", String(3), nullable=False),
    Column("control_mode", String(16), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("deregistered_at", UTCDateTime(), nullable=True),
    CheckConstraint(f"price_area IN {_AREAS}", name="price_area"),
    CheckConstraint("control_mode IN ('central','local')", name="control_mode"),
)

bidding_group_capacity = Table(
    "bidding_group_capacity",
    metadata,
    Column("group_id", String(64), ForeignKey("bidding_groups.id"), nullable=False),
    Column("product", String(16), nullable=False),
    Column("prequalified_mw", Float, nullable=False),
    PrimaryKeyConstraint("group_id", "product"),
    CheckConstraint(f"product IN {_PRODUCTS}", name="product"),
    CheckConstraint("prequalified_mw >= 0", name="prequalified_mw_positive"),
)

bidding_group_members = Table(
    "bidding_group_members",
    metadata,
    Column("group_id", String(64), ForeignKey("bidding_groups.id"), nullable=False),
    Column("ev_id", String(64), nullable=False),
    Column("charger_id", String(64), nullable=False),
    Column("joined_at", UTCDateTime(), nullable=False),
    Column("left_at", UTCDateTime(), nullable=True),
    PrimaryKeyConstraint("group_id", "ev_id"),
)

market_bids = Table(
    "market_bids",
    metadata,
    Column("id", String(96), nullable=False),  # the BSP's own id: unique per BSP organisation
    Column("group_id", String(64), ForeignKey("bidding_groups.id"), nullable=False),
    Column("product", String(16), nullable=False),
    Column("price_area", String(3), nullable=False),
    Column("delivery_start_at", UTCDateTime(), nullable=False),
    Column("volume_mw", Float, nullable=False),
    Column("price_eur_per_mw_h", Money(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("auction", String(32), nullable=True),
    Column("submitted_at", UTCDateTime(), nullable=True),
    Column("refused_rule", String(48), nullable=True),
    Column("refused_reason", Text, nullable=True),
    Column("clearing_price_eur_per_mw_h", Money(), nullable=True),
    Column("bsp_org_id", String(64), nullable=False),
    Column("refused_field", String(64), nullable=True),
    PrimaryKeyConstraint("bsp_org_id", "id"),
    UniqueConstraint("group_id", "id", name="uq_market_bids_group_bid"),
    CheckConstraint(f"product IN {_PRODUCTS}", name="product"),
    CheckConstraint(f"price_area IN {_AREAS}", name="price_area"),
    CheckConstraint("status IN ('draft','submitted','accepted','rejected','refused')", name="status"),
    Index("ix_market_bids_group_product_start", "group_id", "product", "delivery_start_at"),
)

market_commitments = Table(
    "market_commitments",
    metadata,
    Column("id", String(100), nullable=False),
    Column("bid_id", String(96), nullable=False),
    Column("group_id", String(64), ForeignKey("bidding_groups.id"), nullable=False),
    Column("product", String(16), nullable=False),
    Column("price_area", String(3), nullable=False),
    Column("start_at", UTCDateTime(), nullable=False),
    Column("end_at", UTCDateTime(), nullable=False),
    Column("mw", Float, nullable=False),
    Column("price_eur_per_mw_h", Money(), nullable=False),
    CheckConstraint(f"product IN {_PRODUCTS}", name="product"),
    CheckConstraint("end_at > start_at", name="period"),
    PrimaryKeyConstraint("group_id", "id"),
    UniqueConstraint("group_id", "bid_id", name="uq_market_commitments_group_bid"),
    ForeignKeyConstraint(
        ["group_id", "bid_id"],
        ["market_bids.group_id", "market_bids.id"],
        name="fk_market_commitments_bid_market_bids",
    ),
    Index("ix_market_commitments_group_start", "group_id", "start_at"),
)

delivery_records = Table(
    "delivery_records",
    metadata,
    Column("group_id", String(64), ForeignKey("bidding_groups.id"), nullable=False),
    Column("product", String(16), nullable=False),
    Column("hour_start_at", UTCDateTime(), nullable=False),
    Column("committed_mw", Float, nullable=False),
    Column("required_mwh", Float, nullable=False),
    Column("delivered_mwh", Float, nullable=False),
    Column("availability", Float, nullable=False),
    Column("mean_abs_deviation_mw", Float, nullable=False),
    Column("undelivered_fraction", Float, nullable=False),
    Column("capacity_payment_eur", Money(), nullable=False),
    Column("repayment_eur", Money(), nullable=False),
    Column("ev_contribution_json", Text, nullable=False),
    Column("seconds", Integer, nullable=False, server_default="3600"),  # seconds of the hour verified so far
    Column("shortfall_mwh", Float, nullable=False, server_default="0"),
    PrimaryKeyConstraint("group_id", "product", "hour_start_at"),
    CheckConstraint(f"product IN {_PRODUCTS}", name="product"),
)

prequal_results = Table(
    "prequal_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False, index=True),
    Column("product", String(16), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("units", Integer, nullable=False),
    Column("unit_type", String(100), nullable=False),
    Column("control_mode", String(16), nullable=False),
    Column("tested_capacity_kw", Float, nullable=False),
    Column("qualified_capacity_kw", Float, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("requirements_json", Text, nullable=False),
    CheckConstraint(f"product IN {_PRODUCTS}", name="product"),
)
