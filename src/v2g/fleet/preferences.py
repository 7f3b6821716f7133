"""The owner's charging preferences for one EV ("set up charging schedule", "adjust settings").

Per EV: a departure time per weekday in Swedish local time (Europe/Stockholm; the owner thinks in
wall-clock time, so 07:00 stays 07:00 across the daylight-saving changes), a target and a minimum
state of charge in percent, a "charge now" override (charge at full power until a time, no
discharge, no reserves) and an opt-out for one local day (no V2G that day: smart charging only).

:meth:`OwnerPreferences.problems` collects every problem with one message per field
(``preferences.min_soc_percent: 80 is above target_soc_percent 70``); :func:`parse_preferences`
builds the value from a JSON-like mapping and reports the same way. The planner's use of these
values is in :mod:`v2g.planning.needs`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from v2g.units import ensure_utc, parse_utc

STOCKHOLM = ZoneInfo("Europe/Stockholm")
WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CHARGE_NOW_MAX = timedelta(hours=48)  # a charge-now override is a short-term request, not a standing rule


class PreferencesError(ValueError):
    """Invalid preferences; ``problems`` lists one message per field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        head = problems[0] if len(problems) == 1 else f"{len(problems)} problems in the preferences"
        super().__init__(head if len(problems) == 1 else head + ":\n  " + "\n  ".join(problems))


def local_time(at: datetime) -> datetime:
    """``at`` as Swedish wall-clock time."""
    return ensure_utc(at).astimezone(STOCKHOLM)


