"""Recorded planning inputs replay call by call, and a replay that goes another way says where."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from v2g.fleet.model import PriceArea
from v2g.fleet.preferences import OwnerPreferences
from v2g.services.planning.ports import AreaLimits, PluggedEv
from v2g.services.planning.recording import RecordedInputs, ReplayDivergedError, ReplayedInputs
from v2g.sim.clock import SimulatedClock

T0 = datetime(2026, 11, 9, 16, 0, tzinfo=UTC)


class Areas:
    def plugged_in(self) -> list[PluggedEv]:
        return []

    def area_limits(self, area_ids: Sequence[str]) -> list[AreaLimits]:
        return [AreaLimits(a, PriceArea.SE3, 100.0, 50.0) for a in area_ids]


def test_a_recording_replays_in_order_and_refuses_another_call() -> None:
    clock = SimulatedClock(T0)
    prefs = {"ev-1": OwnerPreferences("ev-1", target_soc_percent=60.0)}
    recorder = RecordedInputs(Areas(), prefs.get, clock.now)
    assert recorder.plugged_in() == []
    assert recorder.preferences("ev-1") == prefs["ev-1"]
    clock.advance_to(T0 + timedelta(minutes=1))
    assert [a.area_id for a in recorder.area_limits(["GA-1"])] == ["GA-1"]
    assert [(c.port, c.args, c.at) for c in recorder.calls] == [
        ("plugged_in", (), T0),
        ("preferences", ("ev-1",), T0),
        ("area_limits", ("GA-1",), T0 + timedelta(minutes=1)),
    ]

    replay_clock = SimulatedClock(T0)
    replay = ReplayedInputs(recorder.calls, replay_clock.now)
    assert replay.plugged_in() == []
    assert replay.preferences("ev-1") == prefs["ev-1"]
    assert not replay.finished
    # asked a minute early: the recorded run asked at 16:01
    with pytest.raises(ReplayDivergedError, match=r"call 2: asked area_limits\('GA-1',\) at 2026-11-09T16:00"):
        replay.area_limits(["GA-1"])
    replay_clock.advance_to(T0 + timedelta(minutes=1))
    with pytest.raises(ReplayDivergedError, match=r"recorded area_limits\('GA-1',\)"):
        replay.area_limits(["GA-2"])  # other arguments
    assert [a.area_id for a in replay.area_limits(["GA-1"])] == ["GA-1"]
    assert replay.finished
    with pytest.raises(ReplayDivergedError, match="past the end of the recording"):
        replay.plugged_in()
