"""Journey use cases: sign-up, tasks, gates, pause, termination, tracker, export and KPIs.

Every change runs in one unit of work that locks the journey row, is written to the audit log and
notifies the people involved through the outbox. Concurrent changes to the same journey serialise
on the lock (``SELECT ... FOR UPDATE`` on PostgreSQL) and a version check; a lost race is retried.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from v2g.blueprint.model import Blueprint
from v2g.fleet.model import Charger, Customer, Site, Vehicle
from v2g.journey import engine
from v2g.journey.kpis import KpiInput, compute_kpis
from v2g.journey.model import (
    Journey,
    JourneyError,
    JourneyStatus,
    StageVisit,
    Task,
    TaskKind,
)
from v2g.journey.rules import JourneyRules, RetentionOffer, load_rules
from v2g.journey.tracker import StatusTracker, status_tracker
from v2g.services.automation import ServiceContext, ServiceOutcome, ServiceRegistry
from v2g.services.clock import Clock
from v2g.services.journey_ports import (
    SYSTEM,
    AuditEntry,
    ConcurrentUpdateError,
    DuplicateError,
    ExitFeedback,
    ForbiddenError,
    JourneyRepository,
    NotFoundError,
    Notification,
    Organisation,
    Principal,
    UnitOfWork,
    User,
)

T = TypeVar("T")

STAFF_ROLE = "aggregator_operator"
MAX_ATTEMPTS = 8


class StateConflictError(JourneyError):
    """The request is valid but the journey's state does not allow it now (HTTP 409)."""


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums and datetimes as plain JSON values."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass(frozen=True, slots=True)
class SignUp:
    """A new customer: the owner, the home site, the vehicle, the chosen offer, the wallbox if known."""

    customer: Customer
    site: Site
    vehicle: Vehicle
    offer: str
    charger: Charger | None = None
    serving_organisation_ids: tuple[str, ...] = ()
    owner_username: str | None = None
    owner_password_hash: str | None = None


@dataclass(frozen=True, slots=True)
class JourneyView:
    journey: Journey
    tasks: list[Task]


