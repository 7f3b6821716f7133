"""SQL fleet records as the journey sees them: a customer's file, chargers' V2G site ids and state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select, update

from v2g.adapters.db.bound import ConnectionBound
from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.tables.fleet import chargers, customers, grid_areas, sites
from v2g.fleet.model import Charger, Customer, GridArea, Site, Vehicle
from v2g.services.journey.ports import CustomerFile

_UNSET: Any = ...


class SqlJourneyFleetRecords(ConnectionBound):
    """Implements :class:`v2g.services.journey.ports.FleetRecords`."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.fleet = SqlFleetRepository(conn)

    def add_customer(self, customer: Customer) -> None:
        self.fleet.add_customer(customer)

    def add_site(self, site: Site) -> None:
        self.fleet.add_site(site)

    def add_vehicle(self, vehicle: Vehicle) -> None:
        self.fleet.add_vehicle(vehicle)

    def add_charger(self, charger: Charger) -> None:
        self.fleet.add_charger(charger)

    def customer(self, customer_id: str) -> Customer | None:
        row = self.conn.execute(select(customers).where(customers.c.id == customer_id)).mappings().first()
        return Customer(**dict(row)) if row else None

    def customer_file(self, customer_id: str) -> CustomerFile:
        customer = self.customer(customer_id)
        if customer is None:
            msg = f"customer {customer_id!r} not found"
            raise LookupError(msg)
        site_list = self.fleet.sites_of(customer_id)
        charger_list = [c for s in site_list for c in self.fleet.chargers_at(s.id)]
        return CustomerFile(customer, site_list, self.fleet.vehicles_of(customer_id), charger_list)

    def grid_area(self, area_id: str) -> GridArea | None:
        row = self.conn.execute(select(grid_areas).where(grid_areas.c.id == area_id)).mappings().first()
        return self.fleet.grid_area(area_id) if row else None

    def grid_areas_of_dso(self, organisation_id: str) -> list[GridArea]:
        return [a for a in self.fleet.grid_areas() if a.dso_org_id == organisation_id]

    def set_charger(self, charger_id: str, *, v2g_site_id: str | None = _UNSET, active: bool | None = None) -> None:
        values: dict[str, Any] = {}
        if v2g_site_id is not _UNSET:
            values["v2g_site_id"] = v2g_site_id
        if active is not None:
            values["active"] = active
        if values:
            self.conn.execute(update(chargers).where(chargers.c.id == charger_id).values(**values))

    def charger_owner(self, charger_id: str) -> str | None:
        q = (
            select(sites.c.customer_id)
            .join(chargers, chargers.c.site_id == sites.c.id)
            .where(chargers.c.id == charger_id)
        )
        return self.conn.execute(q).scalar()

    def committed_export_kw(self, grid_area_id: str) -> float:
        q = (
            select(func.coalesce(func.sum(chargers.c.max_discharge_kw), 0.0))
            .join(sites, sites.c.id == chargers.c.site_id)
            .where(sites.c.grid_area_id == grid_area_id, chargers.c.v2g_site_id.is_not(None), chargers.c.active)
        )
        return float(self.conn.execute(q).scalar() or 0.0)
