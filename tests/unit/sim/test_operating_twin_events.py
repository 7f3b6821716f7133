"""The twin's households arrive, leave and follow their schedules exactly when their stays say."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from v2g.fleet.model import ChargerProtocol, PriceArea
from v2g.fleet.schedule import PowerSchedule
from v2g.sim.operating_twin import OperatingTwin, PlugSession, TwinEv
from v2g.units import QUARTER

PROTOCOL = ChargerProtocol.OCPP21
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _evs(n: int) -> list[TwinEv]:
    return [
        TwinEv(
            f"ev-{i}", f"c-{i}", f"cp-{i}", f"s-{i}", "area-1", PriceArea.SE3, ChargerProtocol.OCPP21, 60.0, 11.0, 10.0
        )
        for i in range(n)
    ]


def _stays(rng: random.Random, n: int) -> dict[str, list[PlugSession]]:
    """Non-overlapping stays per EV (some before the start, some shorter than a step of the world)."""
    out: dict[str, list[PlugSession]] = {}
    for i in range(n):
        t = START - timedelta(minutes=rng.randint(0, 600))
        stays = []
        for _ in range(rng.randint(0, 4)):
            arrival = t + timedelta(seconds=rng.randint(0, 6 * 3600))
            departure = arrival + timedelta(seconds=rng.randint(1, 10 * 3600))
            stays.append(PlugSession(arrival, departure, 20.0, 40.0))
            t = departure
        rng.shuffle(stays)  # the twin orders them itself
        out[f"ev-{i}"] = stays
    return out


def _plugged(stays: list[PlugSession], at: datetime) -> bool:
    return any(s.arrival_at <= at < s.departure_at for s in stays)


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=1, max_value=12))
def test_stays_begin_and_end_at_their_times(seed: int, n: int) -> None:
    rng = random.Random(seed)
    stays = _stays(rng, n)
    twin = OperatingTwin(_evs(n), {k: list(v) for k, v in stays.items()}, START, ())
    all_times = sorted({t for v in stays.values() for s in v for t in (s.arrival_at, s.departure_at)})
    at = START
    for _ in range(40):
        for i in range(n):
            assert bool(twin.fleet.online[i]) == _plugged(stays[f"ev-{i}"], at), (i, at)
        expected_next = next((t for t in all_times if t > at), None)
        assert twin.next_event_after(at) == expected_next
        at = at + timedelta(seconds=rng.choice([1, 60, 900, 7200]))
        twin.advance_to(at, step_s=900.0)
    # every stay that was under way at some moment the world passed ended with a departure record
    left = sorted((d.ev_id, d.at) for d in twin.departures)
    assert left == sorted({(d.ev_id, d.at) for d in twin.departures})  # each once
    for ev_id, departure_at in left:
        assert departure_at <= at
        assert any(s.departure_at == departure_at for s in stays[ev_id])


def test_a_unit_follows_its_schedule_step_by_step_and_stops_when_its_ev_leaves() -> None:
    stay = PlugSession(START, START + timedelta(hours=1), 20.0, 40.0)
    twin = OperatingTwin(_evs(2), {"ev-0": [stay], "ev-1": []}, START, ())
    schedule = PowerSchedule("ev-0", START, (3.0, 7.0, -2.0, 5.0), QUARTER, "cp-0")
    asyncio.run(twin.gateway.send_schedules([schedule]))
    seen = []
    for minutes in (5, 20, 35, 50):
        twin.advance_to(START + timedelta(minutes=minutes), step_s=60.0)
        seen.append(round(float(twin.fleet.target_p_kw[0]), 6))
    assert seen == [3.0, 7.0, -2.0, 5.0]
    twin.advance_to(START + timedelta(hours=1, minutes=1))
    assert not twin.fleet.online[0]
    assert "cp-0" not in twin.gateway.schedules
    assert [d.ev_id for d in twin.departures] == ["ev-0"]


def test_a_stay_under_way_at_the_start_begins_with_what_charging_since_its_arrival_gave() -> None:
    """The platform did not control an EV before the run: it charged at full power towards its target."""
    evs = _evs(3)
    stays = {
        "ev-0": [PlugSession(START - timedelta(hours=1), START + timedelta(hours=5), 20.0, 40.0)],  # 1 h at 11 kW
        "ev-1": [PlugSession(START - timedelta(hours=9), START + timedelta(hours=1), 20.0, 40.0)],  # long enough
        "ev-2": [PlugSession(START + timedelta(minutes=5), START + timedelta(hours=5), 20.0, 40.0)],  # arrives later
    }
    twin = OperatingTwin(evs, stays, START, [])
    soc = {ev.ev_id: float(twin.fleet.soc_kwh[twin.fleet.ev_index[ev.ev_id]]) for ev in evs}
    assert soc["ev-0"] == 20.0 + 11.0 * 0.92
    assert soc["ev-1"] == 40.0
    twin.advance_to(START + timedelta(minutes=6))
    assert float(twin.fleet.soc_kwh[twin.fleet.ev_index["ev-2"]]) >= 20.0  # its own arrival SoC, then charging
    assert float(twin.fleet.soc_kwh[twin.fleet.ev_index["ev-2"]]) < 21.0
