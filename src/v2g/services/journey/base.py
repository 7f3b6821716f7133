"""Shared internals of the journey use cases: transactions, visibility, roles, audit, notifications
and entering a stage.

Every change runs in one unit of work that locks the journey row, is written to the audit log and
notifies the people involved through the outbox. Concurrent changes to the same journey serialise
on the lock (``SELECT ... FOR UPDATE`` on PostgreSQL) and a version check; a lost race is retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from v2g.blueprint.model import Blueprint
from v2g.journey import engine
from v2g.journey.model import Journey, StageVisit
from v2g.journey.rules import JourneyRules, load_rules
from v2g.services.actors.ports import (
    AuditEntry,
    ConcurrentUpdateError,
    ForbiddenError,
    NotFoundError,
    Notification,
    Principal,
)
from v2g.services.clock import Clock
from v2g.services.journey.automation import ServiceRegistry
from v2g.services.journey.export import to_jsonable
from v2g.services.journey.ports import JourneyRepository, UnitOfWork

T = TypeVar("T")

STAFF_ROLE = "aggregator_operator"
MAX_ATTEMPTS = 8


class JourneyCore:
    """What every journey use case shares: storage, the clock, the blueprint, the automated services and
    the rules, and the helpers that keep each change transactional, scoped, audited and announced."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        blueprint: Blueprint,
        registry: ServiceRegistry,
        rules: JourneyRules | None = None,
    ) -> None:
        self.uow = uow
        self.clock = clock
        self.blueprint = blueprint
        self.registry = registry
        self.rules = rules or load_rules()
        engine.validate_services(blueprint, registry.known())

    def _tx(self, work: Callable[[JourneyRepository], T]) -> T:
        """Run ``work`` in a unit of work; retry on a lost concurrent update or a busy database."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self.uow() as repo:
                    return work(repo)
            except ConcurrentUpdateError:
                if attempt == MAX_ATTEMPTS - 1:
                    raise
            except Exception as exc:  # a locked SQLite database surfaces as a driver error
                if "database is locked" not in str(exc) or attempt == MAX_ATTEMPTS - 1:
                    raise
            time.sleep(0.02 * (attempt + 1))
        msg = "unreachable"  # pragma: no cover
        raise RuntimeError(msg)

    def visible_customers(self, repo: JourneyRepository, who: Principal) -> set[str] | None:
        """Customers ``who`` may see (None = no restriction, for the platform itself)."""
        if who.role == "system":
            return None
        if who.role == "owner":
            return {who.customer_id} if who.customer_id else set()
        if who.role == "dso":
            return repo.customers_in_dso_areas(who.organisation_id) | repo.customers_served_by(who.organisation_id)
        return repo.customers_served_by(who.organisation_id)

    def _load(self, repo: JourneyRepository, who: Principal, journey_id: str, *, lock: bool = False) -> Journey:
        journey = repo.journey(journey_id, for_update=lock)
        visible = self.visible_customers(repo, who)
        if journey is None or (visible is not None and journey.customer_id not in visible):
            msg = f"journey {journey_id!r} not found"
            raise NotFoundError(msg)
        return journey

    @staticmethod
    def _require_role(who: Principal, *roles: str, action: str) -> None:
        if who.role not in (*roles, "system"):
            msg = f"role {who.role!r} may not {action} (allowed: {', '.join(roles)})"
            raise ForbiddenError(msg)

    def _audit(
        self,
        repo: JourneyRepository,
        who: Principal,
        action: str,
        entity: str,
        entity_id: str,
        *,
        journey_id: str | None,
        before: Any = None,
        after: Any = None,
    ) -> None:
        repo.audit(
            AuditEntry(
                at=self.clock.now(),
                user_id=who.user_id,
                organisation_id=who.organisation_id,
                action=action,
                entity=entity,
                entity_id=entity_id,
                journey_id=journey_id,
                before=to_jsonable(before) if before is not None else None,
                after=to_jsonable(after) if after is not None else None,
            )
        )

    def _notify_involved(self, repo: JourneyRepository, journey: Journey, subject: str, body: str) -> None:
        """The owner by e-mail, SMS (when a phone is known) and app; serving organisations in the app."""
        now = self.clock.now()
        customer = repo.customer(journey.customer_id)
        if customer is not None:
            repo.notify(Notification(now, "email", subject, body, journey.id, address=customer.email))
            if customer.phone:
                repo.notify(Notification(now, "sms", subject, body[:300], journey.id, address=customer.phone))
        for user in repo.owner_users(journey.customer_id):
            repo.notify(Notification(now, "app", subject, body, journey.id, recipient_user_id=user.id))
        for org in repo.serving_organisations(journey.customer_id):
            repo.notify(Notification(now, "app", subject, body, journey.id, recipient_organisation_id=org.id))

    def _save(self, repo: JourneyRepository, journey: Journey, new: Journey) -> Journey:
        return repo.update_journey(replace(new, version=journey.version + 1), expected_version=journey.version)

    def _enter_stage(self, repo: JourneyRepository, journey: Journey, stage_id: str, who: Principal) -> Journey:
        now = self.clock.now()
        stage = self.blueprint.stages[self.blueprint.stage_index(stage_id)]
        repo.close_visit(journey.id, journey.stage_id, now)
        entered = engine.enter(journey, stage, now=now)
        if stage.id == self.rules.go_live_stage and entered.first_active_at is None:
            entered = replace(entered, first_active_at=now)
        repo.add_visit(StageVisit(journey.id, stage.id, now))
        existing = {t.id for t in repo.tasks(journey.id)}
        repo.add_tasks(
            [t for t in engine.stage_tasks(self.blueprint, journey, stage.id, now=now) if t.id not in existing]
        )
        self._audit(
            repo,
            who,
            "stage_entered",
            "journey",
            journey.id,
            journey_id=journey.id,
            before={"stage_id": journey.stage_id},
            after={"stage_id": stage.id},
        )
        self._notify_involved(
            repo, journey, f"Your V2G journey: {stage.name}", f"Journey {journey.id} moved to the stage {stage.name}."
        )
        return entered
