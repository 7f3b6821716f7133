"""Fleet tables: grid areas, customers, sites, vehicles, chargers."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Column, Float, ForeignKey, Integer, String, Table

from v2g.adapters.db.base import UTCDateTime, metadata

grid_areas = Table(
    "grid_areas",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("dso_org_id", String(64), nullable=True, index=True),
    Column("price_area", String(3), nullable=False),
    Column("import_limit_kw", Float, nullable=False),
    Column("export_limit_kw", Float, nullable=False),
    Column("hosting_capacity_kw", Float, nullable=False),
    Column("connection_queue_length", Integer, nullable=False, default=0),
    CheckConstraint("price_area IN ('SE1','SE2','SE3','SE4')", name="price_area"),
)

customers = Table(
    "customers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False),
    Column("phone", String(40), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

sites = Table(
    "sites",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False, index=True),
    Column("address", String(400), nullable=False),
    Column("price_area", String(3), nullable=False),
    Column("grid_area_id", String(64), ForeignKey("grid_areas.id"), nullable=False, index=True),
    Column("main_fuse_a", Integer, nullable=False),
    Column("phases", Integer, nullable=False, default=3),
    Column("voltage_v", Float, nullable=False, default=230.0),
    Column("household_peak_kw", Float, nullable=False, default=0.0),
    Column("pv_kw", Float, nullable=False, default=0.0),
    Column("has_bess", Boolean, nullable=False, default=False),
    CheckConstraint("price_area IN ('SE1','SE2','SE3','SE4')", name="price_area"),
    CheckConstraint("main_fuse_a > 0", name="main_fuse_positive"),
)

vehicles = Table(
    "vehicles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_id", String(64), ForeignKey("customers.id"), nullable=False, index=True),
    Column("site_id", String(64), ForeignKey("sites.id"), nullable=True),
    Column("make", String(100), nullable=False),
    Column("model", String(100), nullable=False),
    Column("battery_kwh", Float, nullable=False),
    Column("max_charge_kw", Float, nullable=False),
    Column("max_discharge_kw", Float, nullable=False),
    Column("v2g_capable", Boolean, nullable=False, default=True),
)

chargers = Table(
    "chargers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("site_id", String(64), ForeignKey("sites.id"), nullable=False, index=True),
    Column("vendor", String(100), nullable=False),
    Column("model", String(100), nullable=False),
    Column("protocol", String(16), nullable=False),
    Column("max_charge_kw", Float, nullable=False),
    Column("max_discharge_kw", Float, nullable=False),
    Column("v2g_site_id", String(64), nullable=True, unique=True),
    Column("active", Boolean, nullable=False, default=True),
    CheckConstraint("protocol IN ('ocpp1.6','ocpp2.0.1','ocpp2.1')", name="protocol"),
)
