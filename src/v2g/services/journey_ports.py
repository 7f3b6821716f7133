"""Ports of the journey use cases: the repository they work through and the people they act for."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from v2g.fleet.model import Charger, Customer, GridArea, Site, Vehicle
from v2g.journey.model import Journey, StageVisit, Task


class NotFoundError(LookupError):
    """Unknown id, or an id the caller may not see (the same answer, so nothing leaks)."""


class ForbiddenError(PermissionError):
    """The caller's role may not do this."""


class DuplicateError(RuntimeError):
    """A write collided with an existing row (e.g. two sign-ups with one id at the same moment)."""


class ConcurrentUpdateError(RuntimeError):
    """Someone else changed the journey in between; the unit of work is retried."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: a user of an organisation with a role (owners also name their customer)."""

    user_id: str
    organisation_id: str
    role: str
    customer_id: str | None = None
    display_name: str = ""


SYSTEM = Principal("system", "platform", "system", display_name="platform")


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class User:
    id: str
    organisation_id: str
    username: str
    display_name: str
    created_at: datetime
    password_hash: str | None = None
    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One append-only audit record: who, when, what, before/after."""

    at: datetime
    user_id: str | None
    organisation_id: str | None
    action: str
    entity: str
    entity_id: str
    journey_id: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """A message in the outbox; a sender adapter delivers it and marks it sent."""

    created_at: datetime
    channel: str
    subject: str
    body: str
    journey_id: str | None = None
    recipient_organisation_id: str | None = None
    recipient_user_id: str | None = None
    address: str | None = None
    status: str = "pending"
    sent_at: datetime | None = None
    error: str | None = None
    id: int | None = None


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


class JourneyRepository(Protocol):
    """Storage of journeys, people and their records, inside one transaction."""

    def savepoint(self) -> AbstractContextManager[object]:
        """A nested transaction: rolled back alone if its block raises."""
        ...

    # organisations, users, tokens, assignments
    def add_organisation(self, org: Organisation) -> None: ...
    def organisation(self, org_id: str) -> Organisation | None: ...
    def organisations(self) -> list[Organisation]: ...
    def add_user(self, user: User) -> None: ...
    def user(self, user_id: str) -> User | None: ...
    def user_by_username(self, username: str) -> User | None: ...
    def owner_users(self, customer_id: str) -> list[User]: ...
    def add_token(
        self, token_hash: str, user_id: str, label: str, at: datetime, expires_at: datetime | None
    ) -> None: ...
    def user_by_token(self, token_hash: str, now: datetime) -> User | None: ...
    def assign(self, organisation_id: str, customer_id: str) -> None: ...
    def serves(self, organisation_id: str, customer_id: str) -> bool: ...
    def serving_organisations(self, customer_id: str) -> list[Organisation]: ...
    def customers_served_by(self, organisation_id: str) -> set[str]: ...
    def customers_in_dso_areas(self, organisation_id: str) -> set[str]: ...

    # fleet
    def add_customer(self, customer: Customer) -> None: ...
    def add_site(self, site: Site) -> None: ...
    def add_vehicle(self, vehicle: Vehicle) -> None: ...
    def add_charger(self, charger: Charger) -> None: ...
    def customer(self, customer_id: str) -> Customer | None: ...
    def customer_file(self, customer_id: str) -> CustomerFile: ...
    def grid_area(self, area_id: str) -> GridArea | None: ...
    def set_charger(self, charger_id: str, *, v2g_site_id: str | None = ..., active: bool | None = None) -> None: ...
    def charger_owner(self, charger_id: str) -> str | None: ...
    def committed_export_kw(self, grid_area_id: str) -> float: ...

    # journeys
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

    # records
    def audit(self, entry: AuditEntry) -> None: ...
    def audit_entries(self, journey_id: str) -> list[AuditEntry]: ...
    def journeys_with_action(self, action: str) -> set[str]: ...
    def notify(self, notification: Notification) -> None: ...
    def notifications(self, journey_id: str) -> list[Notification]: ...
    def pending_notifications(self, limit: int) -> list[Notification]: ...
    def mark_notification(self, notification_id: int, *, status: str, at: datetime, error: str | None) -> None: ...
    def add_exit_feedback(self, feedback: ExitFeedback) -> None: ...
    def exit_feedback(self, journey_ids: set[str] | None = None) -> list[ExitFeedback]: ...


UnitOfWork = Callable[[], AbstractContextManager[JourneyRepository]]
"""Opens a transaction and yields a repository bound to it; commits on success, rolls back on error."""
