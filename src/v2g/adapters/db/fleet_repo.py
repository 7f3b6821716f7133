"""Repository for fleet objects over SQLAlchemy Core (one connection = one unit of work)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, Engine, select

from v2g.adapters.db.tables.fleet import chargers, customers, grid_areas, sites, vehicles
from v2g.fleet.model import Charger, ChargerProtocol, Customer, GridArea, PriceArea, Site, Vehicle


class NotFoundError(LookupError):
    """No row with that id; the message names the kind and the id."""


class SqlFleetRepository:
    """Adds and reads fleet objects within the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- writes ---------------------------------------------------------------------------------
    def add_grid_area(self, area: GridArea) -> None:
        self.conn.execute(grid_areas.insert().values(**asdict(area)))

    def add_customer(self, customer: Customer) -> None:
        self.conn.execute(customers.insert().values(**asdict(customer)))

    def add_site(self, site: Site) -> None:
        self.conn.execute(sites.insert().values(**asdict(site)))

    def add_vehicle(self, vehicle: Vehicle) -> None:
        self.conn.execute(vehicles.insert().values(**asdict(vehicle)))

    def add_charger(self, charger: Charger) -> None:
        values = asdict(charger)
        values.pop("tags")
        self.conn.execute(chargers.insert().values(**values))

    # -- reads ----------------------------------------------------------------------------------
    def grid_areas(self) -> list[GridArea]:
        rows = self.conn.execute(select(grid_areas).order_by(grid_areas.c.id)).mappings()
        return [_grid_area(row) for row in rows]

    def grid_area(self, area_id: str) -> GridArea:
        row = self.conn.execute(select(grid_areas).where(grid_areas.c.id == area_id)).mappings().first()
        if row is None:
            msg = f"grid area {area_id!r} not found"
            raise NotFoundError(msg)
        return _grid_area(row)

    def customer(self, customer_id: str) -> Customer:
        row = self.conn.execute(select(customers).where(customers.c.id == customer_id)).mappings().first()
        if row is None:
            msg = f"customer {customer_id!r} not found"
            raise NotFoundError(msg)
        return Customer(**dict(row))

    def sites_of(self, customer_id: str) -> list[Site]:
        rows = self.conn.execute(select(sites).where(sites.c.customer_id == customer_id)).mappings()
        return [Site(**{**dict(r), "price_area": PriceArea(r["price_area"])}) for r in rows]

    def vehicles_of(self, customer_id: str) -> list[Vehicle]:
        rows = self.conn.execute(select(vehicles).where(vehicles.c.customer_id == customer_id)).mappings()
        return [Vehicle(**dict(r)) for r in rows]

    def chargers_at(self, site_id: str) -> list[Charger]:
        rows = self.conn.execute(select(chargers).where(chargers.c.site_id == site_id)).mappings()
        return [Charger(**{**dict(r), "protocol": ChargerProtocol(r["protocol"])}) for r in rows]

    def count(self, table_name: str) -> int:
        table = {t.name: t for t in (grid_areas, customers, sites, vehicles, chargers)}[table_name]
        return len(self.conn.execute(select(table.c.id)).all())


class SqlGridAreas:
    """Grid areas read over an engine, one short transaction per call."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def grid_areas(self) -> list[GridArea]:
        with self.engine.connect() as conn:
            return SqlFleetRepository(conn).grid_areas()


def _grid_area(row: Any) -> GridArea:
    return GridArea(**{**dict(row), "price_area": PriceArea(row["price_area"])})
