"""The preferences use case on in-memory ports: defaults, validation per field, roles, locking, audit, re-planning."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from v2g.fleet.preferences import OwnerPreferences, PreferencesError
from v2g.planning.rules import load_rules
from v2g.services.actors.ports import AuditEntry, ForbiddenError, NotFoundError, Principal
from v2g.services.planning.cycle import PlanningCycle
from v2g.services.planning.ports import EvOwnership, PreferencesConflictError, StoredPreferences
from v2g.services.planning.preferences import PreferencesService
from v2g.services.planning.signal_book import GridSignalBook

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Stockholm

OWNER1 = Principal("u-o1", "org-owner-c1", "owner", customer_id="c1")
OWNER2 = Principal("u-o2", "org-owner-c2", "owner", customer_id="c2")
AGG = Principal("u-agg", "org-agg", "aggregator_operator")
AGG2 = Principal("u-agg2", "org-agg2", "aggregator_operator")
INSTALLER = Principal("u-inst", "org-agg", "installer")  # same organisation id, other role


class Clock:
    def __init__(self) -> None:
        self.at = NOW

    def now(self) -> datetime:
        return self.at


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[str, StoredPreferences] = {}

    def get(self, ev_id: str) -> StoredPreferences | None:
        return self.rows.get(ev_id)

    def get_many(self, ev_ids: Iterable[str]) -> dict[str, OwnerPreferences]:
        return {e: self.rows[e].preferences for e in ev_ids if e in self.rows}

    def save(self, prefs: OwnerPreferences, *, by: str, at: datetime, expected_version: int | None) -> int:
        if prefs.ev_id not in ("veh-c1", "veh-c2"):
            raise NotFoundError(prefs.ev_id)
        old = self.rows.get(prefs.ev_id)
        stored_version = old.version if old else None
        if stored_version != expected_version:
            raise PreferencesConflictError(prefs.ev_id, expected_version, stored_version)
        version = (stored_version or 0) + 1
        self.rows[prefs.ev_id] = StoredPreferences(prefs, version, at, by)
        return version


class MemoryAccess:
    def __init__(self) -> None:
        self.owners = {"veh-c1": "c1", "veh-c2": "c2"}
        self.served = {("org-agg", "c1")}

    def owner_of(self, ev_id: str) -> EvOwnership | None:
        customer = self.owners.get(ev_id)
        return EvOwnership(ev_id, customer, f"j-{customer}") if customer else None

    def serves(self, organisation_id: str, customer_id: str) -> bool:
        return (organisation_id, customer_id) in self.served


class MemoryAudit:
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    def audit(self, entry: AuditEntry) -> None:
        self.entries.append(entry)


@pytest.fixture
def parts() -> tuple[PreferencesService, MemoryStore, MemoryAudit, Clock, list[str]]:
    store, audit, clock, changed = MemoryStore(), MemoryAudit(), Clock(), []
    service = PreferencesService(store, MemoryAccess(), clock, audit, on_change=[changed.append])
    return service, store, audit, clock, changed


GOOD = {
    "departures": {"mon": "07:30", "tue": "07:30", "wed": None, "sat": None, "sun": None},
    "target_soc_percent": 90,
    "min_soc_percent": 30,
}


def test_defaults_apply_until_the_owner_sets_anything(parts: tuple) -> None:
    service, *_ = parts
    view = service.get(OWNER1, "veh-c1")
    assert view.is_default
    assert view.version is None
    assert view.preferences == OwnerPreferences("veh-c1", (time(7, 0),) * 7, 80.0, 20.0)
    shown = view.to_json(NOW)
    assert shown["departures"] == dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "07:00")
    assert (shown["target_soc_percent"], shown["min_soc_percent"], shown["is_default"]) == (80.0, 20.0, True)


def test_owner_sets_preferences_and_omitted_days_depart_at_the_default(parts: tuple) -> None:
    service, store, audit, _, changed = parts
    view = service.update(OWNER1, "veh-c1", GOOD, expected_version=None)
    assert view.version == 1
    assert not view.is_default
    assert view.preferences.departure_by_weekday == (
        time(7, 30),
        time(7, 30),
        None,
        time(7, 0),
        time(7, 0),
        None,
        None,
    )
    assert (view.preferences.target_soc_percent, view.preferences.min_soc_percent) == (90.0, 30.0)
    assert store.rows["veh-c1"].updated_by == "u-o1"
    assert service.get(OWNER1, "veh-c1").version == 1
    assert service.for_planning(["veh-c1", "veh-c2"]) == {"veh-c1": view.preferences}
    assert changed == ["veh-c1"]
    [entry] = audit.entries
    assert (entry.user_id, entry.organisation_id, entry.action, entry.entity_id) == (
        "u-o1",
        "org-owner-c1",
        "preferences.update",
        "veh-c1",
    )
    assert entry.journey_id == "j-c1"
    assert entry.at == NOW
    assert entry.before is not None
    assert entry.after is not None
    assert entry.before["is_default"] is True
    assert entry.before["target_soc_percent"] == 80.0
    assert entry.after["target_soc_percent"] == 90
    assert entry.after["version"] == 1


def test_every_bad_field_is_named_in_one_error_and_nothing_changes(parts: tuple) -> None:
    service, store, audit, _, changed = parts
    bad = {
        "departures": {"mon": "25:00", "funday": "07:00", "tue": 7},
        "target_soc_percent": "lots",
        "min_soc_percent": 120,
        "charge_now_until": "2026-11-02T18:00:00",  # naive
        "opt_out_today": "yes",
        "colour": "blue",
    }
    with pytest.raises(PreferencesError) as err:
        service.update(OWNER1, "veh-c1", bad, expected_version=None)
    fields = {p.split(":", 1)[0] for p in err.value.problems}
    assert fields == {
        "departures.mon",
        "departures.funday",
        "departures.tue",
        "target_soc_percent",
        "min_soc_percent",
        "charge_now_until",
        "opt_out_today",
        "colour",
    }
    assert not any(p.startswith("preferences.") for p in err.value.problems)
    assert store.rows == {}
    assert audit.entries == []
    assert changed == []


def test_min_above_target_and_a_charge_now_too_far_ahead_are_refused(parts: tuple) -> None:
    service, *_ = parts
    data = {"target_soc_percent": 60, "min_soc_percent": 70, "charge_now_until": "2026-11-05T09:00:00+01:00"}
    with pytest.raises(PreferencesError) as err:
        service.update(OWNER1, "veh-c1", data, expected_version=None)
    assert err.value.problems == (
        "min_soc_percent: 70 is above target_soc_percent 60",
        "charge_now_until: 2026-11-05T08:00:00+00:00 is more than 48 h ahead; charge now is a short-term override",
    )


def test_charge_now_and_opt_out_today(parts: tuple) -> None:
    service, _, _, clock, _ = parts
    data = {"charge_now_until": "2026-11-02T12:00:00+01:00", "opt_out_today": True}
    view = service.update(OWNER1, "veh-c1", data, expected_version=None)
    assert view.preferences.charge_now_until == datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
    assert view.preferences.opt_out_on == date(2026, 11, 2)
    shown = view.to_json(NOW)
    assert shown["charge_now_active"]
    assert shown["opt_out_today"]
    # the override runs out; re-sending the same value keeps working (it is dropped, not refused)
    clock.at = NOW + timedelta(hours=3)
    again = service.update(OWNER1, "veh-c1", {**data, "opt_out_today": False}, expected_version=1)
    assert again.preferences.charge_now_until is None
    assert again.preferences.opt_out_on is None
    # a new time in the past is refused
    with pytest.raises(PreferencesError, match=r"charge_now_until: .* is not in the future"):
        service.update(OWNER1, "veh-c1", {"charge_now_until": "2026-11-02T10:30:00+00:00"}, expected_version=2)
    with pytest.raises(PreferencesError, match="opt_out_today: set together with opt_out_on"):
        service.update(OWNER1, "veh-c1", {"opt_out_today": True, "opt_out_on": "2026-11-09"}, expected_version=2)
    later = service.update(OWNER1, "veh-c1", {"opt_out_on": "2026-11-09"}, expected_version=2)
    assert later.preferences.opt_out_on == date(2026, 11, 9)
    assert not later.to_json(clock.at)["opt_out_today"]


def test_stale_version_is_a_conflict_and_is_not_audited(parts: tuple) -> None:
    service, store, audit, _, changed = parts
    service.update(OWNER1, "veh-c1", GOOD, expected_version=None)
    service.update(AGG, "veh-c1", {**GOOD, "target_soc_percent": 85}, expected_version=1)
    with pytest.raises(PreferencesConflictError, match="stored version 2"):
        service.update(OWNER1, "veh-c1", {**GOOD, "target_soc_percent": 95}, expected_version=1)
    with pytest.raises(PreferencesConflictError):
        service.update(OWNER1, "veh-c1", GOOD, expected_version=None)
    assert store.rows["veh-c1"].preferences.target_soc_percent == 85
    assert [e.user_id for e in audit.entries] == ["u-o1", "u-agg"]
    assert audit.entries[1].before is not None
    assert audit.entries[1].before["version"] == 1
    assert changed == ["veh-c1", "veh-c1"]


def test_owners_see_only_their_own_evs_and_aggregators_the_customers_they_serve(parts: tuple) -> None:
    service, store, audit, _, _ = parts
    assert service.get(AGG, "veh-c1").is_default
    service.update(AGG, "veh-c1", GOOD, expected_version=None)
    for who, ev_id in ((OWNER2, "veh-c1"), (OWNER1, "veh-c2"), (AGG, "veh-c2"), (AGG2, "veh-c1")):
        with pytest.raises(NotFoundError, match=f"EV '{ev_id}' not found"):
            service.get(who, ev_id)
        with pytest.raises(NotFoundError):
            service.update(who, ev_id, GOOD, expected_version=1 if ev_id == "veh-c1" else None)
    # an unknown EV answers exactly like an invisible one
    with pytest.raises(NotFoundError, match="EV 'veh-none' not found"):
        service.get(OWNER1, "veh-none")
    # an owner principal without a customer sees nothing
    with pytest.raises(NotFoundError):
        service.get(Principal("u-x", "org-x", "owner"), "veh-c1")
    assert store.rows["veh-c1"].version == 1
    assert len(audit.entries) == 1


def test_other_roles_are_refused_before_any_lookup(parts: tuple) -> None:
    service, *_ = parts
    for ev_id in ("veh-c1", "veh-none"):
        with pytest.raises(ForbiddenError, match="role 'installer' may not"):
            service.get(INSTALLER, ev_id)
        with pytest.raises(ForbiddenError):
            service.update(INSTALLER, ev_id, GOOD, expected_version=None)


def test_a_failing_listener_does_not_undo_the_change(parts: tuple) -> None:
    service, store, audit, _, changed = parts

    def broken(ev_id: str) -> None:
        raise RuntimeError("planner away")

    service.on_change.insert(0, broken)
    view = service.update(OWNER1, "veh-c1", GOOD, expected_version=None)
    assert view.version == 1
    assert store.rows["veh-c1"].version == 1
    assert len(audit.entries) == 1
    assert changed == ["veh-c1"]


def test_the_planning_cycle_is_told_which_ev_changed(parts: tuple) -> None:
    service, _, _, clock, _ = parts
    unused: Any = None  # the cycle only records the change here; it plans at its next re-plan check
    cycle = PlanningCycle(
        fleet=unused,
        prices=unused,
        signals=GridSignalBook(),
        plans=unused,
        gateway=unused,
        clock=clock,
        rules=load_rules(),
        build_session=unused,
    )
    service.on_change.append(lambda ev_id: cycle.mark_changed(ev_id, "owner preferences"))
    service.update(OWNER1, "veh-c1", GOOD, expected_version=None)
    assert cycle.changed == {"veh-c1": "owner preferences"}
