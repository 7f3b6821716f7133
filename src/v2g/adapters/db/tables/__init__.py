"""All tables; importing this package registers every table on :data:`v2g.adapters.db.base.metadata`."""

from v2g.adapters.db.base import metadata
from v2g.adapters.db.tables import devices, evidence, fleet, grid, journey, markets, operations, settlement

__all__ = ["devices", "evidence", "fleet", "grid", "journey", "markets", "metadata", "operations", "settlement"]
