"""Alembic environment: runs online against the engine passed in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from v2g.adapters.db.tables import metadata

engine: Engine | None = context.config.attributes.get("engine")
if engine is None:  # pragma: no cover - guarded by v2g.adapters.db.migrate
    msg = "run migrations through `v2g db upgrade`, which passes the engine"
    raise RuntimeError(msg)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
