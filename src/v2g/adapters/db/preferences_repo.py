"""SQL storage of the owners' charging preferences, who may see an EV, and their audit records.

One row per EV in ``owner_preferences``. The departures are JSON keyed ``mon`` ... ``sun`` with a
local Swedish wall-clock time (``"07:00"``) or ``null`` for a day without a departure. Writes are
optimistic: an update names the version it is based on and only succeeds while that version is
still stored (``UPDATE ... WHERE version = :expected``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from v2g.adapters.db.records_repo import SqlAuditRecords
from v2g.adapters.db.tables.fleet import vehicles
from v2g.adapters.db.tables.journey import journeys, organisation_customers
from v2g.adapters.db.tables.operations import owner_preferences
from v2g.fleet.preferences import OwnerPreferences
from v2g.services.actors.ports import AuditEntry, NotFoundError
from v2g.services.planning.ports import EvOwnership, PreferencesConflictError, StoredPreferences

DAY_KEYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock_text(clock: time) -> str:
    return clock.isoformat(timespec="minutes") if clock.second == 0 and clock.microsecond == 0 else clock.isoformat()


def departures_to_json(departures: tuple[time | None, ...]) -> str:
    """``{"mon": "07:00", ..., "sun": null}`` for the seven departures, Monday first."""
    table = {key: None if c is None else _clock_text(c) for key, c in zip(DAY_KEYS, departures, strict=True)}
    return json.dumps(table, separators=(",", ":"))


def departures_from_json(text: str) -> tuple[time | None, ...]:
    """The seven departures, Monday first, from their stored JSON (missing days have none)."""
    table: dict[str, Any] = json.loads(text)
    return tuple(None if table.get(key) is None else time.fromisoformat(str(table[key])) for key in DAY_KEYS)


def _from_row(row: Any) -> StoredPreferences:
    prefs = OwnerPreferences(
        ev_id=row["ev_id"],
        departure_by_weekday=departures_from_json(row["departures_json"]),
        target_soc_percent=float(row["target_soc_percent"]),
        min_soc_percent=float(row["min_soc_percent"]),
        charge_now_until=row["charge_now_until"],
        opt_out_on=date.fromisoformat(row["opt_out_on"]) if row["opt_out_on"] else None,
    )
    return StoredPreferences(prefs, int(row["version"]), row["updated_at"], row["updated_by"])


class SqlPreferencesStore:
    """Implements :class:`v2g.services.planning.ports.PreferencesStore`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, ev_id: str) -> StoredPreferences | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(owner_preferences).where(owner_preferences.c.ev_id == ev_id)).mappings().first()
        return _from_row(row) if row else None

    def get_many(self, ev_ids: Iterable[str]) -> dict[str, OwnerPreferences]:
        wanted = sorted(set(ev_ids))
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(owner_preferences).where(owner_preferences.c.ev_id.in_(wanted))).mappings()
            return {r["ev_id"]: _from_row(r).preferences for r in rows}

    def save(self, prefs: OwnerPreferences, *, by: str, at: datetime, expected_version: int | None) -> int:
        prefs.validate()
        values = {
            "departures_json": departures_to_json(prefs.departure_by_weekday),
            "target_soc_percent": float(prefs.target_soc_percent),
            "min_soc_percent": float(prefs.min_soc_percent),
            "charge_now_until": prefs.charge_now_until,
            "opt_out_on": prefs.opt_out_on.isoformat() if prefs.opt_out_on else None,
            "updated_at": at,
            "updated_by": by,
        }
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(vehicles.c.id).where(vehicles.c.id == prefs.ev_id)).first() is None:
                    msg = f"ev_id: EV {prefs.ev_id!r} not found"
                    raise NotFoundError(msg)
                stored = self._version(conn, prefs.ev_id)
                if stored != expected_version:
                    raise PreferencesConflictError(prefs.ev_id, expected_version, stored)
                if expected_version is None:
                    conn.execute(insert(owner_preferences).values(ev_id=prefs.ev_id, version=1, **values))
                    return 1
                t = owner_preferences.c
                done = conn.execute(
                    update(owner_preferences)
                    .where(t.ev_id == prefs.ev_id, t.version == expected_version)
                    .values(version=expected_version + 1, **values)
                )
                if done.rowcount != 1:  # changed between the read and the write
                    raise PreferencesConflictError(prefs.ev_id, expected_version, self._version(conn, prefs.ev_id))
                return expected_version + 1
        except IntegrityError as exc:  # another writer created the row first
            with self.engine.connect() as conn:
                now_stored = self._version(conn, prefs.ev_id)
            if now_stored is None:
                raise
            raise PreferencesConflictError(prefs.ev_id, expected_version, now_stored) from exc

    @staticmethod
    def _version(conn: Connection, ev_id: str) -> int | None:
        found = conn.execute(select(owner_preferences.c.version).where(owner_preferences.c.ev_id == ev_id)).scalar()
        return None if found is None else int(found)


class SqlEvAccess:
    """Implements :class:`v2g.services.planning.ports.EvAccess` from the fleet and journey records."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def owner_of(self, ev_id: str) -> EvOwnership | None:
        q = (
            select(vehicles.c.id, vehicles.c.customer_id, journeys.c.id.label("journey_id"))
            .outerjoin(journeys, journeys.c.customer_id == vehicles.c.customer_id)
            .where(vehicles.c.id == ev_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return EvOwnership(row["id"], row["customer_id"], row["journey_id"]) if row else None

    def serves(self, organisation_id: str, customer_id: str) -> bool:
        oc = organisation_customers.c
        q = select(oc.customer_id).where(oc.organisation_id == organisation_id, oc.customer_id == customer_id)
        with self.engine.connect() as conn:
            return conn.execute(q).first() is not None


class SqlPreferencesAudit:
    """Implements :class:`v2g.services.planning.ports.AuditLog` on the platform's append-only audit log."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def audit(self, entry: AuditEntry) -> None:
        with self.engine.begin() as conn:
            SqlAuditRecords(conn).audit(entry)
