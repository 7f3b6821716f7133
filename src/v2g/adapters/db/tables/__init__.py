"""All tables; importing this package registers every table on :data:`v2g.adapters.db.base.metadata`."""

from v2g.adapters.db.base import metadata
from v2g.adapters.db.tables import devices, fleet, journey, markets, operations, settlement

__all__ = ["devices", "fleet", "journey", "markets", "metadata", "operations", "settlement"]
