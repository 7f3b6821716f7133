"""Owner preferences: validation per field, Swedish local departures across daylight saving."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from v2g.fleet.preferences import OwnerPreferences, PreferencesError, parse_preferences

WEEKDAYS_0730 = (time(7, 30),) * 5 + (None, None)


def test_valid_preferences_pass() -> None:
    prefs = OwnerPreferences("ev1", WEEKDAYS_0730, target_soc_percent=90, min_soc_percent=30)
    assert prefs.problems() == []
    prefs.validate()


def test_every_problem_is_reported_with_its_field() -> None:
    prefs = OwnerPreferences(
        "",
        (time(7, 0),) * 6,
        target_soc_percent=70,
        min_soc_percent=80,
        charge_now_until=datetime(2026, 12, 1, 12, 0),  # naive
    )
    with pytest.raises(PreferencesError) as err:
        prefs.validate()
    problems = err.value.problems
    assert "preferences.ev_id: must not be empty" in problems
    assert "preferences.min_soc_percent: 80 is above target_soc_percent 70" in problems
    assert any(p.startswith("preferences.departure_by_weekday: has 6 entries") for p in problems)
    assert any(p.startswith("preferences.charge_now_until: naive datetime") for p in problems)
    assert len(problems) == 4


def test_percentages_must_be_percentages() -> None:
    problems = OwnerPreferences("ev1", target_soc_percent=120, min_soc_percent=float("nan")).problems()
    assert problems == [
        "preferences.target_soc_percent: 120 must lie between 0 and 100 %",
        "preferences.min_soc_percent: nan is not a number",
    ]
    assert OwnerPreferences("ev1", target_soc_percent=0, min_soc_percent=0).problems() == [
        "preferences.target_soc_percent: 0 must be above 0 %"
    ]


def test_charge_now_must_be_a_near_future_time() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    past = OwnerPreferences("ev1", charge_now_until=now - timedelta(minutes=1))
    assert past.problems(now) == ["preferences.charge_now_until: 2026-12-01T11:59:00+00:00 is not in the future"]
    far = OwnerPreferences("ev1", charge_now_until=now + timedelta(days=3))
    assert "more than 48 h ahead" in far.problems(now)[0]
    ok = OwnerPreferences("ev1", charge_now_until=now + timedelta(hours=2))
    assert ok.problems(now) == []
    assert ok.charge_now_active(now)
    assert not ok.charge_now_active(now + timedelta(hours=2))


def test_departure_is_local_wall_clock_time_across_daylight_saving() -> None:
    prefs = OwnerPreferences("ev1", WEEKDAYS_0730)
    # winter: 07:30 CET is 06:30 UTC; Tuesday 1 December 2026
    winter = prefs.departure_after(datetime(2026, 11, 30, 20, tzinfo=UTC))
    assert winter == datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
    # summer: 07:30 CEST is 05:30 UTC
    summer = prefs.departure_after(datetime(2026, 6, 15, 20, tzinfo=UTC))
    assert summer == datetime(2026, 6, 16, 5, 30, tzinfo=UTC)
    # Friday evening: no departure at the weekend, so Monday
    monday = prefs.departure_after(datetime(2026, 12, 4, 18, tzinfo=UTC))
    assert monday == datetime(2026, 12, 7, 6, 30, tzinfo=UTC)
    assert OwnerPreferences("ev1").departure_after(datetime(2026, 12, 4, 18, tzinfo=UTC)) is None


def test_opt_out_holds_for_the_local_day() -> None:
    prefs = OwnerPreferences("ev1", opt_out_on=date(2026, 12, 1))
    assert prefs.opted_out(datetime(2026, 11, 30, 23, 30, tzinfo=UTC))  # 00:30 local on 1 December
    assert prefs.opted_out(datetime(2026, 12, 1, 22, 59, tzinfo=UTC))
    assert not prefs.opted_out(datetime(2026, 12, 1, 23, 0, tzinfo=UTC))  # midnight local: 2 December


def test_parse_from_a_mapping() -> None:
    prefs = parse_preferences(
        "ev1",
        {
            "departure_by_weekday": {"monday": "07:15", "Friday": "06:00"},
            "target_soc_percent": 85,
            "min_soc_percent": 25,
            "charge_now_until": "2026-12-01T14:00:00+01:00",
            "opt_out_on": "2026-12-02",
        },
    )
    assert prefs.departure_by_weekday[0] == time(7, 15)
    assert prefs.departure_by_weekday[4] == time(6, 0)
    assert prefs.departure_by_weekday[1] is None
    assert prefs.charge_now_until == datetime(2026, 12, 1, 13, tzinfo=UTC)
    assert prefs.opt_out_on == date(2026, 12, 2)


def test_parse_collects_every_problem() -> None:
    with pytest.raises(PreferencesError) as err:
        parse_preferences(
            "ev1",
            {
                "departure_by_weekday": {"mon": "07:00", "tuesday": "25:00", "friday": 7},
                "target_soc_percent": "full",
                "min_soc_percent": 50,
                "charge_now_until": "soon",
                "opt_out_on": "tomorrow",
                "colour": "red",
            },
        )
    problems = err.value.problems
    assert problems == (
        "preferences.colour: unknown setting (known: charge_now_until, departure_by_weekday, min_soc_percent, "
        "opt_out_on, target_soc_percent)",
        "preferences.departure_by_weekday.mon: not a weekday (monday ... sunday)",
        "preferences.departure_by_weekday.tuesday: '25:00' is not a time of day (HH:MM)",
        "preferences.departure_by_weekday.friday: 7 is not a time of day (HH:MM)",
        "preferences.target_soc_percent: 'full' is not a number",
        "preferences.charge_now_until: 'soon' is not an ISO 8601 datetime",
        "preferences.opt_out_on: 'tomorrow' is not a date (YYYY-MM-DD)",
    )
