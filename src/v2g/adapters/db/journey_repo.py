"""SQL repository for the journey engine (SQLAlchemy Core), plus its unit of work.

``SqlJourneyRepository`` combines the repository parts (actors, fleet records, journeys, audit,
outbox, exit feedback), all on the one connection of the unit of work's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from v2g.adapters.db.actors_repo import SqlActorRepository
from v2g.adapters.db.journey_fleet_repo import SqlJourneyFleetRecords
from v2g.adapters.db.journey_records_repo import SqlJourneyRecords
from v2g.adapters.db.records_repo import SqlAuditRecords, SqlFeedbackRecords, SqlOutboxRecords, SqlSecretRecords
from v2g.services.actors.ports import DuplicateError


class SqlJourneyRepository(
    SqlActorRepository,
    SqlJourneyFleetRecords,
    SqlJourneyRecords,
    SqlAuditRecords,
    SqlOutboxRecords,
    SqlSecretRecords,
    SqlFeedbackRecords,
):
    """Implements :class:`v2g.services.journey.ports.JourneyRepository` on one connection."""

    def savepoint(self) -> AbstractContextManager[object]:
        return self.conn.begin_nested()


def sql_unit_of_work(engine: Engine) -> Any:
    """A :data:`v2g.services.journey.ports.UnitOfWork` over ``engine``."""

    @contextmanager
    def uow() -> Iterator[SqlJourneyRepository]:
        try:
            with engine.begin() as conn:
                yield SqlJourneyRepository(conn)
        except IntegrityError as exc:
            msg = f"conflicting write, nothing was saved: {exc.orig}"
            raise DuplicateError(msg) from exc

    return uow
