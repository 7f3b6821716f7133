"""The owner's settings for an EV ("set up charging schedule", "adjust settings"): read, change, audit.

An owner sees and changes the preferences of their own EVs; an aggregator operator those of the
customers its organisation serves; the platform itself all of them. Every other role is refused
before any EV is looked up, and an EV the caller may not see is answered exactly like an unknown
one, so nothing about other customers leaks.

A change is checked field by field (every bad field is named in one :class:`PreferencesError`,
under the names the caller used: ``departures.mon``, ``target_soc_percent``, ...), stored with
optimistic locking (the caller names the version it read), written to the audit log with the
values before and after, and announced to the ``on_change`` listeners so the planning cycle plans
the EV again with the new values (``cycle.mark_changed``).

Until the owner sets anything, the platform defaults apply: departure 07:00 every day (Swedish
local time), target 80 %, minimum 20 %, no charge-now, no opt-out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import Any

from v2g.fleet.preferences import WEEKDAYS, OwnerPreferences, PreferencesError, local_time, parse_preferences
from v2g.planning.needs import NeedsDefaults
from v2g.services.actors.ports import AuditEntry, ForbiddenError, NotFoundError, Principal
from v2g.services.clock import Clock
from v2g.services.planning.ports import AuditLog, EvAccess, EvOwnership, PreferencesStore
from v2g.units import parse_utc

log = logging.getLogger("v2g.planning.preferences")

DAY_KEYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OWNER_ROLE = "owner"
AGGREGATOR_ROLE = "aggregator_operator"
ALLOWED_ROLES = (OWNER_ROLE, AGGREGATOR_ROLE, "system")
SETTINGS = ("departures", "target_soc_percent", "min_soc_percent", "charge_now_until", "opt_out_today", "opt_out_on")
_PROBLEM = re.compile(r"^preferences\.([A-Za-z_]+)(?:\.([A-Za-z_]+))?:")

ChangeListener = Callable[[str], None]
"""Called with the EV id after its preferences changed."""


@dataclass(frozen=True, slots=True)
class PreferencesView:
    """An EV's preferences as the owner sees them: stored (with version) or the platform defaults."""

    preferences: OwnerPreferences
    version: int | None
    updated_at: datetime | None
    updated_by: str | None
    is_default: bool

    def to_json(self, now: datetime) -> dict[str, Any]:
        """The JSON form of the API and the audit log (``opt_out_today``, ``charge_now_active`` as of ``now``)."""
        p = self.preferences
        return {
            "ev_id": p.ev_id,
            "departures": {
                key: None if clock is None else _clock_text(clock)
                for key, clock in zip(DAY_KEYS, p.departure_by_weekday, strict=True)
            },
            "target_soc_percent": p.target_soc_percent,
            "min_soc_percent": p.min_soc_percent,
            "charge_now_until": p.charge_now_until.isoformat() if p.charge_now_until else None,
            "charge_now_active": p.charge_now_active(now),
            "opt_out_on": p.opt_out_on.isoformat() if p.opt_out_on else None,
            "opt_out_today": p.opted_out(now),
            "version": self.version,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
            "is_default": self.is_default,
        }


def _clock_text(clock: time) -> str:
    return clock.isoformat(timespec="minutes") if clock.second == 0 and clock.microsecond == 0 else clock.isoformat()


def _caller_name(problem: str) -> str:
    """A core problem message under the field names the caller used (``departures.mon``, not the core's)."""
    match = _PROBLEM.match(problem)
    if match is None:
        return problem
    name, sub = match.group(1), match.group(2)
    if name == "departure_by_weekday":
        short = DAY_KEYS[WEEKDAYS.index(sub)] if sub in WEEKDAYS else sub
        field = "departures" if sub is None else f"departures.{short}"
    else:
        field = name if sub is None else f"{name}.{sub}"
    return field + problem[match.end() - 1 :]


