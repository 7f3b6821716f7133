"""SQL repository for the journey engine (SQLAlchemy Core), plus its unit of work."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.tables.fleet import chargers, customers, grid_areas, sites
from v2g.adapters.db.tables.journey import (
    api_tokens,
    audit_log,
    exit_feedback,
    journey_tasks,
    journeys,
    organisation_customers,
    organisations,
    outbox,
    stage_visits,
    users,
)
from v2g.fleet.model import Charger, Customer, GridArea, Site, Vehicle
from v2g.journey.model import Journey, JourneyStatus, StageVisit, Task, TaskKind, TaskStatus
from v2g.services.actors.ports import (
    AuditEntry,
    ConcurrentUpdateError,
    DuplicateError,
    Notification,
    Organisation,
    User,
)
from v2g.services.journey.ports import CustomerFile, ExitFeedback

_UNSET: Any = ...


class AppendOnlyError(RuntimeError):
    """The audit log is never updated or deleted."""


class SqlJourneyRepository:
    """Implements :class:`v2g.services.journey.ports.JourneyRepository` on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.fleet = SqlFleetRepository(conn)
        self._locks = conn.dialect.name != "sqlite"

    def savepoint(self) -> AbstractContextManager[object]:
        return self.conn.begin_nested()

    # ------------------------------------------------------------------ organisations, users, tokens
    def add_organisation(self, org: Organisation) -> None:
        self.conn.execute(insert(organisations).values(**asdict(org)))

    def organisation(self, org_id: str) -> Organisation | None:
        row = self.conn.execute(select(organisations).where(organisations.c.id == org_id)).mappings().first()
        return Organisation(**dict(row)) if row else None

    def organisations(self) -> list[Organisation]:
        rows = self.conn.execute(select(organisations).order_by(organisations.c.id)).mappings()
        return [Organisation(**dict(r)) for r in rows]

    def add_user(self, user: User) -> None:
        self.conn.execute(insert(users).values(**asdict(user)))

    def user(self, user_id: str) -> User | None:
        row = self.conn.execute(select(users).where(users.c.id == user_id)).mappings().first()
        return User(**dict(row)) if row else None

    def user_by_username(self, username: str) -> User | None:
        row = self.conn.execute(select(users).where(users.c.username == username)).mappings().first()
        return User(**dict(row)) if row else None

    def owner_users(self, customer_id: str) -> list[User]:
        rows = self.conn.execute(select(users).where(users.c.customer_id == customer_id)).mappings()
        return [User(**dict(r)) for r in rows]

    def add_token(self, token_hash: str, user_id: str, label: str, at: datetime, expires_at: datetime | None) -> None:
        self.conn.execute(
            insert(api_tokens).values(
                token_hash=token_hash, user_id=user_id, label=label, created_at=at, expires_at=expires_at
            )
        )

    def user_by_token(self, token_hash: str, now: datetime) -> User | None:
        row = (
            self.conn.execute(
                select(users)
                .join(api_tokens, api_tokens.c.user_id == users.c.id)
                .where(api_tokens.c.token_hash == token_hash)
                .where(or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now))
            )
            .mappings()
            .first()
        )
        return User(**dict(row)) if row else None

    def assign(self, organisation_id: str, customer_id: str) -> None:
        if not self.serves(organisation_id, customer_id):
            self.conn.execute(
                insert(organisation_customers).values(organisation_id=organisation_id, customer_id=customer_id)
            )

    def serves(self, organisation_id: str, customer_id: str) -> bool:
        oc = organisation_customers.c
        q = select(oc.customer_id).where(oc.organisation_id == organisation_id, oc.customer_id == customer_id)
        return self.conn.execute(q).first() is not None

    def serving_organisations(self, customer_id: str) -> list[Organisation]:
        q = (
            select(organisations)
            .join(organisation_customers, organisation_customers.c.organisation_id == organisations.c.id)
            .where(organisation_customers.c.customer_id == customer_id)
            .order_by(organisations.c.id)
        )
        return [Organisation(**dict(r)) for r in self.conn.execute(q).mappings()]

    def customers_served_by(self, organisation_id: str) -> set[str]:
        oc = organisation_customers.c
        return set(self.conn.execute(select(oc.customer_id).where(oc.organisation_id == organisation_id)).scalars())

    def customers_in_dso_areas(self, organisation_id: str) -> set[str]:
        q = (
            select(sites.c.customer_id)
            .join(grid_areas, grid_areas.c.id == sites.c.grid_area_id)
            .where(grid_areas.c.dso_org_id == organisation_id)
        )
        return set(self.conn.execute(q).scalars())

    # ------------------------------------------------------------------ fleet
    def add_customer(self, customer: Customer) -> None:
        self.fleet.add_customer(customer)

    def add_site(self, site: Site) -> None:
        self.fleet.add_site(site)

    def add_vehicle(self, vehicle: Vehicle) -> None:
        self.fleet.add_vehicle(vehicle)

    def add_charger(self, charger: Charger) -> None:
        self.fleet.add_charger(charger)

    def customer(self, customer_id: str) -> Customer | None:
        row = self.conn.execute(select(customers).where(customers.c.id == customer_id)).mappings().first()
        return Customer(**dict(row)) if row else None

    def customer_file(self, customer_id: str) -> CustomerFile:
        customer = self.customer(customer_id)
        if customer is None:
            msg = f"customer {customer_id!r} not found"
            raise LookupError(msg)
        site_list = self.fleet.sites_of(customer_id)
        charger_list = [c for s in site_list for c in self.fleet.chargers_at(s.id)]
        return CustomerFile(customer, site_list, self.fleet.vehicles_of(customer_id), charger_list)

    def grid_area(self, area_id: str) -> GridArea | None:
        row = self.conn.execute(select(grid_areas).where(grid_areas.c.id == area_id)).mappings().first()
        return self.fleet.grid_area(area_id) if row else None

    def set_charger(self, charger_id: str, *, v2g_site_id: str | None = _UNSET, active: bool | None = None) -> None:
        values: dict[str, Any] = {}
        if v2g_site_id is not _UNSET:
            values["v2g_site_id"] = v2g_site_id
        if active is not None:
            values["active"] = active
        if values:
            self.conn.execute(update(chargers).where(chargers.c.id == charger_id).values(**values))

    def charger_owner(self, charger_id: str) -> str | None:
        q = (
            select(sites.c.customer_id)
            .join(chargers, chargers.c.site_id == sites.c.id)
            .where(chargers.c.id == charger_id)
        )
        return self.conn.execute(q).scalar()

    def committed_export_kw(self, grid_area_id: str) -> float:
        q = (
            select(func.coalesce(func.sum(chargers.c.max_discharge_kw), 0.0))
            .join(sites, sites.c.id == chargers.c.site_id)
            .where(sites.c.grid_area_id == grid_area_id, chargers.c.v2g_site_id.is_not(None), chargers.c.active)
        )
        return float(self.conn.execute(q).scalar() or 0.0)

    # ------------------------------------------------------------------ journeys
    def add_journey(self, journey: Journey) -> None:
        self.conn.execute(insert(journeys).values(**_journey_values(journey)))

    def journey(self, journey_id: str, *, for_update: bool = False) -> Journey | None:
        q = select(journeys).where(journeys.c.id == journey_id)
        if for_update and self._locks:
            q = q.with_for_update()
        row = self.conn.execute(q).mappings().first()
        return _journey(row) if row else None

    def journey_of_customer(self, customer_id: str) -> Journey | None:
        row = self.conn.execute(select(journeys).where(journeys.c.customer_id == customer_id)).mappings().first()
        return _journey(row) if row else None

    def journeys(self, customer_ids: set[str] | None = None) -> list[Journey]:
        q = select(journeys).order_by(journeys.c.id)
        if customer_ids is not None:
            q = q.where(journeys.c.customer_id.in_(sorted(customer_ids)))
        return [_journey(r) for r in self.conn.execute(q).mappings()]

    def update_journey(self, journey: Journey, *, expected_version: int) -> Journey:
        result = self.conn.execute(
            update(journeys)
            .where(journeys.c.id == journey.id, journeys.c.version == expected_version)
            .values(**_journey_values(journey))
        )
        if result.rowcount != 1:
            msg = f"journey {journey.id} changed concurrently (expected version {expected_version})"
            raise ConcurrentUpdateError(msg)
        return journey

    def add_tasks(self, tasks: Sequence[Task]) -> None:
        if tasks:
            self.conn.execute(insert(journey_tasks), [_task_values(t) for t in tasks])

    def tasks(self, journey_id: str) -> list[Task]:
        q = select(journey_tasks).where(journey_tasks.c.journey_id == journey_id)
        return _sorted_tasks(self.conn.execute(q).mappings())

    def task(self, task_id: str) -> Task | None:
        row = self.conn.execute(select(journey_tasks).where(journey_tasks.c.id == task_id)).mappings().first()
        return _task(row) if row else None

    def tasks_for_role(self, role: str, customer_ids: set[str] | None, *, include_done: bool) -> list[Task]:
        q = (
            select(journey_tasks)
            .join(journeys, journeys.c.id == journey_tasks.c.journey_id)
            .where(journey_tasks.c.role == role)
        )
        if customer_ids is not None:
            q = q.where(journeys.c.customer_id.in_(sorted(customer_ids)))
        if not include_done:
            q = q.where(journey_tasks.c.status != TaskStatus.COMPLETED.value)
        return _sorted_tasks(self.conn.execute(q).mappings())

    def waiting_automated_tasks(self, customer_ids: set[str] | None) -> list[Task]:
        q = (
            select(journey_tasks)
            .join(journeys, journeys.c.id == journey_tasks.c.journey_id)
            .where(journey_tasks.c.kind == TaskKind.AUTOMATED.value)
            .where(journey_tasks.c.status == TaskStatus.WAITING.value)
        )
        if customer_ids is not None:
            q = q.where(journeys.c.customer_id.in_(sorted(customer_ids)))
        return _sorted_tasks(self.conn.execute(q).mappings())

    def update_task(self, task: Task) -> None:
        self.conn.execute(update(journey_tasks).where(journey_tasks.c.id == task.id).values(**_task_values(task)))

    def add_visit(self, visit: StageVisit) -> None:
        self.conn.execute(insert(stage_visits).values(**asdict(visit)))

    def close_visit(self, journey_id: str, stage_id: str, at: datetime) -> None:
        sv = stage_visits.c
        self.conn.execute(
            update(stage_visits)
            .where(sv.journey_id == journey_id, sv.stage_id == stage_id, sv.left_at.is_(None))
            .values(left_at=at)
        )

    def visits(self, journey_ids: set[str] | None = None) -> list[StageVisit]:
        q = select(stage_visits).order_by(stage_visits.c.id)
        if journey_ids is not None:
            q = q.where(stage_visits.c.journey_id.in_(sorted(journey_ids)))
        return [
            StageVisit(r["journey_id"], r["stage_id"], r["entered_at"], r["left_at"])
            for r in self.conn.execute(q).mappings()
        ]

    def queued_before(self, journey: Journey, grid_area_id: str) -> int:
        """Journeys in the same grid area whose feasibility indication is done and who are not live yet."""
        q = (
            select(func.count(func.distinct(journeys.c.id)))
            .select_from(journeys)
            .join(sites, sites.c.customer_id == journeys.c.customer_id)
            .join(journey_tasks, journey_tasks.c.journey_id == journeys.c.id)
            .where(
                sites.c.grid_area_id == grid_area_id,
                journeys.c.id != journey.id,
                journeys.c.first_active_at.is_(None),
                journeys.c.status == JourneyStatus.ACTIVE.value,
                and_(
                    journey_tasks.c.service == "dso_feasibility_indication",
                    journey_tasks.c.status == TaskStatus.COMPLETED.value,
                ),
            )
        )
        return int(self.conn.execute(q).scalar() or 0)

    # ------------------------------------------------------------------ records
    def audit(self, entry: AuditEntry) -> None:
        values = asdict(entry)
        values.pop("id")
        self.conn.execute(insert(audit_log).values(**values))

    def update_audit(self, *_: Any, **__: Any) -> None:
        """Refused: the audit log is append-only."""
        msg = "audit_log is append-only: entries are never updated or deleted"
        raise AppendOnlyError(msg)

    delete_audit = update_audit

    def audit_entries(self, journey_id: str) -> list[AuditEntry]:
        q = select(audit_log).where(audit_log.c.journey_id == journey_id).order_by(audit_log.c.id)
        return [AuditEntry(**dict(r)) for r in self.conn.execute(q).mappings()]

    def journeys_with_action(self, action: str) -> set[str]:
        q = select(audit_log.c.journey_id).where(audit_log.c.action == action, audit_log.c.journey_id.is_not(None))
        return {str(j) for j in self.conn.execute(q).scalars()}

    def notify(self, notification: Notification) -> None:
        values = asdict(notification)
        values.pop("id")
        self.conn.execute(insert(outbox).values(**values))

    def notifications(self, journey_id: str) -> list[Notification]:
        q = select(outbox).where(outbox.c.journey_id == journey_id).order_by(outbox.c.id)
        return [Notification(**dict(r)) for r in self.conn.execute(q).mappings()]

    def pending_notifications(self, limit: int) -> list[Notification]:
        q = select(outbox).where(outbox.c.status == "pending").order_by(outbox.c.id).limit(limit)
        if self._locks:
            q = q.with_for_update(skip_locked=True)
        return [Notification(**dict(r)) for r in self.conn.execute(q).mappings()]

    def mark_notification(self, notification_id: int, *, status: str, at: datetime, error: str | None) -> None:
        self.conn.execute(
            update(outbox)
            .where(outbox.c.id == notification_id)
            .values(status=status, sent_at=at if status == "sent" else None, error=error)
        )

    def add_exit_feedback(self, feedback: ExitFeedback) -> None:
        values = asdict(feedback)
        values["reasons"] = list(feedback.reasons)
        self.conn.execute(insert(exit_feedback).values(**values))

    def exit_feedback(self, journey_ids: set[str] | None = None) -> list[ExitFeedback]:
        q = select(exit_feedback).order_by(exit_feedback.c.id)
        if journey_ids is not None:
            q = q.where(exit_feedback.c.journey_id.in_(sorted(journey_ids)))
        return [
            ExitFeedback(r["journey_id"], tuple(r["reasons"]), r["comment"], r["created_at"])
            for r in self.conn.execute(q).mappings()
        ]


