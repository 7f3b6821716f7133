"""Owner preferences in SQL (SQLite and PostgreSQL): round trip, optimistic locking, unknown EVs, access, audit."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import Engine, select

from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.preferences_repo import SqlEvAccess, SqlPreferencesAudit, SqlPreferencesStore
from v2g.adapters.db.tables.journey import audit_log, organisation_customers, organisations
from v2g.adapters.db.tables.operations import owner_preferences
from v2g.fleet.model import Customer, GridArea, PriceArea, Site, Vehicle
from v2g.fleet.preferences import OwnerPreferences
from v2g.services.actors.ports import AuditEntry, NotFoundError
from v2g.services.planning.ports import PreferencesConflictError

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        repo = SqlFleetRepository(conn)
        repo.add_grid_area(GridArea("GA-1", "Area 1", None, PriceArea.SE3, 800.0, 600.0, 200.0))
        for cid in ("c1", "c2"):
            repo.add_customer(Customer(cid, f"Owner {cid}", f"{cid}@example.se", AT))
            repo.add_site(Site(f"site-{cid}", cid, "Storgatan 1", PriceArea.SE3, "GA-1", 20))
            repo.add_vehicle(Vehicle(f"veh-{cid}", cid, "Volkswagen", "ID.4", 77.0, 11.0, 10.0, site_id=f"site-{cid}"))
        conn.execute(organisations.insert().values(id="org-agg", name="Aggregator AB", role="aggregator_operator"))
        conn.execute(organisation_customers.insert().values(organisation_id="org-agg", customer_id="c1"))


@pytest.fixture
def store(engine: Engine) -> SqlPreferencesStore:
    _seed(engine)
    return SqlPreferencesStore(engine)


def _prefs(ev_id: str = "veh-c1", **changes: object) -> OwnerPreferences:
    values: dict[str, object] = {
        "departure_by_weekday": (time(7, 30), time(7, 30), None, time(6, 45), time(7, 30), None, time(18, 0)),
        "target_soc_percent": 90.0,
        "min_soc_percent": 30.0,
        "charge_now_until": AT + timedelta(hours=3),
        "opt_out_on": date(2026, 11, 3),
    }
    values.update(changes)
    return OwnerPreferences(ev_id, **values)  # type: ignore[arg-type]


def test_round_trip_keeps_every_value_and_stores_departures_by_day_key(store: SqlPreferencesStore) -> None:
    assert store.get("veh-c1") is None
    prefs = _prefs()
    assert store.save(prefs, by="u-owner", at=AT, expected_version=None) == 1
    stored = store.get("veh-c1")
    assert stored is not None
    assert stored.preferences == prefs
    assert (stored.version, stored.updated_at, stored.updated_by) == (1, AT, "u-owner")
    assert stored.updated_at.tzinfo is not None
    with store.engine.connect() as conn:
        raw = conn.execute(select(owner_preferences.c.departures_json)).scalar_one()
    assert json.loads(raw) == {
        "mon": "07:30",
        "tue": "07:30",
        "wed": None,
        "thu": "06:45",
        "fri": "07:30",
        "sat": None,
        "sun": "18:00",
    }


def test_versions_advance_and_a_stale_version_is_a_conflict(store: SqlPreferencesStore) -> None:
    store.save(_prefs(), by="u1", at=AT, expected_version=None)
    later = AT + timedelta(minutes=5)
    assert store.save(_prefs(target_soc_percent=70.0), by="u2", at=later, expected_version=1) == 2
    with pytest.raises(PreferencesConflictError, match="stored version 2") as stale:
        store.save(_prefs(target_soc_percent=60.0), by="u3", at=later, expected_version=1)
    assert (stale.value.expected_version, stale.value.stored_version) == (1, 2)
    with pytest.raises(PreferencesConflictError):  # "nothing stored yet" when something is
        store.save(_prefs(), by="u3", at=later, expected_version=None)
    with pytest.raises(PreferencesConflictError, match="none stored"):
        store.save(_prefs("veh-c2"), by="u3", at=later, expected_version=4)
    stored = store.get("veh-c1")
    assert stored is not None
    assert (stored.version, stored.updated_by, stored.preferences.target_soc_percent) == (2, "u2", 70.0)


def test_unknown_ev_is_named_and_nothing_is_written(store: SqlPreferencesStore) -> None:
    with pytest.raises(NotFoundError, match="'veh-nobody'"):
        store.save(_prefs("veh-nobody"), by="u1", at=AT, expected_version=None)
    assert store.get("veh-nobody") is None


def test_get_many_returns_only_evs_with_preferences(store: SqlPreferencesStore) -> None:
    store.save(_prefs(), by="u1", at=AT, expected_version=None)
    no_departures = _prefs("veh-c2", departure_by_weekday=(None,) * 7, charge_now_until=None, opt_out_on=None)
    store.save(no_departures, by="u1", at=AT, expected_version=None)
    found = store.get_many(["veh-c1", "veh-c2", "veh-none"])
    assert set(found) == {"veh-c1", "veh-c2"}
    assert found["veh-c2"] == no_departures
    assert store.get_many([]) == {}


def test_access_names_the_owner_and_the_serving_organisations(engine: Engine) -> None:
    _seed(engine)
    access = SqlEvAccess(engine)
    owner = access.owner_of("veh-c1")
    assert owner is not None
    assert (owner.customer_id, owner.journey_id) == ("c1", None)
    assert access.owner_of("veh-none") is None
    assert access.serves("org-agg", "c1")
    assert not access.serves("org-agg", "c2")


def test_audit_goes_to_the_append_only_log(engine: Engine) -> None:
    _seed(engine)
    entry = AuditEntry(AT, "u1", "org-agg", "preferences.update", "owner_preferences", "veh-c1", after={"a": 1})
    SqlPreferencesAudit(engine).audit(entry)
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log)).mappings().all()
    assert [(r["action"], r["entity_id"], r["after"]) for r in rows] == [("preferences.update", "veh-c1", {"a": 1})]