class JourneyService:
    """The journey engine running against storage, a clock and the automated-service registry."""

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

    # ------------------------------------------------------------------------------- plumbing
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

    # ------------------------------------------------------------------------------- the engine loop
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

    def _run_automated(self, repo: JourneyRepository, journey: Journey) -> bool:
        """Run the open automated tasks of the current stage; True if any completed."""
        progressed = False
        tasks = repo.tasks(journey.id)
        for task in tasks:
            if task.kind is not TaskKind.AUTOMATED or task.done or task.stage_id != journey.stage_id:
                continue
            ctx = ServiceContext(journey, task, repo, self.clock.now(), self.rules, tasks)
            try:
                with repo.savepoint():  # a failing handler's writes are undone, the rest stays
                    outcome = self.registry.run(ctx)
            except (ConcurrentUpdateError, DuplicateError):
                raise
            except Exception as exc:
                if "database is locked" in str(exc):
                    raise
                outcome = ServiceOutcome.waiting(f"{task.service} failed: {type(exc).__name__}: {exc}")
            if outcome.completed:
                new = task.complete(at=self.clock.now(), by="platform", outcome=outcome.outcome, result=outcome.result)
                progressed = True
            else:
                new = replace(task.wait(outcome.reason or "waiting"), result={**task.result, **outcome.result})
                if new == task:
                    continue
            repo.update_task(new)
            self._audit(
                repo,
                Principal("platform", "platform", "system"),
                "task_completed" if new.done else "task_waiting",
                "task",
                task.id,
                journey_id=journey.id,
                before={"status": task.status.value},
                after={"status": new.status.value, "result": new.result, "waiting_reason": new.waiting_reason},
            )
        return progressed

    def _settle(self, repo: JourneyRepository, journey: Journey, who: Principal) -> Journey:
        """Run automated tasks and move forward while a stage is complete and its gates hold."""
        for _ in range(len(self.blueprint.stages) * 3):
            if journey.status not in (JourneyStatus.ACTIVE, JourneyStatus.TERMINATING):
                return journey
            self._run_automated(repo, journey)
            tasks = repo.tasks(journey.id)
            if not engine.stage_complete(tasks, journey.stage_id):
                return journey
            if journey.status is JourneyStatus.TERMINATING:
                if engine.exit_unmet(self.blueprint, journey.stage_id, tasks):
                    return journey
                done = replace(journey, status=JourneyStatus.TERMINATED, terminated_at=self.clock.now())
                repo.close_visit(journey.id, journey.stage_id, self.clock.now())
                self._audit(repo, who, "terminated", "journey", journey.id, journey_id=journey.id)
                self._notify_involved(
                    repo, journey, "Your V2G service has ended", "Termination is complete; your data export is ready."
                )
                return done
            target = engine.next_stage(self.blueprint, journey.stage_id)
            if journey.stage_id in self.rules.steady_stages:
                return journey
            if target is None or target.id == self.rules.termination_stage:
                return journey
            if engine.transition_unmet(self.blueprint, journey.stage_id, target.id, tasks):
                return journey
            journey = self._enter_stage(repo, journey, target.id, who)
        return journey

    # ------------------------------------------------------------------------------- sign-up
    def sign_up(self, who: Principal, signup: SignUp) -> JourneyView:
        """Create the customer with site, vehicle (and wallbox) and start their journey."""
        self._require_role(who, STAFF_ROLE, action="sign up customers")

        def work(repo: JourneyRepository) -> JourneyView:
            cid = signup.customer.id
            if repo.customer(cid) is not None:
                msg = f"customer.id: customer {cid!r} already exists"
                raise StateConflictError(msg, field="customer.id")
            if repo.grid_area(signup.site.grid_area_id) is None:
                msg = f"site.grid_area_id: unknown grid area {signup.site.grid_area_id!r}"
                raise JourneyError(msg, field="site.grid_area_id")
            for org_id in signup.serving_organisation_ids:
                if repo.organisation(org_id) is None:
                    msg = f"serving_organisation_ids: unknown organisation {org_id!r}"
                    raise JourneyError(msg, field="serving_organisation_ids")
            if signup.owner_username and repo.user_by_username(signup.owner_username) is not None:
                msg = f"owner.username: {signup.owner_username!r} is taken"
                raise StateConflictError(msg, field="owner.username")
            repo.add_customer(signup.customer)
            repo.add_site(signup.site)
            repo.add_vehicle(signup.vehicle)
            if signup.charger is not None:
                repo.add_charger(signup.charger)
            for org_id in {who.organisation_id, *signup.serving_organisation_ids} - {"platform"}:
                repo.assign(org_id, cid)
            now = self.clock.now()
            if signup.owner_username:
                owner_org = f"org-owner-{cid}"
                repo.add_organisation(Organisation(owner_org, signup.customer.name, "owner"))
                repo.add_user(
                    User(
                        id=f"user-{cid}",
                        organisation_id=owner_org,
                        username=signup.owner_username,
                        display_name=signup.customer.name,
                        created_at=now,
                        password_hash=signup.owner_password_hash,
                        customer_id=cid,
                        email=signup.customer.email,
                        phone=signup.customer.phone,
                    )
                )
            return self._start(repo, who, cid, signup.offer)

        return self._tx(work)

    def start_journey(self, who: Principal, customer_id: str, offer: str) -> JourneyView:
        """Start the journey of a customer already on file (e.g. imported from a CRM)."""
        self._require_role(who, STAFF_ROLE, action="start journeys")

        def work(repo: JourneyRepository) -> JourneyView:
            if repo.customer(customer_id) is None:
                msg = f"customer {customer_id!r} not found"
                raise NotFoundError(msg)
            if repo.journey_of_customer(customer_id) is not None:
                msg = f"customer_id: customer {customer_id!r} already has a journey"
                raise StateConflictError(msg, field="customer_id")
            if who.role != "system":
                repo.assign(who.organisation_id, customer_id)
            return self._start(repo, who, customer_id, offer)

        return self._tx(work)

    def _start(self, repo: JourneyRepository, who: Principal, customer_id: str, offer: str) -> JourneyView:
        now = self.clock.now()
        first = self.blueprint.stages[0]
        journey = Journey(
            id=f"j-{customer_id}",
            customer_id=customer_id,
            blueprint_id=self.blueprint.blueprint.id,
            stage_id=first.id,
            stage_entered_at=now,
            created_at=now,
            offer=offer,
        )
        repo.add_journey(journey)
        repo.add_visit(StageVisit(journey.id, first.id, now))
        repo.add_tasks(engine.stage_tasks(self.blueprint, journey, first.id, now=now))
        self._audit(repo, who, "journey_created", "journey", journey.id, journey_id=journey.id, after=journey)
        self._notify_involved(
            repo, journey, "Welcome to V2G", f"Your V2G journey {journey.id} has started at {first.name}."
        )
        journey = self._settle(repo, journey, who)
        repo.update_journey(journey, expected_version=journey.version)
        return JourneyView(journey, repo.tasks(journey.id))

    # ------------------------------------------------------------------------------- reads
    def list_journeys(self, who: Principal) -> list[Journey]:
        with self.uow() as repo:
            visible = self.visible_customers(repo, who)
            return repo.journeys(visible)

    def get(self, who: Principal, journey_id: str) -> JourneyView:
        with self.uow() as repo:
            journey = self._load(repo, who, journey_id)
            return JourneyView(journey, repo.tasks(journey_id))

    def tracker(self, who: Principal, journey_id: str) -> StatusTracker:
        with self.uow() as repo:
            journey = self._load(repo, who, journey_id)
            return status_tracker(self.blueprint, journey, repo.tasks(journey_id), self.clock.now(), self.rules)

    def my_tasks(self, who: Principal, *, include_done: bool = False) -> list[Task]:
        """The tasks of the caller's role for the customers the caller serves; aggregator operators also
        see every waiting automated task (they may complete it by hand, so no journey dead-ends)."""
        with self.uow() as repo:
            visible = self.visible_customers(repo, who)
            role = who.role if who.role != "system" else ""
            tasks = repo.tasks_for_role(role, visible, include_done=include_done) if role else []
            if who.role == STAFF_ROLE:
                known = {t.id for t in tasks}
                tasks += [t for t in repo.waiting_automated_tasks(visible) if t.id not in known]
            return tasks

    def service_active_customers(self) -> set[str]:
        """Customers whose V2G service runs now (live and not paused or leaving): planning and dispatch
        schedule only these."""
        with self.uow() as repo:
            return {
                j.customer_id
                for j in repo.journeys()
                if j.status is JourneyStatus.ACTIVE and j.first_active_at is not None
            }

    def audit_log(self, who: Principal, journey_id: str) -> list[AuditEntry]:
        self._require_role(who, STAFF_ROLE, action="read the audit log")
        with self.uow() as repo:
            self._load(repo, who, journey_id)
            return repo.audit_entries(journey_id)

    def notifications(self, who: Principal, journey_id: str) -> list[Notification]:
        with self.uow() as repo:
            self._load(repo, who, journey_id)
            messages = repo.notifications(journey_id)
            if who.role in (STAFF_ROLE, "system"):
                return messages
            if who.role == "owner":
                customer = repo.customer(who.customer_id or "")
                addresses = {customer.email, customer.phone} if customer else set()
                return [m for m in messages if m.recipient_user_id == who.user_id or m.address in addresses]
            return [m for m in messages if m.recipient_organisation_id == who.organisation_id]

    def retention_offers(self, who: Principal, journey_id: str) -> tuple[RetentionOffer, ...]:
        self._require_role(who, "owner", STAFF_ROLE, action="see retention offers")
        with self.uow() as repo:
            self._load(repo, who, journey_id)
        return self.rules.retention_offers

    # ------------------------------------------------------------------------------- task completion
    def complete_task(
        self,
        who: Principal,
        task_id: str,
        *,
        outcome: str | None = None,
        evidence: dict[str, str] | None = None,
    ) -> JourneyView:
        """An actor completes its own task; an aggregator operator may complete a waiting automated task
        by hand with evidence (an audited override, so a journey never dead-ends)."""
        journey_id = task_id.split(":", 1)[0]

        def work(repo: JourneyRepository) -> JourneyView:
            journey = self._load(repo, who, journey_id, lock=True)
            task = repo.task(task_id)
            if task is None or task.journey_id != journey.id:
                msg = f"task {task_id!r} not found"
                raise NotFoundError(msg)
            override = task.kind is TaskKind.AUTOMATED
            if override:
                self._require_role(who, STAFF_ROLE, action=f"complete the automated task {task.item_id}")
                if not evidence or not any(str(v).strip() for v in evidence.values()):
                    msg = f"evidence: a manual override of {task.item_id} needs evidence (e.g. a 'note')"
                    raise JourneyError(msg, field="evidence")
            elif who.role not in (task.role, "system"):
                msg = f"task {task.item_id} is for role {task.role!r}, not {who.role!r}"
                raise ForbiddenError(msg)
            if journey.status in (JourneyStatus.PAUSED, JourneyStatus.TERMINATED):
                msg = f"journey {journey.id} is {journey.status.value}; its tasks cannot be completed now"
                raise StateConflictError(msg, field="status")
            if task.done:
                msg = f"task {task.item_id} is already completed"
                raise StateConflictError(msg, field="task_id")
            now = self.clock.now()
            if override:
                done = task.complete(at=now, by=who.user_id, outcome=outcome, evidence=evidence)
                done = replace(done, result={**task.result, "manual_override": True})
            else:
                done = task.complete(at=now, by=who.user_id, outcome=outcome, evidence=evidence)
            repo.update_task(done)
            self._audit(
                repo,
                who,
                "task_override" if override else "task_completed",
                "task",
                task.id,
                journey_id=journey.id,
                before={"status": task.status.value},
                after={"status": done.status.value, "outcome": done.outcome, "evidence": done.evidence},
            )
            # the owner's app and the aggregator follow every step (the tracker's "what happened")
            outcome_text = f" ({done.outcome})" if done.outcome else ""
            for user in repo.owner_users(journey.customer_id):
                repo.notify(
                    Notification(
                        now,
                        "app",
                        f"Done: {task.title}{outcome_text}",
                        f"{task.actor_id} completed '{task.title}'{outcome_text}.",
                        journey.id,
                        recipient_user_id=user.id,
                    )
                )
            for org in repo.serving_organisations(journey.customer_id):
                if org.role == STAFF_ROLE and org.id != who.organisation_id:
                    repo.notify(
                        Notification(
                            now,
                            "app",
                            f"Done: {task.title}{outcome_text}",
                            f"{task.actor_id} completed '{task.title}'{outcome_text}.",
                            journey.id,
                            recipient_organisation_id=org.id,
                        )
                    )
            settled = self._settle(repo, journey, who)
            saved = self._save(repo, journey, settled)
            return JourneyView(saved, repo.tasks(journey.id))

        return self._tx(work)

    def advance(self, who: Principal, journey_id: str, to_stage: str | None = None) -> JourneyView:
        """Move the journey one stage on if the gates allow it (open tasks carry over)."""
        self._require_role(who, STAFF_ROLE, action="advance journeys")

        def work(repo: JourneyRepository) -> JourneyView:
            journey = self._load(repo, who, journey_id, lock=True)
            tasks = repo.tasks(journey.id)
            target = engine.check_advance(self.blueprint, journey, tasks, to_stage)
            if target.id == self.rules.termination_stage:
                msg = f"to_stage: {target.id} is entered by terminating the service, not by advancing"
                raise StateConflictError(msg, field="to_stage")
            moved = self._enter_stage(repo, journey, target.id, who)
            moved = self._settle(repo, moved, who)
            saved = self._save(repo, journey, moved)
            return JourneyView(saved, repo.tasks(journey.id))

        return self._tx(work)

    # ------------------------------------------------------------------------------- pause / terminate
    def pause(self, who: Principal, journey_id: str, reason: str = "") -> Journey:
        """Stop the service but keep contract and data; resume later."""
        self._require_role(who, "owner", STAFF_ROLE, action="pause the service")

        def work(repo: JourneyRepository) -> Journey:
            journey = self._load(repo, who, journey_id, lock=True)
            if journey.status is not JourneyStatus.ACTIVE:
                msg = f"journey {journey.id} is {journey.status.value}; only an active journey can pause"
                raise StateConflictError(msg, field="status")
            if journey.stage_id not in self.rules.pausable_stages:
                msg = (
                    f"journey {journey.id} is at {journey.stage_id}; the service can be paused in "
                    f"{', '.join(self.rules.pausable_stages)}"
                )
                raise StateConflictError(msg, field="stage_id")
            paused = replace(journey, status=JourneyStatus.PAUSED, paused_at=self.clock.now())
            self._audit(repo, who, "pause", "journey", journey.id, journey_id=journey.id, before=journey, after=paused)
            self._notify_involved(repo, journey, "V2G service paused", f"The V2G service is paused. {reason}".strip())
            return self._save(repo, journey, paused)

        return self._tx(work)

    def resume(self, who: Principal, journey_id: str) -> Journey:
        self._require_role(who, "owner", STAFF_ROLE, action="resume the service")

        def work(repo: JourneyRepository) -> Journey:
            journey = self._load(repo, who, journey_id, lock=True)
            if journey.status is not JourneyStatus.PAUSED:
                msg = f"journey {journey.id} is {journey.status.value}; only a paused journey resumes"
                raise StateConflictError(msg, field="status")
            resumed = replace(journey, status=JourneyStatus.ACTIVE, paused_at=None)
            self._audit(
                repo, who, "resume", "journey", journey.id, journey_id=journey.id, before=journey, after=resumed
            )
            self._notify_involved(repo, journey, "V2G service resumed", "The V2G service runs again.")
            return self._save(repo, journey, self._settle(repo, resumed, who))

        return self._tx(work)

    def terminate(self, who: Principal, journey_id: str, reasons: Sequence[str], comment: str = "") -> JourneyView:
        """Run the termination stage: its automated tasks (settlement, deactivation, deregistration,
        removal of the V2G site id, data export) and the actors' manual tasks; record exit feedback."""
        self._require_role(who, "owner", STAFF_ROLE, action="terminate the service")
        allowed = self.exit_reasons()
        unknown = [r for r in reasons if allowed and r not in allowed]
        if not reasons:
            msg = "reasons: give at least one exit reason"
            raise JourneyError(msg, field="reasons")
        if unknown:
            msg = f"reasons: unknown exit reason(s) {', '.join(unknown)}; choose from {', '.join(sorted(allowed))}"
            raise JourneyError(msg, field="reasons")

        def work(repo: JourneyRepository) -> JourneyView:
            journey = self._load(repo, who, journey_id, lock=True)
            if journey.status in (JourneyStatus.TERMINATING, JourneyStatus.TERMINATED):
                msg = f"journey {journey.id} is already {journey.status.value}"
                raise StateConflictError(msg, field="status")
            try:
                self.blueprint.stage_index(self.rules.termination_stage)
            except KeyError:
                msg = f"blueprint has no termination stage {self.rules.termination_stage!r}"
                raise StateConflictError(msg) from None
            repo.add_exit_feedback(ExitFeedback(journey.id, tuple(reasons), comment, self.clock.now()))
            self._audit(
                repo,
                who,
                "termination_requested",
                "journey",
                journey.id,
                journey_id=journey.id,
                after={"reasons": list(reasons), "comment": comment},
            )
            terminating = replace(journey, status=JourneyStatus.TERMINATING)
            terminating = self._enter_stage(repo, terminating, self.rules.termination_stage, who)
            terminating = self._settle(repo, terminating, who)
            saved = self._save(repo, journey, terminating)
            return JourneyView(saved, repo.tasks(journey.id))

        return self._tx(work)

    def exit_reasons(self) -> set[str]:
        """Exit reasons an owner may give (configured from the blueprint's facts row)."""
        return set(self.rules.exit_reasons)

    # ------------------------------------------------------------------------------- device layer
    def record_device_event(
        self, charger_id: str, kind: str, detail: str = "", *, who: Principal = SYSTEM
    ) -> Journey | None:
        """The device layer reports ``boot`` or ``test_profile_accepted`` for a charger.

        ``verify_connectivity`` completes once both were reported. The device layer calls this as the
        platform (``SYSTEM``); over HTTP an aggregator operator may report for the customers it serves.
        """
        self._require_role(who, STAFF_ROLE, action="report device events")
        if kind not in ("boot", "test_profile_accepted"):
            msg = f"kind: {kind!r} is not one of boot, test_profile_accepted"
            raise JourneyError(msg, field="kind")

        def work(repo: JourneyRepository) -> Journey | None:
            customer_id = repo.charger_owner(charger_id)
            visible = self.visible_customers(repo, who)
            if customer_id is None or (visible is not None and customer_id not in visible):
                msg = f"charger {charger_id!r} not found"
                raise NotFoundError(msg)
            found = repo.journey_of_customer(customer_id)
            if found is None:
                return None
            journey = repo.journey(found.id, for_update=True)
            assert journey is not None
            for task in repo.tasks(journey.id):
                if task.service == "verify_connectivity" and not task.done:
                    events = dict(task.result.get("device_events", {}))
                    events[kind] = self.clock.now().isoformat()
                    repo.update_task(replace(task, result={**task.result, "device_events": events}))
            self._audit(
                repo,
                who,
                "device_event",
                "charger",
                charger_id,
                journey_id=journey.id,
                after={"kind": kind, "detail": detail},
            )
            return self._save(repo, journey, self._settle(repo, journey, SYSTEM))

        return self._tx(work)

    # ------------------------------------------------------------------------------- SLAs
    def sla_sweep(self) -> list[tuple[str, str, str]]:
        """Notify the people involved when a journey's stage reaches its SLA warning or breach.

        Each state is announced once per stage visit (the audit log remembers it). Run it
        periodically (``v2g journey sla-sweep``). Returns (journey id, stage id, state) announced.
        """
        announced: list[tuple[str, str, str]] = []
        with self.uow() as repo:
            candidates = [j for j in repo.journeys() if j.status in (JourneyStatus.ACTIVE, JourneyStatus.TERMINATING)]
        for candidate in candidates:
            stage = self.blueprint.stages[self.blueprint.stage_index(candidate.stage_id)]
            state = engine.sla_status(stage, candidate.stage_entered_at, self.clock.now())
            if state.state not in (engine.SlaState.WARNING, engine.SlaState.BREACHED):
                continue

            def work(repo: JourneyRepository, journey_id: str = candidate.id) -> tuple[str, str, str] | None:
                journey = repo.journey(journey_id, for_update=True)
                assert journey is not None
                stage = self.blueprint.stages[self.blueprint.stage_index(journey.stage_id)]
                status = engine.sla_status(stage, journey.stage_entered_at, self.clock.now())
                action = f"sla_{status.state.value}"
                visit = {"stage_id": journey.stage_id, "entered_at": journey.stage_entered_at.isoformat()}
                if any(e.action == action and e.after == visit for e in repo.audit_entries(journey.id)):
                    return None
                self._audit(repo, SYSTEM, action, "journey", journey.id, journey_id=journey.id, after=visit)
                due = f"{status.due_at:%Y-%m-%d}" if status.due_at else "?"
                word = "is overdue" if status.state is engine.SlaState.BREACHED else "is close to its deadline"
                waiting = sorted({t.actor_id for t in repo.tasks(journey.id) if not t.done})
                self._notify_involved(
                    repo,
                    journey,
                    f"{stage.name} {word}",
                    f"Journey {journey.id}: {stage.name} is due {due} ({stage.timeline}); waiting on "
                    f"{', '.join(waiting) or 'nobody'}.",
                )
                return (journey.id, stage.id, status.state.value)

            result = self._tx(work)
            if result is not None:
                announced.append(result)
        return announced

    # ------------------------------------------------------------------------------- KPIs, export
    def kpis(self, who: Principal) -> dict[str, Any]:
        self._require_role(who, STAFF_ROLE, action="read KPIs")
        with self.uow() as repo:
            visible = self.visible_customers(repo, who)
            journeys = repo.journeys(visible)
            ids = {j.id for j in journeys}
            visits = repo.visits(ids)
            feedback = repo.exit_feedback(ids)
            paused = repo.journeys_with_action("pause") & ids
            active = set()
            for j in journeys:
                if j.first_active_at is None:
                    continue
                end = j.first_active_at + timedelta(days=7)
                if any(
                    e.action in ("device_event", "task_completed") and j.first_active_at <= e.at <= end
                    for e in repo.audit_entries(j.id)
                ):
                    active.add(j.id)
        data = KpiInput(
            journeys, visits, [r for f in feedback for r in f.reasons], frozenset(paused), frozenset(active)
        )
        return compute_kpis(self.blueprint, data, self.clock.now(), self.rules.go_live_stage)

    def export(self, who: Principal, journey_id: str) -> bytes:
        """A zip a person can open: README, JSON of everything, CSV per table."""
        self._require_role(who, "owner", STAFF_ROLE, action="export customer data")
        with self.uow() as repo:
            journey = self._load(repo, who, journey_id)
            return build_export(repo, journey, self.clock.now())


