"""Commands to chargers and their answers, as values (the gateway port sends them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


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


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A charger's raw answer: ``status`` is the protocol status (lower case) or offline / timeout / error."""

    status: str
    detail: str = ""


def summarise_acks(acks: Sequence[Ack]) -> dict[AckStatus, int]:
    """Count acknowledgements by status (for logs and the plan's feedback)."""
    counts: dict[AckStatus, int] = {}
    for ack in acks:
        counts[ack.status] = counts.get(ack.status, 0) + 1
    return counts
