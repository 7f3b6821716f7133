"""Foundation: fleet tables (grid areas, customers, sites, vehicles, chargers).

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from v2g.adapters.db.base import UTCDateTime

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grid_areas",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("dso_org_id", sa.String(64), nullable=True),
        sa.Column("price_area", sa.String(3), nullable=False),
        sa.Column("import_limit_kw", sa.Float(), nullable=False),
        sa.Column("export_limit_kw", sa.Float(), nullable=False),
        sa.Column("hosting_capacity_kw", sa.Float(), nullable=False),
        sa.Column("connection_queue_length", sa.Integer(), nullable=False),
        sa.CheckConstraint("price_area IN ('SE1','SE2','SE3','SE4')", name="ck_grid_areas_price_area"),
        sa.PrimaryKeyConstraint("id", name="pk_grid_areas"),
    )
    op.create_index("ix_grid_areas_dso_org_id", "grid_areas", ["dso_org_id"])
    op.create_table(
        "customers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(400), nullable=False),
        sa.Column("price_area", sa.String(3), nullable=False),
        sa.Column("grid_area_id", sa.String(64), nullable=False),
        sa.Column("main_fuse_a", sa.Integer(), nullable=False),
        sa.Column("phases", sa.Integer(), nullable=False),
        sa.Column("voltage_v", sa.Float(), nullable=False),
        sa.Column("household_peak_kw", sa.Float(), nullable=False),
        sa.Column("pv_kw", sa.Float(), nullable=False),
        sa.Column("has_bess", sa.Boolean(), nullable=False),
        sa.CheckConstraint("price_area IN ('SE1','SE2','SE3','SE4')", name="ck_sites_price_area"),
        sa.CheckConstraint("main_fuse_a > 0", name="ck_sites_main_fuse_positive"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_sites_customer_id_customers"),
        sa.ForeignKeyConstraint(["grid_area_id"], ["grid_areas.id"], name="fk_sites_grid_area_id_grid_areas"),
        sa.PrimaryKeyConstraint("id", name="pk_sites"),
    )
    op.create_index("ix_sites_customer_id", "sites", ["customer_id"])
    op.create_index("ix_sites_grid_area_id", "sites", ["grid_area_id"])
    op.create_table(
        "vehicles",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=True),
        sa.Column("make", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("battery_kwh", sa.Float(), nullable=False),
        sa.Column("max_charge_kw", sa.Float(), nullable=False),
        sa.Column("max_discharge_kw", sa.Float(), nullable=False),
        sa.Column("v2g_capable", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name="fk_vehicles_customer_id_customers"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_vehicles_site_id_sites"),
        sa.PrimaryKeyConstraint("id", name="pk_vehicles"),
    )
    op.create_index("ix_vehicles_customer_id", "vehicles", ["customer_id"])
    op.create_table(
        "chargers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("vendor", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("max_charge_kw", sa.Float(), nullable=False),
        sa.Column("max_discharge_kw", sa.Float(), nullable=False),
        sa.Column("v2g_site_id", sa.String(64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint("protocol IN ('ocpp1.6','ocpp2.0.1','ocpp2.1')", name="ck_chargers_protocol"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name="fk_chargers_site_id_sites"),
        sa.PrimaryKeyConstraint("id", name="pk_chargers"),
        sa.UniqueConstraint("v2g_site_id", name="uq_chargers_v2g_site_id"),
    )
    op.create_index("ix_chargers_site_id", "chargers", ["site_id"])


def downgrade() -> None:
    for index, table in (
        ("ix_chargers_site_id", "chargers"),
        ("ix_vehicles_customer_id", "vehicles"),
        ("ix_sites_grid_area_id", "sites"),
        ("ix_sites_customer_id", "sites"),
        ("ix_grid_areas_dso_org_id", "grid_areas"),
    ):
        op.drop_index(index, table_name=table)
    for table in ("chargers", "vehicles", "sites", "customers", "grid_areas"):
        op.drop_table(table)
