"""The planning cycle's inputs, recorded and replayed.

A :class:`RecordedInputs` sits between the planning cycle and its two input ports (the fleet state
and the owner's preferences) and keeps every answer they gave, in order, with the time of the call.
:class:`ReplayedInputs` answers the same calls from such a recording, and refuses a call that is
not the one recorded next (another port, other arguments or another time): a platform fed the
recording makes exactly the decisions the recorded one made, or says where it went another way.

This is how an operating day over real chargers is re-run on the twin (the twin's gateway and clock,
another database) to show that the platform's plans depend only on what reached its ports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from v2g.fleet.preferences import OwnerPreferences
from v2g.services.planning.ports import AreaLimits, FleetStateReader, PluggedEv

PreferencesLookup = Callable[[str], OwnerPreferences | None]


class ReplayDivergedError(RuntimeError):
    """A replayed platform asked its ports for something the recorded one did not ask at that point."""


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One answer of an input port: which port, with what, when, and what it answered."""

    at: datetime
    port: str  # "plugged_in", "area_limits" or "preferences"
    args: tuple[str, ...]
    result: Any


class RecordedInputs:
    """Records what ``fleet`` and ``preferences`` answer the planning cycle (thread-safe: the cycle
    reads its ports from worker threads)."""

    def __init__(self, fleet: FleetStateReader, preferences: PreferencesLookup, now: Callable[[], datetime]) -> None:
        self._fleet, self._preferences, self._now = fleet, preferences, now
        self._lock = threading.Lock()
        self.calls: list[RecordedCall] = []

    def _keep(self, port: str, args: tuple[str, ...], result: Any) -> None:
        with self._lock:
            self.calls.append(RecordedCall(self._now(), port, args, result))

    def plugged_in(self) -> list[PluggedEv]:
        evs = list(self._fleet.plugged_in())
        self._keep("plugged_in", (), tuple(evs))
        return evs

    def area_limits(self, area_ids: Sequence[str]) -> list[AreaLimits]:
        areas = list(self._fleet.area_limits(area_ids))
        self._keep("area_limits", tuple(area_ids), tuple(areas))
        return areas

    def preferences(self, ev_id: str) -> OwnerPreferences | None:
        found = self._preferences(ev_id)
        self._keep("preferences", (ev_id,), found)
        return found


class ReplayedInputs:
    """Answers the planning cycle's input ports from a recording, call by call."""

    def __init__(self, calls: Sequence[RecordedCall], now: Callable[[], datetime]) -> None:
        self._calls, self._now = list(calls), now
        self._lock = threading.Lock()
        self.position = 0

    @property
    def finished(self) -> bool:
        """Every recorded call was asked for."""
        return self.position == len(self._calls)

    def _next(self, port: str, args: tuple[str, ...]) -> Any:
        with self._lock:
            k = self.position
            if k >= len(self._calls):
                msg = f"call {k}: {port}{args} at {self._now().isoformat()} is past the end of the recording"
                raise ReplayDivergedError(msg)
            call = self._calls[k]
            if (call.port, call.args, call.at) != (port, args, self._now()):
                msg = (
                    f"call {k}: asked {port}{args} at {self._now().isoformat()}, "
                    f"recorded {call.port}{call.args} at {call.at.isoformat()}"
                )
                raise ReplayDivergedError(msg)
            self.position += 1
            return call.result

    def plugged_in(self) -> list[PluggedEv]:
        return list(self._next("plugged_in", ()))

    def area_limits(self, area_ids: Sequence[str]) -> list[AreaLimits]:
        return list(self._next("area_limits", tuple(area_ids)))

    def preferences(self, ev_id: str) -> OwnerPreferences | None:
        found: OwnerPreferences | None = self._next("preferences", (ev_id,))
        return found