def at_local(day: date, clock: time) -> datetime:
    """The UTC instant of a Swedish wall-clock time on a local date.

    A time that does not exist (the spring-forward hour) is read with the offset before the change,
    i.e. one hour later in the new offset; a time that occurs twice (autumn) means the first one.
    """
    return datetime.combine(day, clock, tzinfo=STOCKHOLM).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class OwnerPreferences:
    """What the owner asked for one EV.

    ``departure_by_weekday``: seven entries, Monday to Sunday, the local time the EV leaves that
    day (``None``: no regular departure that day). ``charge_now_until``: aware UTC instant until
    which the EV charges at full power. ``opt_out_on``: the local date (Europe/Stockholm) on which
    the owner wants no V2G.
    """

    ev_id: str
    departure_by_weekday: tuple[time | None, ...] = (None,) * 7
    target_soc_percent: float = 80.0
    min_soc_percent: float = 20.0
    charge_now_until: datetime | None = None
    opt_out_on: date | None = None

    def problems(self, now: datetime | None = None) -> list[str]:
        """Every problem, one message per field; with ``now``, also whether a charge-now time is current."""
        out: list[str] = []
        if not self.ev_id:
            out.append("preferences.ev_id: must not be empty")
        numbers_ok = True
        for name, low, high in (("target_soc_percent", 0.0, 100.0), ("min_soc_percent", 0.0, 100.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                out.append(f"preferences.{name}: {value!r} is not a number")
                numbers_ok = False
            elif not low <= value <= high:
                out.append(f"preferences.{name}: {value:g} must lie between {low:g} and {high:g} %")
                numbers_ok = False
        if numbers_ok:
            if self.target_soc_percent <= 0:
                out.append(f"preferences.target_soc_percent: {self.target_soc_percent:g} must be above 0 %")
            if self.min_soc_percent > self.target_soc_percent:
                out.append(
                    f"preferences.min_soc_percent: {self.min_soc_percent:g} is above "
                    f"target_soc_percent {self.target_soc_percent:g}"
                )
        if len(self.departure_by_weekday) != 7:
            out.append(
                f"preferences.departure_by_weekday: has {len(self.departure_by_weekday)} entries, "
                "expected 7 (Monday to Sunday)"
            )
        else:
            for day, clock in zip(WEEKDAYS, self.departure_by_weekday, strict=True):
                checked: object = clock  # values may come from untyped callers
                if checked is None:
                    continue
                if not isinstance(checked, time):
                    out.append(f"preferences.departure_by_weekday.{day}: {checked!r} is not a time of day")
                elif checked.tzinfo is not None:
                    out.append(
                        f"preferences.departure_by_weekday.{day}: {checked.isoformat()} must be a local wall-clock "
                        "time without a time zone (Europe/Stockholm is implied)"
                    )
        if self.charge_now_until is not None:
            try:
                until = ensure_utc(self.charge_now_until, field="preferences.charge_now_until")
            except (ValueError, TypeError) as exc:
                out.append(str(exc))
            else:
                if now is not None:
                    current = ensure_utc(now)
                    if until <= current:
                        out.append(f"preferences.charge_now_until: {until.isoformat()} is not in the future")
                    elif until - current > CHARGE_NOW_MAX:
                        out.append(
                            f"preferences.charge_now_until: {until.isoformat()} is more than "
                            f"{CHARGE_NOW_MAX.total_seconds() / 3600:g} h ahead; charge now is a short-term override"
                        )
        if self.opt_out_on is not None and (
            not isinstance(self.opt_out_on, date) or isinstance(self.opt_out_on, datetime)
        ):
            out.append(f"preferences.opt_out_on: {self.opt_out_on!r} is not a date")
        return out

    def validate(self, now: datetime | None = None) -> None:
        """Raise :class:`PreferencesError` listing every problem."""
        problems = self.problems(now)
        if problems:
            raise PreferencesError(problems)

    def departure_after(self, now: datetime, within_days: int = 7) -> datetime | None:
        """The next regular departure (aware UTC) strictly after ``now``, or ``None`` if none is set."""
        local = local_time(now)
        for offset in range(within_days + 1):
            day = local.date() + timedelta(days=offset)
            clock = self.departure_by_weekday[day.weekday()] if len(self.departure_by_weekday) == 7 else None
            if clock is None:
                continue
            at = at_local(day, clock)
            if at > ensure_utc(now):
                return at
        return None

    def charge_now_active(self, now: datetime) -> bool:
        """Whether the charge-now override is in force at ``now``."""
        return self.charge_now_until is not None and ensure_utc(self.charge_now_until) > ensure_utc(now)

    def opted_out(self, now: datetime) -> bool:
        """Whether the owner opted out of V2G for the local day of ``now``."""
        return self.opt_out_on is not None and self.opt_out_on == local_time(now).date()


def _parse_clock(value: Any, where: str, problems: list[str]) -> time | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            clock = time.fromisoformat(value)
        except ValueError:
            problems.append(f"{where}: {value!r} is not a time of day (HH:MM)")
            return None
        if clock.tzinfo is not None:
            problems.append(f"{where}: {value!r} must not carry a time zone (Europe/Stockholm is implied)")
            return None
        return clock
    problems.append(f"{where}: {value!r} is not a time of day (HH:MM)")
    return None


def parse_preferences(ev_id: str, data: Mapping[str, Any], now: datetime | None = None) -> OwnerPreferences:
    """Preferences from a JSON-like mapping; raises :class:`PreferencesError` listing every problem.

    Keys: ``departure_by_weekday`` (``{"monday": "07:30", ...}``, missing days have no departure),
    ``target_soc_percent``, ``min_soc_percent``, ``charge_now_until`` (ISO 8601 with offset),
    ``opt_out_on`` (``YYYY-MM-DD``, local date). Unknown keys are refused.
    """
    problems: list[str] = []
    known = {"departure_by_weekday", "target_soc_percent", "min_soc_percent", "charge_now_until", "opt_out_on"}
    for key in sorted(set(data) - known):
        problems.append(f"preferences.{key}: unknown setting (known: {', '.join(sorted(known))})")
    departures: list[time | None] = [None] * 7
    table = data.get("departure_by_weekday", {})
    if not isinstance(table, Mapping):
        problems.append("preferences.departure_by_weekday: must be a mapping from weekday name to HH:MM")
    else:
        for key, value in table.items():
            day = str(key).lower()
            if day not in WEEKDAYS:
                problems.append(f"preferences.departure_by_weekday.{key}: not a weekday (monday ... sunday)")
                continue
            departures[WEEKDAYS.index(day)] = _parse_clock(value, f"preferences.departure_by_weekday.{day}", problems)
    numbers: dict[str, float] = {}
    for name, default in (("target_soc_percent", 80.0), ("min_soc_percent", 20.0)):
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"preferences.{name}: {value!r} is not a number")
            numbers[name] = default
        else:
            numbers[name] = float(value)
    until: datetime | None = None
    raw_until = data.get("charge_now_until")
    if raw_until is not None:
        try:
            until = parse_utc(str(raw_until), field="preferences.charge_now_until")
        except ValueError as exc:
            problems.append(str(exc))
    opt_out: date | None = None
    raw_opt = data.get("opt_out_on")
    if raw_opt is not None:
        try:
            opt_out = date.fromisoformat(str(raw_opt))
        except ValueError:
            problems.append(f"preferences.opt_out_on: {raw_opt!r} is not a date (YYYY-MM-DD)")
    prefs = OwnerPreferences(
        ev_id=ev_id,
        departure_by_weekday=tuple(departures),
        target_soc_percent=numbers["target_soc_percent"],
        min_soc_percent=numbers["min_soc_percent"],
        charge_now_until=until,
        opt_out_on=opt_out,
    )
    problems.extend(p for p in prefs.problems(now) if p not in problems)
    if problems:
        raise PreferencesError(problems)
    return prefs
