"""SQL records of journeys, their tasks and their stage visits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update

from v2g.adapters.db.bound import ConnectionBound
from v2g.adapters.db.tables.fleet import sites
from v2g.adapters.db.tables.journey import journey_tasks, journeys, stage_visits
from v2g.journey.model import Journey, JourneyStatus, StageVisit, Task, TaskKind, TaskStatus
from v2g.services.actors.ports import ConcurrentUpdateError


class SqlJourneyRecords(ConnectionBound):
    """Implements :class:`v2g.services.journey.ports.JourneyRecords`; the journey row is locked for update
    where the database can."""

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
