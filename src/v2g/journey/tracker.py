"""The per-customer preparation status tracker and the go-live estimate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from v2g.blueprint.model import Blueprint
from v2g.journey.engine import SlaStatus, sla_status
from v2g.journey.model import Journey, JourneyStatus, Task, TaskStatus
from v2g.journey.rules import JourneyRules


@dataclass(frozen=True, slots=True)
class NextStep:
    """An open task: what, who, and whether it waits on something."""

    task_id: str
    item_id: str
    title: str
    actor_id: str
    role: str
    status: TaskStatus
    waiting_reason: str | None = None


@dataclass(frozen=True, slots=True)
class GoLiveEstimate:
    """When the service is expected to start, with its uncertainty (half the earliest-latest window)."""

    expected_at: datetime | None
    earliest_at: datetime | None
    latest_at: datetime | None
    uncertainty_days: float | None
    basis: str


@dataclass(frozen=True, slots=True)
class StatusTracker:
    """What an owner (and everyone serving them) sees about where the journey stands."""

    journey_id: str
    customer_id: str
    status: JourneyStatus
    stage_id: str
    stage_name: str
    stage_index: int
    stage_count: int
    sla: SlaStatus
    next_steps: tuple[NextStep, ...]
    waiting_on: tuple[str, ...]
    dso_queue_position: int | None
    preliminary_connection_at: datetime | None
    go_live: GoLiveEstimate
    dso: dict[str, Any] = field(default_factory=dict)


def _dso_info(tasks: Sequence[Task]) -> dict[str, Any]:
    for task in tasks:
        if task.service == "dso_feasibility_indication" and task.result:
            return dict(task.result)
    return {}


def go_live_estimate(
    blueprint: Blueprint, journey: Journey, now: datetime, rules: JourneyRules, dso: dict[str, Any]
) -> GoLiveEstimate:
    """Sum of the remaining stages' SLA windows up to the go-live stage.

    For the current stage only the remaining part of its window counts (at least 0 days). The DSO's
    preliminary connection date, when known, moves the earliest date to at least that day.
    """
    try:
        live_idx = blueprint.stage_index(rules.go_live_stage)
    except KeyError:
        return GoLiveEstimate(None, None, None, None, f"blueprint has no go-live stage {rules.go_live_stage!r}")
    idx = blueprint.stage_index(journey.stage_id)
    if journey.first_active_at is not None or idx >= live_idx:
        at = journey.first_active_at or journey.stage_entered_at
        return GoLiveEstimate(at, at, at, 0.0, "live")
    elapsed = (now - journey.stage_entered_at).total_seconds() / 86400
    lo = hi = 0.0
    unknown: list[str] = []
    for i in range(idx, live_idx):
        stage = blueprint.stages[i]
        if stage.sla is None:
            unknown.append(stage.id)
            continue
        done = elapsed if i == idx else 0.0
        lo += max(0.0, stage.sla.min_days - done)
        hi += max(0.0, stage.sla.max_days - done)
    earliest, latest = now + timedelta(days=lo), now + timedelta(days=hi)
    basis = "stage timelines"
    prelim = dso.get("preliminary_connection_at")
    if isinstance(prelim, str):
        connection = datetime.fromisoformat(prelim)
        if connection > earliest:
            earliest = connection
            latest = max(latest, connection)
            basis += " and the DSO's preliminary connection date"
    if unknown:
        basis += f" (no timeline for {', '.join(unknown)})"
    expected = earliest + (latest - earliest) / 2
    return GoLiveEstimate(expected, earliest, latest, round((latest - earliest).total_seconds() / 86400 / 2, 1), basis)


def status_tracker(
    blueprint: Blueprint, journey: Journey, tasks: Sequence[Task], now: datetime, rules: JourneyRules
) -> StatusTracker:
    """Stage, SLA, next steps, who is waited on, DSO queue, and the go-live estimate."""
    idx = blueprint.stage_index(journey.stage_id)
    stage = blueprint.stages[idx]
    steps = tuple(
        NextStep(t.id, t.item_id, t.title, t.actor_id, t.role, t.status, t.waiting_reason) for t in tasks if not t.done
    )
    dso = _dso_info(tasks)
    prelim = dso.get("preliminary_connection_at")
    return StatusTracker(
        journey_id=journey.id,
        customer_id=journey.customer_id,
        status=journey.status,
        stage_id=stage.id,
        stage_name=stage.name,
        stage_index=idx,
        stage_count=len(blueprint.stages),
        sla=sla_status(stage, journey.stage_entered_at, now),
        next_steps=steps,
        waiting_on=tuple(sorted({s.actor_id for s in steps})),
        dso_queue_position=dso.get("queue_position"),
        preliminary_connection_at=datetime.fromisoformat(prelim) if isinstance(prelim, str) else None,
        go_live=go_live_estimate(blueprint, journey, now, rules, dso),
        dso=dso,
    )
