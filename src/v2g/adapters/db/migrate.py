"""Alembic migrations: apply them, and refuse to run on a schema that is behind or ahead of the code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class SchemaNotCurrentError(RuntimeError):
    """The database schema does not match the code's migrations; the message says what to run."""


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database is against the code's migration heads."""

    current: frozenset[str]
    heads: frozenset[str]
    unknown: frozenset[str]

    @property
    def up_to_date(self) -> bool:
        return self.current == self.heads


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to ``engine`` (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply migrations up to ``revision`` (all by default)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base`` for an empty schema)."""
    command.downgrade(alembic_config(engine), revision)


def schema_status(engine: Engine) -> SchemaStatus:
    """Compare the database's revision(s) with the migration heads shipped with the code."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    heads = frozenset(script.get_heads())
    with engine.connect() as conn:
        current = frozenset(MigrationContext.configure(conn).get_current_heads())
    known = {rev.revision for rev in script.walk_revisions()}
    return SchemaStatus(current=current, heads=heads, unknown=frozenset(current - known))


def ensure_schema_current(engine: Engine) -> None:
    """Raise :class:`SchemaNotCurrentError` unless the schema is exactly at the code's heads."""
    status = schema_status(engine)
    if status.up_to_date:
        return
    where = engine.url.render_as_string(hide_password=True)
    if status.unknown:
        msg = (
            f"database {where} is at revision {sorted(status.unknown)}, newer than this code knows "
            f"(heads {sorted(status.heads)}): upgrade the platform, or point V2G_DATABASE_URL elsewhere"
        )
    elif not status.current:
        msg = f"database {where} has no schema yet: run `v2g db upgrade`"
    else:
        msg = (
            f"database {where} is at revision {sorted(status.current)}, behind {sorted(status.heads)}: "
            "run `v2g db upgrade`"
        )
    raise SchemaNotCurrentError(msg)
