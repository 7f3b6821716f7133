"""The base of the SQL repository parts: each one works on the connection of one transaction."""

from __future__ import annotations

from sqlalchemy import Connection


class ConnectionBound:
    """A repository part bound to one connection; row locks where the database has them (not SQLite)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._locks = conn.dialect.name != "sqlite"
