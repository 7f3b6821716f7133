"""Commands to chargers and their answers, as values (the gateway port sends them)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import overload

import numpy as np
import numpy.typing as npt


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


@dataclass(frozen=True, slots=True)
class SetpointBatch(Sequence[Setpoint]):
    """Setpoints for many chargers at once (central dispatch answers every second for a whole pool).

    ``p_kw[j]`` is for ``charger_ids[units[j]]``; ``charger_ids`` is the pool's list, shared from call
    to call. It is a sequence of :class:`Setpoint` for any gateway; a gateway that can act on
    arrays (the digital twin) reads the arrays instead of building one value per charger.
    """

    charger_ids: Sequence[str]
    units: npt.NDArray[np.intp]
    p_kw: npt.NDArray[np.float64]
    valid_until: datetime | None = None

    def __post_init__(self) -> None:
        if self.units.shape != self.p_kw.shape:
            msg = f"setpoints.p_kw: {self.p_kw.shape[0]} values for {self.units.shape[0]} units"
            raise ValueError(msg)

    def __len__(self) -> int:
        return int(self.units.shape[0])

    @overload
    def __getitem__(self, j: int) -> Setpoint: ...

    @overload
    def __getitem__(self, j: slice) -> list[Setpoint]: ...

    def __getitem__(self, j: int | slice) -> Setpoint | list[Setpoint]:
        if isinstance(j, slice):
            return [self[k] for k in range(*j.indices(len(self)))]
        return Setpoint(self.charger_ids[int(self.units[j])], float(self.p_kw[j]), self.valid_until)

    def __iter__(self) -> Iterator[Setpoint]:
        for unit, p_kw in zip(self.units.tolist(), self.p_kw.tolist(), strict=True):
            yield Setpoint(self.charger_ids[unit], p_kw, self.valid_until)


_STATUSES = tuple(AckStatus)


@dataclass(frozen=True, slots=True)
class AckBatch(Sequence[Ack]):
    """The answers to a :class:`SetpointBatch`, as arrays (``status[j]`` indexes :class:`AckStatus`)."""

    charger_ids: Sequence[str]
    units: npt.NDArray[np.intp]
    status: npt.NDArray[np.int8]
    details: dict[int, str] = field(default_factory=dict)  # by position j, for answers other than accepted

    @classmethod
    def of(cls, batch: SetpointBatch, status: npt.NDArray[np.int8], details: dict[int, str] | None = None) -> AckBatch:
        return cls(batch.charger_ids, batch.units, status, details or {})

    @property
    def accepted(self) -> npt.NDArray[np.bool_]:
        accepted: npt.NDArray[np.bool_] = self.status == STATUS_CODE[AckStatus.ACCEPTED]
        return accepted

    def __len__(self) -> int:
        return int(self.units.shape[0])

    @overload
    def __getitem__(self, j: int) -> Ack: ...

    @overload
    def __getitem__(self, j: slice) -> list[Ack]: ...

    def __getitem__(self, j: int | slice) -> Ack | list[Ack]:
        if isinstance(j, slice):
            return [self[k] for k in range(*j.indices(len(self)))]
        k = range(len(self))[j]
        return Ack(self.charger_ids[int(self.units[k])], _STATUSES[int(self.status[k])], self.details.get(k, ""))


STATUS_CODE: dict[AckStatus, int] = {s: i for i, s in enumerate(_STATUSES)}


def accepted_mask(acks: Sequence[Ack]) -> npt.NDArray[np.bool_]:
    """Which answers are ``accepted``, as an array (without building values for a batch)."""
    if isinstance(acks, AckBatch):
        return acks.accepted
    return np.fromiter((a.status is AckStatus.ACCEPTED for a in acks), dtype=bool, count=len(acks))
