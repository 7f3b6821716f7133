"""The blueprint file schema (YAML) as typed models.

A blueprint is a table: journey **stages** as columns and **lanes** as rows. Each non-empty cell
holds **items**. Items in the customer, frontstage and backstage layers are *actions*: the journey
engine turns them into tasks for the lane's actor. Items in the insight layer (synchronisation
areas, facts/metrics, pitfalls, ideas, policies) are knowledge; facts/metrics may name the KPI that
measures them. **Gates** are conditions on tasks that must hold before a stage may be entered or
left; they are data, not code.

Item modes:

* ``automated``: the platform does it; ``service`` names the platform service that runs it.
* ``manual``: an actor completes it by hand; ``evidence`` names what must be attached.
* ``informational``: shown to people, nothing to complete (touchpoints, insights, general info).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$", min_length=1)]
NonEmptyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class Layer(StrEnum):
    """Where a lane sits in the blueprint: above or below the line of visibility, or insights."""

    CUSTOMER = "customer"
    FRONTSTAGE = "frontstage"
    BACKSTAGE = "backstage"
    INSIGHT = "insight"


class Mode(StrEnum):
    """How the platform treats an item."""

    AUTOMATED = "automated"
    MANUAL = "manual"
    INFORMATIONAL = "informational"


class Origin(StrEnum):
    """Whether an item is the seed table's own text or an addition the platform needs."""

    SEED = "seed"
    PLATFORM = "platform"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BlueprintInfo(_Strict):
    """Identity and provenance of a blueprint file."""

    id: Identifier
    name: NonEmptyText
    version: int = Field(ge=1)
    source: NonEmptyText
    description: str = ""
    timeline_alignment: str = Field(
        default="",
        description="How the seed's timeline values were aligned to the stages, and why.",
    )


class Actor(_Strict):
    """A party in the service; users of an organisation with ``role`` act for it."""

    id: Identifier
    name: NonEmptyText
    role: Identifier


class Sla(_Strict):
    """A stage duration window in days, derived from the timeline text."""

    min_days: int = Field(ge=0)
    max_days: int = Field(ge=0)
    warning_ratio: float = Field(default=0.8, gt=0, le=1, description="Warn when this share of max_days passed.")

    @model_validator(mode="after")
    def _ordered(self) -> Sla:
        if self.max_days < self.min_days:
            msg = f"max_days {self.max_days} is below min_days {self.min_days}"
            raise ValueError(msg)
        return self


class Stage(_Strict):
    """A journey stage (a column)."""

    id: Identifier
    name: NonEmptyText
    timeline: str = Field(description="The timeline text as shown (e.g. '2-8 weeks', 'daily', 'n/a').")
    sla: Sla | None = None
    description: str = ""


class Lane(_Strict):
    """A row of the blueprint."""

    id: Identifier
    name: NonEmptyText
    layer: Layer
    actor: Identifier | None = Field(default=None, description="The actor whose tasks this lane holds.")


class Item(_Strict):
    """One entry of a cell."""

    id: Identifier
    text: NonEmptyText
    mode: Mode = Mode.INFORMATIONAL
    service: Identifier | None = Field(default=None, description="Platform service for automated items.")
    evidence: tuple[NonEmptyText, ...] = Field(default=(), description="What a manual item must attach.")
    outcomes: tuple[Identifier, ...] = Field(
        default=(),
        description="Allowed outcomes of a manual or automated item (e.g. approved, rejected); empty = done.",
    )
    kpi: Identifier | None = Field(default=None, description="KPI that measures a fact/metric.")
    origin: Origin = Origin.SEED
    note: str = ""

    @model_validator(mode="after")
    def _mode_fields(self) -> Item:
        if self.mode is Mode.AUTOMATED and not self.service:
            msg = "automated item needs 'service'"
            raise ValueError(msg)
        if self.mode is Mode.MANUAL and not self.evidence:
            msg = "manual item needs at least one 'evidence'"
            raise ValueError(msg)
        if self.mode is not Mode.AUTOMATED and self.service:
            msg = f"only automated items name a service (mode is {self.mode.value})"
            raise ValueError(msg)
        return self


class Cell(_Strict):
    """The items at one stage x lane."""

    stage: Identifier
    lane: Identifier
    items: tuple[Item, ...] = Field(min_length=1)


class TaskCondition(_Strict):
    """Holds when the task made from item ``task`` is completed (with ``outcome`` when given)."""

    task: Identifier
    outcome: Identifier | None = None


class AllOf(_Strict):
    """Holds when every condition holds."""

    all: tuple[Condition, ...] = Field(min_length=1)


class AnyOf(_Strict):
    """Holds when at least one condition holds."""

    any: tuple[Condition, ...] = Field(min_length=1)


Condition = TaskCondition | AllOf | AnyOf
AllOf.model_rebuild()
AnyOf.model_rebuild()


class Gate(_Strict):
    """A condition that must hold to enter or to leave a stage."""

    id: Identifier
    stage: Identifier
    on: Literal["entry", "exit"]
    requires: Condition
    description: NonEmptyText


class Blueprint(_Strict):
    """A whole service blueprint."""

    blueprint: BlueprintInfo
    actors: tuple[Actor, ...] = Field(min_length=1)
    stages: tuple[Stage, ...] = Field(min_length=1)
    lanes: tuple[Lane, ...] = Field(min_length=1)
    cells: tuple[Cell, ...] = ()
    gates: tuple[Gate, ...] = ()

    def items(self) -> list[tuple[Cell, Item]]:
        """Every item with its cell, in file order."""
        return [(cell, item) for cell in self.cells for item in cell.items]

    def item(self, item_id: str) -> Item:
        """The item with this id (KeyError if unknown)."""
        for _, item in self.items():
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def stage_index(self, stage_id: str) -> int:
        """Position of a stage in the journey (KeyError if unknown)."""
        for i, stage in enumerate(self.stages):
            if stage.id == stage_id:
                return i
        raise KeyError(stage_id)

    def lane(self, lane_id: str) -> Lane:
        """The lane with this id (KeyError if unknown)."""
        for lane in self.lanes:
            if lane.id == lane_id:
                return lane
        raise KeyError(lane_id)

    def cell_of(self, item_id: str) -> Cell:
        """The cell holding the item with this id (KeyError if unknown)."""
        for cell, item in self.items():
            if item.id == item_id:
                return cell
        raise KeyError(item_id)

    def gates_for(self, stage_id: str, on: Literal["entry", "exit"]) -> list[Gate]:
        """The gates to enter (``on="entry"``) or to leave (``on="exit"``) a stage."""
        return [gate for gate in self.gates if gate.stage == stage_id and gate.on == on]
