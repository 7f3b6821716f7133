"""Ports for fleet reference data."""

from __future__ import annotations

from typing import Protocol

from v2g.fleet.model import GridArea


class GridAreaReader(Protocol):
    """The DSO grid areas the platform knows."""

    def grid_areas(self) -> list[GridArea]:
        """Every grid area, by id."""
        ...
