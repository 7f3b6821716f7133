"""The journey engine's pure rules: stage instantiation, gates, transitions and SLAs.

Nothing here touches a database or the clock: callers pass "now" and the journey's tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from v2g.blueprint.model import AllOf, Blueprint, Condition, Gate, Layer, Mode, Stage, TaskCondition
from v2g.journey.model import GateRefusedError, Journey, JourneyError, JourneyStatus, Task, TaskKind, TaskStatus

ACTION_LAYERS = (Layer.CUSTOMER, Layer.FRONTSTAGE, Layer.BACKSTAGE)


class UnknownServiceError(JourneyError):
    """The blueprint names automated services that no handler is registered for."""


def validate_services(blueprint: Blueprint, known_services: Iterable[str]) -> None:
    """Refuse a blueprint whose automated items name services the platform does not know."""
    known = set(known_services)
    unknown = sorted(
        {f"{item.id} -> {item.service}" for _, item in blueprint.items() if item.service and item.service not in known}
    )
    if unknown:
        msg = "blueprint names unknown automated services: " + ", ".join(unknown)
        raise UnknownServiceError(msg, field="service")


def actor_roles(blueprint: Blueprint) -> dict[str, str]:
    """Actor id -> organisation role."""
    return {actor.id: actor.role for actor in blueprint.actors}


def stage_tasks(blueprint: Blueprint, journey: Journey, stage_id: str, *, now: datetime) -> list[Task]:
    """The tasks a stage creates: one per automated or manual action item of that stage.

    Task ids are ``<journey id>:<item id>``, so instantiating a stage twice cannot duplicate tasks.
    """
    lanes = {lane.id: lane for lane in blueprint.lanes}
    roles = actor_roles(blueprint)
    tasks: list[Task] = []
    for cell in blueprint.cells:
        if cell.stage != stage_id:
            continue
        lane = lanes[cell.lane]
        if lane.layer not in ACTION_LAYERS:
            continue
        actor_id = lane.actor or "customer"
        for item in cell.items:
            if item.mode is Mode.INFORMATIONAL:
                continue
            tasks.append(
                Task(
                    id=f"{journey.id}:{item.id}",
                    journey_id=journey.id,
                    item_id=item.id,
                    stage_id=stage_id,
                    actor_id=actor_id,
                    role=roles.get(actor_id, actor_id),
                    kind=TaskKind.AUTOMATED if item.mode is Mode.AUTOMATED else TaskKind.MANUAL,
                    title=item.text,
                    created_at=now,
                    service=item.service,
                    evidence_required=item.evidence,
                    outcomes=item.outcomes,
                )
            )
    return tasks


def unmet_conditions(condition: Condition, tasks: Mapping[str, Task], *, describe: Mapping[str, str]) -> list[str]:
    """The parts of ``condition`` that do not hold, as readable text (empty when it holds)."""
    if isinstance(condition, TaskCondition):
        task = tasks.get(condition.task)
        label = describe.get(condition.task, condition.task)
        if task is None or not task.done:
            state = "not started" if task is None else task.status.value
            want = f" with outcome {condition.outcome!r}" if condition.outcome else ""
            return [f"{condition.task} ({label}) must be completed{want}; it is {state}"]
        if condition.outcome is not None and task.outcome != condition.outcome:
            return [f"{condition.task} ({label}) must have outcome {condition.outcome!r}; it has {task.outcome!r}"]
        return []
    if isinstance(condition, AllOf):
        return [text for sub in condition.all for text in unmet_conditions(sub, tasks, describe=describe)]
    parts = [unmet_conditions(sub, tasks, describe=describe) for sub in condition.any]
    if any(not p for p in parts):
        return []
    return ["one of: [" + " | ".join("; ".join(p) for p in parts) + "]"]


def gates_for(blueprint: Blueprint, stage_id: str, on: str) -> list[Gate]:
    """The gates of one stage on entry or exit."""
    return [g for g in blueprint.gates if g.stage == stage_id and g.on == on]


def transition_unmet(blueprint: Blueprint, from_stage: str, to_stage: str, tasks: Sequence[Task]) -> list[str]:
    """Every unmet condition for leaving ``from_stage`` and entering ``to_stage``, prefixed by gate id."""
    by_item = {t.item_id: t for t in tasks}
    describe = {item.id: item.text for _, item in blueprint.items()}
    unmet: list[str] = []
    for gate in [*gates_for(blueprint, from_stage, "exit"), *gates_for(blueprint, to_stage, "entry")]:
        unmet += [f"gate {gate.id}: {text}" for text in unmet_conditions(gate.requires, by_item, describe=describe)]
    return unmet


def exit_unmet(blueprint: Blueprint, stage_id: str, tasks: Sequence[Task]) -> list[str]:
    """Unmet conditions of the stage's exit gates (e.g. before a termination counts as complete)."""
    by_item = {t.item_id: t for t in tasks}
    describe = {item.id: item.text for _, item in blueprint.items()}
    return [
        f"gate {gate.id}: {text}"
        for gate in gates_for(blueprint, stage_id, "exit")
        for text in unmet_conditions(gate.requires, by_item, describe=describe)
    ]