def build_export(repo: JourneyRepository, journey: Journey, now: datetime) -> bytes:
    """The customer's data export as zip bytes."""
    file = repo.customer_file(journey.customer_id)
    tasks = repo.tasks(journey.id)
    sections: dict[str, list[dict[str, Any]]] = {
        "profile": [to_jsonable(file.customer)],
        "sites": [to_jsonable(s) for s in file.sites],
        "vehicles": [to_jsonable(v) for v in file.vehicles],
        "chargers": [to_jsonable(c) for c in file.chargers],
        "contracts": [
            {
                "journey_id": journey.id,
                "offer": journey.offer,
                "signed_at": next(
                    (
                        t.completed_at.isoformat()
                        for t in tasks
                        if t.done and t.completed_at and "agreement" in t.item_id
                    ),
                    None,
                ),
                "status": journey.status.value,
            }
        ],
        "journey": [to_jsonable(journey)],
        "journey_history": [to_jsonable(v) for v in repo.visits({journey.id})],
        "tasks": [to_jsonable(t) for t in tasks],
        "audit_log": [to_jsonable(e) for e in repo.audit_entries(journey.id)],
        "notifications": [to_jsonable(n) for n in repo.notifications(journey.id)],
        "exit_feedback": [to_jsonable(f) for f in repo.exit_feedback({journey.id})],
        **file.extra,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "README.txt",
            f"V2G service data export for {file.customer.name} ({file.customer.id}), made {now.isoformat()}.\n"
            "data.json holds everything; each CSV file holds one section (sessions and telemetry appear when "
            "the platform recorded any). Times are UTC (ISO 8601); power is in kW, energy in kWh.\n",
        )
        zf.writestr("data.json", json.dumps(sections, indent=2, ensure_ascii=False, default=str))
        for name, rows in sections.items():
            zf.writestr(f"{name}.csv", _csv(rows))
    return buffer.getvalue()


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if not rows:
        return ""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()})
    return out.getvalue()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


__all__ = ["JourneyService", "JourneyView", "SignUp", "StateConflictError", "build_export", "to_jsonable"]
