"""Fleet domain objects: customers, sites, vehicles, chargers and grid areas."""

from v2g.fleet.model import (
    Charger,
    ChargerProtocol,
    Customer,
    GridArea,
    PriceArea,
    Site,
    Vehicle,
)

__all__ = ["Charger", "ChargerProtocol", "Customer", "GridArea", "PriceArea", "Site", "Vehicle"]
