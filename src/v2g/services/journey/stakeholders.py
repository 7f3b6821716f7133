"""What the stakeholders serving a customer work from: the work queue of their role's tasks with each
task's deadline, and the DSO's view of its grid areas (connection queue, hosting capacity, V2G sites).

A task's deadline is its stage's SLA (the blueprint's timeline row, :func:`engine.sla_status`)
counted from when the task was created, i.e. when its stage was entered: on time until the warning
share of the stage's longest duration passed, then due soon, breached after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from v2g.fleet.model import GridArea
from v2g.journey import engine
from v2g.journey.model import Journey, JourneyStatus, Task
from v2g.services.actors.ports import Principal
from v2g.services.journey.ports import JourneyRepository
from v2g.services.journey.tasks import TaskWork

# most urgent first: breached, due soon, on time, then tasks of stages without a deadline
URGENCY = {engine.SlaState.BREACHED: 0, engine.SlaState.WARNING: 1, engine.SlaState.OK: 2, engine.SlaState.NONE: 3}
DSO_ROLE = "dso"


@dataclass(frozen=True, slots=True)
class QueueItem:
    """A task in a work queue, with whose it is and when it is due."""

    task: Task
    customer_id: str
    customer_name: str
    site_address: str | None
    grid_area_id: str | None
    stage_name: str
    journey_stage_id: str
    journey_status: JourneyStatus
    sla: engine.SlaStatus


@dataclass(frozen=True, slots=True)
class ConnectionRequest:
    """A customer of the area in the DSO's connection queue (its feasibility indication, not live yet)."""

    customer_id: str
    customer_name: str
    journey_id: str
    stage_id: str
    queue_position: int | None
    result: str | None
    requested_export_kw: float | None
    preliminary_connection_at: datetime | None
    indicated_at: datetime


@dataclass(frozen=True, slots=True)
class V2gSite:
    """A charger of the area registered as a V2G site."""

    customer_id: str
    site_id: str
    charger_id: str
    v2g_site_id: str
    max_discharge_kw: float
    active: bool


@dataclass(frozen=True, slots=True)
class DsoArea:
    """One grid area of a DSO: its limits, the export committed in it, its queue and its V2G sites."""

    area: GridArea
    committed_export_kw: float
    queue: tuple[ConnectionRequest, ...]
    v2g_sites: tuple[V2gSite, ...]

    @property
    def headroom_kw(self) -> float:
        return self.area.hosting_capacity_kw - self.committed_export_kw


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


class StakeholderViews(TaskWork):
    """The work queue of a role and the DSO's areas."""

    def task_deadline(self, task: Task, now: datetime) -> engine.SlaStatus:
        """The task's SLA: its stage's timeline counted from the task's creation."""
        stage = self.blueprint.stages[self.blueprint.stage_index(task.stage_id)]
        return engine.sla_status(stage, task.created_at, now)

    def work_queue(self, who: Principal, *, include_done: bool = False) -> list[QueueItem]:
        """The caller's tasks (``my_tasks``) with customer, stage and SLA: open ones most urgent first
        (breached, due soon, on time, no deadline; earliest due first), then done ones, latest first."""
        tasks = self.my_tasks(who, include_done=include_done)
        now = self.clock.now()
        items: list[QueueItem] = []
        with self.uow() as repo:
            journeys: dict[str, Journey | None] = {}
            for task in tasks:
                if task.journey_id not in journeys:
                    journeys[task.journey_id] = repo.journey(task.journey_id)
                journey = journeys[task.journey_id]
                if journey is None:
                    continue
                items.append(self._item(repo, task, journey, now))
        open_items = sorted(
            (i for i in items if not i.task.done),
            key=lambda i: (URGENCY[i.sla.state], i.sla.due_at or datetime.max.replace(tzinfo=now.tzinfo), i.task.id),
        )
        done_items = sorted((i for i in items if i.task.done), key=lambda i: i.task.completed_at or now, reverse=True)
        return open_items + done_items

    def queue_item(self, who: Principal, task_id: str) -> QueueItem:
        """One task of the caller's (``actor_task``) as its work queue shows it."""
        task = self.actor_task(who, task_id, allow_override=True)
        with self.uow() as repo:
            journey = self._load(repo, who, task.journey_id)
            return self._item(repo, task, journey, self.clock.now())

    def _item(self, repo: JourneyRepository, task: Task, journey: Journey, now: datetime) -> QueueItem:
        customer = repo.customer(journey.customer_id)
        sites = repo.customer_file(journey.customer_id).sites if customer is not None else []
        stage = self.blueprint.stages[self.blueprint.stage_index(task.stage_id)]
        return QueueItem(
            task=task,
            customer_id=journey.customer_id,
            customer_name=customer.name if customer is not None else journey.customer_id,
            site_address=sites[0].address if sites else None,
            grid_area_id=sites[0].grid_area_id if sites else None,
            stage_name=stage.name,
            journey_stage_id=journey.stage_id,
            journey_status=journey.status,
            sla=self.task_deadline(task, now),
        )

    def dso_areas(self, who: Principal) -> list[DsoArea]:
        """The caller's grid areas (a DSO's own): limits, committed export, connection queue, V2G sites."""
        self._require_role(who, DSO_ROLE, action="read a DSO's grid areas")
        with self.uow() as repo:
            areas = repo.grid_areas_of_dso(who.organisation_id)
            customers = sorted(self.visible_customers(repo, who) or set())
            files = [repo.customer_file(cid) for cid in customers]
            out = []
            for area in areas:
                queue: list[ConnectionRequest] = []
                v2g: list[V2gSite] = []
                for file in files:
                    in_area = [s for s in file.sites if s.grid_area_id == area.id]
                    if not in_area:
                        continue
                    site_ids = {s.id for s in in_area}
                    v2g += [
                        V2gSite(file.customer.id, c.site_id, c.id, c.v2g_site_id, c.max_discharge_kw, c.active)
                        for c in file.chargers
                        if c.site_id in site_ids and c.v2g_site_id
                    ]
                    request = self._connection_request(repo, file.customer.id, file.customer.name)
                    if request is not None:
                        queue.append(request)
                queue.sort(key=lambda r: (r.queue_position or 0, r.indicated_at, r.customer_id))
                out.append(DsoArea(area, repo.committed_export_kw(area.id), tuple(queue), tuple(v2g)))
            return out

    @staticmethod
    def _connection_request(repo: JourneyRepository, customer_id: str, name: str) -> ConnectionRequest | None:
        """The customer's place in the connection queue: feasibility indicated, the service not live yet."""
        journey = repo.journey_of_customer(customer_id)
        if journey is None or journey.first_active_at is not None or journey.status is not JourneyStatus.ACTIVE:
            return None
        indication = next(
            (t for t in repo.tasks(journey.id) if t.service == "dso_feasibility_indication" and t.done), None
        )
        if indication is None:
            return None
        result = indication.result
        requested = result.get("requested_export_kw")
        return ConnectionRequest(
            customer_id=customer_id,
            customer_name=name,
            journey_id=journey.id,
            stage_id=journey.stage_id,
            queue_position=result.get("queue_position"),
            result=result.get("result"),
            requested_export_kw=float(requested) if isinstance(requested, int | float) else None,
            preliminary_connection_at=_when(result.get("preliminary_connection_at")),
            indicated_at=indication.completed_at or indication.created_at,
        )
