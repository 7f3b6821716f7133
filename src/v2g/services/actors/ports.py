"""Ports of the actors capability: who acts, and the repositories of actors, audit and outbox records."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class NotFoundError(LookupError):
    """Unknown id, or an id the caller may not see (the same answer, so nothing leaks)."""


class ForbiddenError(PermissionError):
    """The caller's role may not do this."""


class DuplicateError(RuntimeError):
    """A write collided with an existing row (e.g. two sign-ups with one id at the same moment)."""


class GoneError(LookupError):
    """Something that existed was used up (a one-time secret already retrieved)."""


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
class OneTimeSecret:
    """A secret (e.g. a charger's OCPP password) for one organisation, retrieved once through its task.

    ``value`` is None once it was retrieved: it is kept only until then, and never in the outbox.
    """

    task_id: str
    organisation_id: str
    journey_id: str
    subject: str  # what the secret is for, e.g. the charger id
    label: str
    created_at: datetime
    value: str | None
    retrieved_at: datetime | None = None
    retrieved_by: str | None = None


class SecretRecords(Protocol):
    """One-time secrets addressed to an organisation through a task."""

    def add_secret(self, secret: OneTimeSecret) -> None: ...
    def secret(self, task_id: str, organisation_id: str, *, for_update: bool = False) -> OneTimeSecret | None: ...
    def mark_secret_retrieved(self, task_id: str, organisation_id: str, *, at: datetime, by: str) -> bool:
        """Forget the value and record who retrieved it when; False if someone else already did."""
        ...


class ActorRepository(Protocol):
    """Organisations, their users and API tokens, and which customers each organisation serves."""

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
    def revoke_token(self, token_hash: str, at: datetime) -> bool: ...  # False: no token valid at ``at``
    def assign(self, organisation_id: str, customer_id: str) -> None: ...
    def serves(self, organisation_id: str, customer_id: str) -> bool: ...
    def serving_organisations(self, customer_id: str) -> list[Organisation]: ...
    def customers_served_by(self, organisation_id: str) -> set[str]: ...
    def customers_in_dso_areas(self, organisation_id: str) -> set[str]: ...


class AuditRecords(Protocol):
    """The append-only audit log."""

    def audit(self, entry: AuditEntry) -> None: ...
    def audit_entries(self, journey_id: str) -> list[AuditEntry]: ...
    def journeys_with_action(self, action: str) -> set[str]: ...


class OutboxRecords(Protocol):
    """Messages waiting to be delivered, and what became of them."""

    def notify(self, notification: Notification) -> None: ...
    def notifications(self, journey_id: str) -> list[Notification]: ...
    def pending_notifications(self, limit: int) -> list[Notification]: ...
    def mark_notification(self, notification_id: int, *, status: str, at: datetime, error: str | None) -> None: ...


class AuthRepository(ActorRepository, AuditRecords, Protocol):
    """What signing in and issuing tokens need: the actors and the audit log."""


OutboxUnitOfWork = Callable[[], AbstractContextManager[OutboxRecords]]
"""Opens a transaction over the outbox; commits on success, rolls back on error."""
