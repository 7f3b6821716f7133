"""Ports of the journey use cases: the repository they work through, split by what it stores.

``JourneyRepository`` combines the smaller protocols (actors, fleet records, journeys with their
tasks and stage visits, audit, outbox and exit feedback) because a journey change writes to several
of them in one transaction. A use case that needs less types its argument with the smaller protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from v2g.fleet.model import Charger, Customer, GridArea, Site, Vehicle
from v2g.journey.model import Journey, StageVisit, Task
from v2g.services.actors.ports import ActorRepository, AuditRecords, OutboxRecords, SecretRecords


@dataclass(frozen=True, slots=True)
class ExitFeedback:
    journey_id: str
    reasons: tuple[str, ...]
    comment: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CustomerFile:
    """Everything stored about one customer (for the data export)."""

    customer: Customer
    sites: list[Site]
    vehicles: list[Vehicle]
    chargers: list[Charger]
    extra: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class FleetRecords(Protocol):
    """The customers' sites, vehicles and chargers as the journey sees them."""

    def add_customer(self, customer: Customer) -> None: ...
    def add_site(self, site: Site) -> None: ...
    def add_vehicle(self, vehicle: Vehicle) -> None: ...
    def add_charger(self, charger: Charger) -> None: ...
    def customer(self, customer_id: str) -> Customer | None: ...
    def customer_file(self, customer_id: str) -> CustomerFile: ...
    def grid_area(self, area_id: str) -> GridArea | None: ...
    def grid_areas_of_dso(self, organisation_id: str) -> list[GridArea]: ...
    def set_charger(self, charger_id: str, *, v2g_site_id: str | None = ..., active: bool | None = None) -> None: ...
    def charger_owner(self, charger_id: str) -> str | None: ...
    def committed_export_kw(self, grid_area_id: str) -> float: ...


class JourneyRecords(Protocol):
    """Journeys, their tasks and their stage visits."""

    def add_journey(self, journey: Journey) -> None: ...
    def journey(self, journey_id: str, *, for_update: bool = False) -> Journey | None: ...
    def journey_of_customer(self, customer_id: str) -> Journey | None: ...
    def journeys(self, customer_ids: set[str] | None = None) -> list[Journey]: ...
    def update_journey(self, journey: Journey, *, expected_version: int) -> Journey: ...
    def add_tasks(self, tasks: Sequence[Task]) -> None: ...
    def tasks(self, journey_id: str) -> list[Task]: ...
    def task(self, task_id: str) -> Task | None: ...
    def tasks_for_role(self, role: str, customer_ids: set[str] | None, *, include_done: bool) -> list[Task]: ...
    def waiting_automated_tasks(self, customer_ids: set[str] | None) -> list[Task]: ...
    def update_task(self, task: Task) -> None: ...
    def add_visit(self, visit: StageVisit) -> None: ...
    def close_visit(self, journey_id: str, stage_id: str, at: datetime) -> None: ...
    def visits(self, journey_ids: set[str] | None = None) -> list[StageVisit]: ...
    def queued_before(self, journey: Journey, grid_area_id: str) -> int: ...


class FeedbackRecords(Protocol):
    """Why customers left."""

    def add_exit_feedback(self, feedback: ExitFeedback) -> None: ...
    def exit_feedback(self, journey_ids: set[str] | None = None) -> list[ExitFeedback]: ...


class JourneyRepository(
    ActorRepository,
    FleetRecords,
    JourneyRecords,
    AuditRecords,
    OutboxRecords,
    SecretRecords,
    FeedbackRecords,
    Protocol,
):
    """Storage of journeys, people and their records, inside one transaction."""

    def savepoint(self) -> AbstractContextManager[object]:
        """A nested transaction: rolled back alone if its block raises."""
        ...


UnitOfWork = Callable[[], AbstractContextManager[JourneyRepository]]
"""Opens a transaction and yields a repository bound to it; commits on success, rolls back on error."""
