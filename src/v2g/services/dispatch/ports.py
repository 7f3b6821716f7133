"""Ports of real-time dispatch: where frequency comes from, and what the units report back.

A :class:`FrequencySource` is a recorded file replayed at any speed or a live measurement; a
:class:`DispatchedFleet` reads back the units' state of charge and measured power (meter values on a
real fleet, the physical model in the digital twin). Commands go out through
:class:`v2g.services.devices.ports.ChargerGateway`; the verified delivery of each hour is kept in a
:class:`DeliveryLog`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from v2g.dispatch.ler import EnergyState
from v2g.dispatch.pool import BoolArray, FloatArray
from v2g.dispatch.verification import DeliveryRecord


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


class DeliveryLog(Protocol):
    """Where the verified delivery of each hour is kept, one record per bidding group and product."""

    def delivered(self, hour_start_at: datetime) -> Sequence[DeliveryRecord]:
        """The records of the hour starting at ``hour_start_at`` (a clock hour) kept so far."""
        ...

    def save(self, records: Sequence[DeliveryRecord]) -> None:
        """Keep ``records``, replacing those of the same group, product and hour (one transaction)."""
        ...