def _journey_values(journey: Journey) -> dict[str, Any]:
    values = asdict(journey)
    values["status"] = journey.status.value
    return values


def _journey(row: Any) -> Journey:
    return Journey(**{**dict(row), "status": JourneyStatus(row["status"])})


def _task_values(task: Task) -> dict[str, Any]:
    values = asdict(task)
    values.update(
        kind=task.kind.value,
        status=task.status.value,
        evidence_required=list(task.evidence_required),
        outcomes=list(task.outcomes),
    )
    return values


def _task(row: Any) -> Task:
    return Task(
        **{
            **dict(row),
            "kind": TaskKind(row["kind"]),
            "status": TaskStatus(row["status"]),
            "evidence_required": tuple(row["evidence_required"]),
            "outcomes": tuple(row["outcomes"]),
        }
    )


def _sorted_tasks(rows: Any) -> list[Task]:
    return sorted((_task(r) for r in rows), key=lambda t: (t.created_at, t.id))


def sql_unit_of_work(engine: Engine) -> Any:
    """A :data:`v2g.services.journey.ports.UnitOfWork` over ``engine``."""

    @contextmanager
    def uow() -> Iterator[SqlJourneyRepository]:
        try:
            with engine.begin() as conn:
                yield SqlJourneyRepository(conn)
        except IntegrityError as exc:
            msg = f"conflicting write, nothing was saved: {exc.orig}"
            raise DuplicateError(msg) from exc

    return uow
