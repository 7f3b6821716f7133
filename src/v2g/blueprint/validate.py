"""Referential checks of a blueprint (the schema itself is checked by the pydantic model).

Every problem names the file, the id of the offending item (or stage, lane, gate, actor) and what
is wrong. Service names are *not* checked here: which services exist is the journey engine's
registry's business, so a blueprint may name services another deployment provides.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator

from v2g.blueprint.errors import Problem
from v2g.blueprint.model import AllOf, AnyOf, Blueprint, Condition, Item, Lane, Layer, Mode, Origin, TaskCondition

KPI_IDS: frozenset[str] = frozenset(
    {
        "funnel_by_stage",
        "time_in_stage_vs_sla",
        "onboarding_completion_rate",
        "first_week_activity_rate",
        "pause_rate",
        "churn_rate",
        "churn_reasons",
        "time_to_value_indication",
        "contract_reading_time",
        "support_contacts_per_customer",
    }
)
"""The KPIs the platform can measure; a fact/metric's ``kpi`` must name one of them."""

INSIGHT_ROWS: frozenset[str] = frozenset({"synchronisation", "facts_metrics", "pitfalls", "ideas", "policies"})
"""The process-insight rows a lane ``insight.<row>`` may name."""

_EVIDENCE_NAME = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*")
_LANE_PREFIX = {"front": Layer.FRONTSTAGE, "back": Layer.BACKSTAGE, "insight": Layer.INSIGHT}


def validate_blueprint(blueprint: Blueprint, *, file: str = "<blueprint>") -> list[Problem]:
    """Every referential problem of ``blueprint``; an empty list means it is valid."""
    return list(_check(blueprint, file))


def iter_conditions(condition: Condition) -> Iterator[TaskCondition]:
    """The task conditions inside a (possibly nested) condition, depth first."""
    if isinstance(condition, TaskCondition):
        yield condition
    elif isinstance(condition, AllOf):
        for inner in condition.all:
            yield from iter_conditions(inner)
    elif isinstance(condition, AnyOf):
        for inner in condition.any:
            yield from iter_conditions(inner)


def _duplicates(ids: Iterable[str]) -> list[str]:
    return [key for key, count in Counter(ids).items() if count > 1]


def _check(bp: Blueprint, file: str) -> Iterator[Problem]:
    def problem(where: str, message: str) -> Problem:
        return Problem(file, where, message)

    actors = {a.id for a in bp.actors}
    stages = {s.id for s in bp.stages}
    lanes = {lane.id: lane for lane in bp.lanes}

    for kind, ids in (
        ("actor", [a.id for a in bp.actors]),
        ("stage", [s.id for s in bp.stages]),
        ("lane", [lane.id for lane in bp.lanes]),
        ("item", [item.id for _, item in bp.items()]),
        ("gate", [g.id for g in bp.gates]),
    ):
        for dup in _duplicates(ids):
            yield problem(dup, f"duplicate {kind} id")
    for dup in _duplicates(a.role for a in bp.actors):
        yield problem(dup, "duplicate actor role: two actors would share one organisation role")

    for stage in bp.stages:
        if not stage.timeline.strip():
            yield problem(stage.id, "stage has no timeline (write 'n/a' when the duration is open)")

    for lane in bp.lanes:
        if lane.actor is not None and lane.actor not in actors:
            yield problem(lane.id, f"lane names unknown actor {lane.actor!r}")
        if lane.layer is not Layer.INSIGHT and lane.actor is None:
            yield problem(lane.id, f"{lane.layer.value} lane needs an 'actor' whose tasks it holds")
        prefix, _, suffix = lane.id.partition(".")
        expected = _LANE_PREFIX.get(prefix)
        if expected is not None and lane.layer is not expected:
            yield problem(lane.id, f"lane id starts with '{prefix}.' but its layer is {lane.layer.value}")
        if prefix in ("front", "back") and lane.actor is not None and suffix != lane.actor:
            yield problem(lane.id, f"lane id names actor {suffix!r} but its actor is {lane.actor!r}")
        if prefix == "insight" and suffix not in INSIGHT_ROWS:
            yield problem(lane.id, f"unknown insight row {suffix!r} (one of {', '.join(sorted(INSIGHT_ROWS))})")

    seen_cells: set[tuple[str, str]] = set()
    for cell in bp.cells:
        where = f"cell {cell.stage} x {cell.lane}"
        if cell.stage not in stages:
            yield problem(where, f"unknown stage {cell.stage!r}")
        if cell.lane not in lanes:
            yield problem(where, f"unknown lane {cell.lane!r}")
        if (cell.stage, cell.lane) in seen_cells:
            yield problem(where, "the same stage and lane appear in two cells; put the items in one")
        seen_cells.add((cell.stage, cell.lane))
        cell_lane = lanes.get(cell.lane)
        for item in cell.items:
            yield from (problem(item.id, msg) for msg in _item_problems(item, cell.stage, cell.lane, cell_lane))

    items = {item.id: item for _, item in bp.items()}
    for gate in bp.gates:
        if gate.stage not in stages:
            yield problem(gate.id, f"gate names unknown stage {gate.stage!r}")
        for cond in iter_conditions(gate.requires):
            target = items.get(cond.task)
            if target is None:
                yield problem(gate.id, f"gate names unknown task {cond.task!r}")
                continue
            if target.mode is Mode.INFORMATIONAL:
                yield problem(gate.id, f"gate names {cond.task!r}, an informational item that never becomes a task")
            if cond.outcome is not None and cond.outcome not in target.outcomes:
                allowed = ", ".join(target.outcomes) or "none"
                yield problem(gate.id, f"gate requires outcome {cond.outcome!r} of {cond.task!r} (allowed: {allowed})")


def _item_problems(item: Item, stage: str, lane_id: str, lane: Lane | None) -> Iterator[str]:
    prefix = f"{stage}.{lane_id}."
    if not item.id.startswith(prefix) or "." in item.id.removeprefix(prefix):
        yield f"item id must be '{prefix}<slug>' (the id of its cell's stage and lane plus one slug)"
    layer = lane.layer if lane is not None else None
    if layer is Layer.INSIGHT and item.mode is not Mode.INFORMATIONAL:
        yield f"insight items are informational, not {item.mode.value}"
    if item.kpi is not None:
        if item.kpi not in KPI_IDS:
            yield f"unknown kpi {item.kpi!r} (one of {', '.join(sorted(KPI_IDS))})"
        if lane_id != "insight.facts_metrics":
            yield "only facts/metrics items name a kpi"
    for name in item.evidence:
        if not _EVIDENCE_NAME.fullmatch(name):
            yield f"evidence {name!r} is not a snake_case name (it is the key the attachment is filed under)"
    if len(set(item.evidence)) != len(item.evidence):
        yield "evidence repeats a name"
    if item.outcomes and item.mode is Mode.INFORMATIONAL:
        yield "informational items have no outcomes"
    if len(set(item.outcomes)) != len(item.outcomes):
        yield "outcomes repeat a value"
    if item.origin is Origin.PLATFORM and not item.note.strip():
        yield "items with origin 'platform' need a 'note' saying why they were added"
