"""The one place that wires concrete adapters from settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.migrate import ensure_schema_current
from v2g.config import Settings


@dataclass
class Container:
    """Everything a running platform needs, built once at start-up."""

    settings: Settings
    engine: Engine


def bootstrap(settings: Settings | None = None, *, check_schema: bool = True) -> Container:
    """Build the container; refuse an unmigrated or newer schema unless ``check_schema`` is off."""
    settings = settings or Settings()
    engine = make_engine(settings.database_url)
    if check_schema:
        ensure_schema_current(engine)
    return Container(settings=settings, engine=engine)
