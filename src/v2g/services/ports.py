"""Ports: the small interfaces the use cases need from the outside world.

Adapters implement them (OCPP gateway, database repositories, real clock); tests use fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from v2g.fleet.schedule import PowerSchedule


class Clock(Protocol):
    """Where "now" comes from (a real clock, or a simulated one in the digital twin)."""

    def now(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Setpoint:
    """An immediate power command: ``p_kw > 0`` charge, ``< 0`` discharge, until ``valid_until``."""

    charger_id: str
    p_kw: float
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class FrequencyCurvePoint:
    """One point of a charger's local frequency-to-power curve (OCPP 2.1 LocalFrequency)."""

    frequency_hz: float
    p_kw: float


class AckStatus(StrEnum):
    """How a charger answered a command."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    OFFLINE = "offline"
    TIMEOUT = "timeout"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class Ack:
    """A charger's answer to one command."""

    charger_id: str
    status: AckStatus
    detail: str = ""


class ChargerGateway(Protocol):
    """Sends commands to chargers, whatever protocol each one speaks."""

    async def send_schedules(self, schedules: Sequence[PowerSchedule]) -> list[Ack]:
        """Install planned schedules (charging profiles) on the chargers named in them."""
        ...

    async def send_setpoints(self, setpoints: Sequence[Setpoint]) -> list[Ack]:
        """Apply immediate setpoints (central control, e.g. frequency response)."""
        ...

    async def configure_frequency_curve(
        self, charger_id: str, curve: Sequence[FrequencyCurvePoint], valid_until: datetime | None = None
    ) -> Ack:
        """Configure a charger's own frequency response (local control)."""
        ...

    async def deactivate(self, charger_id: str) -> Ack:
        """Stop V2G at a charger for good (termination): clear profiles, make it unavailable."""
        ...
