"""The V2G service blueprint as data: model, loader, validation, rendering and export. Pure."""

from v2g.blueprint.errors import BlueprintError, Problem
from v2g.blueprint.export import export_blueprint
from v2g.blueprint.loader import load_blueprint
from v2g.blueprint.model import Blueprint
from v2g.blueprint.validate import KPI_IDS, iter_conditions, validate_blueprint

__all__ = [
    "KPI_IDS",
    "Blueprint",
    "BlueprintError",
    "Problem",
    "export_blueprint",
    "iter_conditions",
    "load_blueprint",
    "validate_blueprint",
]
