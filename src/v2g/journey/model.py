"""Journey domain values: a customer's journey through the blueprint's stages and the tasks in it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from v2g.units import ensure_utc


class JourneyStatus(StrEnum):
    """Where a journey is in its life."""

    ACTIVE = "active"
    PAUSED = "paused"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


class TaskStatus(StrEnum):
    """State of one task."""

    OPEN = "open"
    WAITING = "waiting"
    COMPLETED = "completed"


class TaskKind(StrEnum):
    """Who does the task: the platform (automated) or an actor (manual)."""

    AUTOMATED = "automated"
    MANUAL = "manual"


class JourneyError(ValueError):
    """A journey operation was refused; ``field`` names the offending input when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class GateRefusedError(JourneyError):
    """A stage transition was refused because gate conditions are unmet (listed in ``unmet``)."""

    def __init__(self, message: str, unmet: list[str]) -> None:
        super().__init__(f"{message}: " + "; ".join(unmet))
        self.unmet = unmet


@dataclass(frozen=True, slots=True)
class Task:
    """A blueprint action instantiated for one journey: ``item_id`` says which, ``role`` who does it."""

    id: str
    journey_id: str
    item_id: str
    stage_id: str
    actor_id: str
    role: str
    kind: TaskKind
    title: str
    created_at: datetime
    service: str | None = None
    evidence_required: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    status: TaskStatus = TaskStatus.OPEN
    outcome: str | None = None
    evidence: dict[str, str] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    waiting_reason: str | None = None
    completed_at: datetime | None = None
    completed_by: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", ensure_utc(self.created_at, field=f"task[{self.id}].created_at"))

    @property
    def done(self) -> bool:
        return self.status is TaskStatus.COMPLETED

    def complete(
        self,
        *,
        at: datetime,
        by: str,
        outcome: str | None = None,
        evidence: dict[str, str] | None = None,
        result: dict[str, Any] | None = None,
    ) -> Task:
        """The task completed; evidence and outcome are checked against what the blueprint asks for."""
        if self.done:
            msg = f"task {self.id} ({self.item_id}) is already completed"
            raise JourneyError(msg, field="task_id")
        evidence = dict(evidence or {})
        if self.kind is TaskKind.MANUAL:
            missing = [name for name in self.evidence_required if not str(evidence.get(name, "")).strip()]
            if missing:
                msg = f"task {self.item_id}: evidence missing: {', '.join(missing)}"
                raise JourneyError(msg, field="evidence")
            unknown = sorted(set(evidence) - set(self.evidence_required))
            if unknown:
                msg = f"task {self.item_id}: evidence not asked for: {', '.join(unknown)}"
                raise JourneyError(msg, field="evidence")
        if self.outcomes:
            if outcome is None:
                msg = f"task {self.item_id}: outcome required, one of {', '.join(self.outcomes)}"
                raise JourneyError(msg, field="outcome")
            if outcome not in self.outcomes:
                msg = f"task {self.item_id}: outcome {outcome!r} is not one of {', '.join(self.outcomes)}"
                raise JourneyError(msg, field="outcome")
        elif outcome is not None and self.kind is TaskKind.MANUAL:
            msg = f"task {self.item_id}: takes no outcome"
            raise JourneyError(msg, field="outcome")
        return replace(
            self,
            status=TaskStatus.COMPLETED,
            outcome=outcome,
            evidence=evidence,
            result=dict(result or self.result),
            waiting_reason=None,
            completed_at=ensure_utc(at),
            completed_by=by,
        )

    def wait(self, reason: str) -> Task:
        """An automated task cannot finish yet (e.g. the charger has not booted)."""
        return replace(self, status=TaskStatus.WAITING, waiting_reason=reason)


@dataclass(frozen=True, slots=True)
class Journey:
    """One customer's path through a blueprint."""

    id: str
    customer_id: str
    blueprint_id: str
    stage_id: str
    stage_entered_at: datetime
    created_at: datetime
    offer: str
    status: JourneyStatus = JourneyStatus.ACTIVE
    version: int = 1
    paused_at: datetime | None = None
    terminated_at: datetime | None = None
    first_active_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("stage_entered_at", "created_at"):
            object.__setattr__(self, name, ensure_utc(getattr(self, name), field=f"journey.{name}"))


@dataclass(frozen=True, slots=True)
class StageVisit:
    """A stage a journey entered (and left, when ``left_at`` is set)."""

    journey_id: str
    stage_id: str
    entered_at: datetime
    left_at: datetime | None = None