def next_stage(blueprint: Blueprint, stage_id: str) -> Stage | None:
    """The stage after ``stage_id`` (None at the end)."""
    i = blueprint.stage_index(stage_id)
    return blueprint.stages[i + 1] if i + 1 < len(blueprint.stages) else None


def check_advance(blueprint: Blueprint, journey: Journey, tasks: Sequence[Task], to_stage: str | None = None) -> Stage:
    """The stage the journey may move to now; raise :class:`GateRefusedError` listing unmet conditions.

    A journey moves one stage forward at a time; the termination stage is entered through
    termination only, never by advancing.
    """
    if journey.status is not JourneyStatus.ACTIVE:
        msg = f"journey {journey.id} is {journey.status.value}; only an active journey advances"
        raise JourneyError(msg, field="status")
    target = next_stage(blueprint, journey.stage_id)
    if target is None:
        msg = f"journey {journey.id} is at the last stage {journey.stage_id}"
        raise JourneyError(msg, field="stage_id")
    if to_stage is not None and to_stage != target.id:
        try:
            blueprint.stage_index(to_stage)
        except KeyError:
            msg = f"to_stage: unknown stage {to_stage!r}"
            raise JourneyError(msg, field="to_stage") from None
        msg = f"to_stage: journey {journey.id} at {journey.stage_id} can only move to {target.id}, not {to_stage}"
        raise JourneyError(msg, field="to_stage")
    unmet = transition_unmet(blueprint, journey.stage_id, target.id, tasks)
    if unmet:
        msg = f"journey {journey.id} cannot move from {journey.stage_id} to {target.id}"
        raise GateRefusedError(msg, unmet)
    return target


def stage_complete(tasks: Sequence[Task], stage_id: str) -> bool:
    """Whether every task of the stage is completed (a stage without tasks is complete)."""
    return all(t.done for t in tasks if t.stage_id == stage_id)


def enter(journey: Journey, stage: Stage, *, now: datetime) -> Journey:
    """The journey in ``stage`` from ``now``."""
    return replace(journey, stage_id=stage.id, stage_entered_at=now)


# ---------------------------------------------------------------------------------------------- SLAs
class SlaState(StrEnum):
    """How a stage's time compares with its timeline."""

    NONE = "none"
    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"


@dataclass(frozen=True, slots=True)
class SlaStatus:
    """Due dates of the current stage, from the blueprint's timeline row."""

    state: SlaState
    elapsed_days: float
    warn_at: datetime | None = None
    due_at: datetime | None = None
    min_days: int | None = None
    max_days: int | None = None


def sla_status(stage: Stage, entered_at: datetime, now: datetime) -> SlaStatus:
    """OK until ``warning_ratio`` of ``max_days`` passed, then warning, breached after ``max_days``."""
    elapsed_days = (now - entered_at).total_seconds() / 86400
    if stage.sla is None:
        return SlaStatus(SlaState.NONE, elapsed_days)
    due_at = entered_at + timedelta(days=stage.sla.max_days)
    warn_at = entered_at + timedelta(days=stage.sla.max_days * stage.sla.warning_ratio)
    state = SlaState.BREACHED if now > due_at else SlaState.WARNING if now >= warn_at else SlaState.OK
    return SlaStatus(state, elapsed_days, warn_at, due_at, stage.sla.min_days, stage.sla.max_days)


def open_tasks(tasks: Sequence[Task]) -> list[Task]:
    """Tasks still to be done, oldest stage first."""
    return [t for t in tasks if t.status is not TaskStatus.COMPLETED]
