"""Grid-interface tables: the reports an IEEE 2030.5 client has still to deliver to its utility server."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from v2g.adapters.db.base import UTCDateTime, metadata

ieee2030_5_reports = Table(
    "ieee2030_5_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("area_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # response, dercap, derg, ders, mup, mmr
    Column("target", String(400), nullable=False),  # an href, or "<kind>:<area>" resolved at delivery
    Column("body", Text, nullable=False),  # the 2030.5 XML as it was made
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(400), nullable=True),
    Index("ix_ieee2030_5_reports_created_at", "created_at"),
)
