"""Ports of real-time dispatch: where frequency comes from, and what the units report back.

A :class:`FrequencySource` is a recorded file replayed at any speed or a live measurement; a
:class:`DispatchedFleet` reads back the units' state of charge and measured power (meter values on a
real fleet, the physical model in the digital twin). Commands go out through
:class:`v2g.services.devices.ports.ChargerGateway`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from v2g.dispatch.ler import EnergyState
from v2g.dispatch.pool import BoolArray, FloatArray


@dataclass(frozen=True, slots=True)
class FrequencySample:
    """One grid frequency reading (UTC time of measurement)."""

    at: datetime
    f_hz: float


class FrequencySource(Protocol):
    """A stream of frequency readings, one every ``step_s`` seconds of measurement time."""

    @property
    def step_s(self) -> float:
        """Seconds of measurement time between two samples."""
        ...

    def samples(self) -> AsyncIterator[FrequencySample]:
        """The readings, in time order."""
        ...


class DispatchedFleet(Protocol):
    """What the dispatch loop reads back from the units it drives (indexed like the reserve pool)."""

    def energy(self) -> EnergyState:
        """State of charge and energy window of every unit now."""
        ...

    async def measure(self, sample: FrequencySample, step_s: float) -> tuple[FloatArray, BoolArray]:
        """Mean measured power per unit (kW, EV sign) over the step after the setpoints were sent, and
        which units answered during it."""
        ...


class FrequencyFeed(Protocol):
    """Grid frequency at any second of the platform's time (a live input's latest value, or a replay)."""

    def f_hz_at(self, at: datetime) -> float:
        """The frequency measured at ``at`` (Hz)."""
        ...