class PreferencesService:
    """Reads and changes owners' preferences with role checks, optimistic locking and an audit record."""

    def __init__(
        self,
        store: PreferencesStore,
        access: EvAccess,
        clock: Clock,
        audit: AuditLog,
        *,
        defaults: NeedsDefaults | None = None,
        on_change: Iterable[ChangeListener] = (),
    ) -> None:
        self.store = store
        self.access = access
        self.clock = clock
        self.audit_log = audit
        self.defaults = defaults or NeedsDefaults()
        self.on_change: list[ChangeListener] = list(on_change)

    # ------------------------------------------------------------------ queries
    def default_preferences(self, ev_id: str) -> OwnerPreferences:
        """What applies while the owner has set nothing."""
        d = self.defaults
        return OwnerPreferences(ev_id, (d.departure_local,) * 7, d.target_soc_percent, d.min_soc_percent)

    def get(self, who: Principal, ev_id: str) -> PreferencesView:
        """The EV's preferences (or the defaults, marked as such) if ``who`` may see the EV."""
        self._visible(who, ev_id)
        return self._current(ev_id)

    def for_planning(self, ev_ids: Iterable[str]) -> dict[str, OwnerPreferences]:
        """The stored preferences of these EVs (EVs without any get the planner's own defaults)."""
        return self.store.get_many(ev_ids)

    # ------------------------------------------------------------------ change
    def update(
        self, who: Principal, ev_id: str, data: Mapping[str, Any], expected_version: int | None
    ) -> PreferencesView:
        """Replace the EV's preferences with ``data``; ``expected_version`` is the version the caller read.

        Settings (all optional; an omitted one takes the platform default): ``departures``
        (``{"mon": "07:00" | None, ...}``; an omitted day departs at the default time, ``None`` means
        no departure that day), ``target_soc_percent``, ``min_soc_percent``, ``charge_now_until``
        (ISO 8601 with offset, or None), ``opt_out_today`` (bool) or ``opt_out_on`` (local date).
        """
        ownership = self._visible(who, ev_id)
        now = self.clock.now()
        before = self._current(ev_id)
        prefs = self._parse(ev_id, data, now, before.preferences)
        version = self.store.save(prefs, by=who.user_id, at=now, expected_version=expected_version)
        after = PreferencesView(prefs, version, now, who.user_id, is_default=False)
        self.audit_log.audit(
            AuditEntry(
                at=now,
                user_id=who.user_id,
                organisation_id=who.organisation_id,
                action="preferences.update",
                entity="owner_preferences",
                entity_id=ev_id,
                journey_id=ownership.journey_id if ownership else None,
                before=before.to_json(now),
                after=after.to_json(now),
            )
        )
        for listener in list(self.on_change):
            try:
                listener(ev_id)
            except Exception:  # a listener's failure must not undo a stored, audited change
                log.exception("preferences change listener failed for EV %s", ev_id)
        return after

    # ------------------------------------------------------------------ internals
    def _visible(self, who: Principal, ev_id: str) -> EvOwnership | None:
        """The EV's ownership if ``who`` may see it; refuses other roles before looking anything up."""
        if who.role not in ALLOWED_ROLES:
            msg = f"role {who.role!r} may not see or change owner preferences (allowed: owner, {AGGREGATOR_ROLE})"
            raise ForbiddenError(msg)
        ownership = self.access.owner_of(ev_id)
        visible = ownership is not None and (
            who.role == "system"
            or (who.role == OWNER_ROLE and who.customer_id is not None and who.customer_id == ownership.customer_id)
            or (who.role == AGGREGATOR_ROLE and self.access.serves(who.organisation_id, ownership.customer_id))
        )
        if not visible:
            msg = f"EV {ev_id!r} not found"
            raise NotFoundError(msg)
        return ownership

    def _current(self, ev_id: str) -> PreferencesView:
        stored = self.store.get(ev_id)
        if stored is None:
            return PreferencesView(self.default_preferences(ev_id), None, None, None, is_default=True)
        return PreferencesView(stored.preferences, stored.version, stored.updated_at, stored.updated_by, False)

    def _parse(self, ev_id: str, data: Mapping[str, Any], now: datetime, old: OwnerPreferences) -> OwnerPreferences:
        """Validate ``data`` into preferences; raises :class:`PreferencesError` naming every bad field."""
        problems: list[str] = []
        for key in sorted(set(data) - set(SETTINGS), key=str):
            problems.append(f"{key}: unknown setting (known: {', '.join(SETTINGS)})")
        core: dict[str, Any] = {}
        for name in ("target_soc_percent", "min_soc_percent"):
            if data.get(name) is not None:
                core[name] = data[name]
        core["departure_by_weekday"] = self._departures(data.get("departures"), problems)

        # an unchanged charge-now time is kept without the "in the future" check (it may have run out)
        kept_until: datetime | None = None
        raw_until = data.get("charge_now_until")
        if raw_until is not None:
            try:
                same = old.charge_now_until is not None and parse_utc(str(raw_until)) == old.charge_now_until
            except ValueError:
                same = False
            if same:
                kept_until = old.charge_now_until
            else:
                core["charge_now_until"] = raw_until

        opt_out_today = data.get("opt_out_today")
        if opt_out_today is not None and not isinstance(opt_out_today, bool):
            problems.append(f"opt_out_today: {opt_out_today!r} is not true or false")
            opt_out_today = None
        today = local_time(now).date()
        if opt_out_today:
            if data.get("opt_out_on") not in (None, today.isoformat()):
                problems.append(f"opt_out_today: set together with opt_out_on {data['opt_out_on']!r}; give one of them")
            core["opt_out_on"] = today.isoformat()
        elif data.get("opt_out_on") is not None:
            core["opt_out_on"] = data["opt_out_on"]

        try:
            prefs = parse_preferences(ev_id, core, now)
        except PreferencesError as exc:
            problems.extend(_caller_name(p) for p in exc.problems)
            raise PreferencesError(problems) from None
        if problems:
            raise PreferencesError(problems)
        if kept_until is not None:
            prefs = replace(prefs, charge_now_until=kept_until if kept_until > now else None)
        return prefs

    def _departures(self, table: Any, problems: list[str]) -> dict[str, Any]:
        """The core's weekday table from ``{"mon": "07:00" | None, ...}``; omitted days get the default."""
        default = _clock_text(self.defaults.departure_local)
        out: dict[str, Any] = dict.fromkeys(WEEKDAYS, default)
        if table is None:
            return out
        if not isinstance(table, Mapping):
            problems.append("departures: must map weekdays (mon ... sun) to HH:MM or null")
            return out
        for key, value in table.items():
            day = str(key).lower()
            if day in DAY_KEYS:
                day = WEEKDAYS[DAY_KEYS.index(day)]
            if day not in WEEKDAYS:
                problems.append(f"departures.{key}: not a weekday (mon, tue, wed, thu, fri, sat, sun)")
                continue
            out[day] = value
        return out
