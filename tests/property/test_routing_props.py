"""The routed command wire format: schedules survive the trip; any charger id gets a valid registry key."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from v2g.adapters.ocpp.routing import registry_key, schedule_from_json, schedule_to_json
from v2g.fleet.schedule import PowerSchedule

NATS_KEY = re.compile(r"[-/_=.a-zA-Z0-9]+")


@given(st.text(min_size=1, max_size=64))
def test_every_charger_id_maps_to_a_distinct_valid_key(charger_id: str) -> None:
    key = registry_key(charger_id)
    assert NATS_KEY.fullmatch(key)
    assert not key.startswith(".")
    assert not key.endswith(".")
    assert registry_key(charger_id + "x") != key


@given(
    st.lists(st.floats(min_value=-22.0, max_value=22.0, allow_nan=False), min_size=1, max_size=96),
    st.integers(min_value=0, max_value=10**8),
    st.sampled_from([60, 300, 900, 3600]),
    st.one_of(st.none(), st.from_regex(r"[A-Z]{2}-[0-9]{1,6}", fullmatch=True)),
)
def test_schedules_survive_the_wire(p_kw: list[float], offset_s: int, step_s: int, charger_id: str | None) -> None:
    schedule = PowerSchedule(
        "ev-1",
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=offset_s),
        tuple(p_kw),
        timedelta(seconds=step_s),
        charger_id,
    )
    assert schedule_from_json(schedule_to_json(schedule)) == schedule
