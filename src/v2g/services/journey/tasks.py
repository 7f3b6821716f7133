"""Task work: the tasks of a role, completing a task (or overriding an automated one), advancing."""

from __future__ import annotations

from dataclasses import replace

from v2g.journey import engine
from v2g.journey.model import JourneyError, JourneyStatus, Task, TaskKind
from v2g.services.actors.ports import ForbiddenError, NotFoundError, Notification, Principal
from v2g.services.journey.base import STAFF_ROLE
from v2g.services.journey.ports import JourneyRepository
from v2g.services.journey.progress import JourneyProgress
from v2g.services.journey.values import JourneyView, StateConflictError


class TaskWork(JourneyProgress):
    """What actors do on a journey's tasks, and moving the journey on by hand."""

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

    def actor_task(self, who: Principal, task_id: str, *, allow_override: bool = False) -> Task:
        """The task when the caller is the actor it is assigned to: its role, in an organisation that
        may see the customer (404 otherwise, 403 for another role's task). With ``allow_override`` an
        aggregator operator also gets a waiting automated task (which it may complete by hand)."""
        journey_id = task_id.split(":", 1)[0]
        with self.uow() as repo:
            journey = self._load(repo, who, journey_id)
            task = repo.task(task_id)
        if task is None or task.journey_id != journey.id:
            msg = f"task {task_id!r} not found"
            raise NotFoundError(msg)
        override = allow_override and task.kind is TaskKind.AUTOMATED and who.role == STAFF_ROLE
        if who.role not in (task.role, "system") and not override:
            msg = f"task {task.item_id} is for role {task.role!r}, not {who.role!r}"
            raise ForbiddenError(msg)
        return task

    def record_evidence_upload(self, who: Principal, task: Task, after: dict[str, str]) -> None:
        """Write an evidence file's arrival to the journey's audit log."""

        def work(repo: JourneyRepository) -> None:
            self._audit(repo, who, "evidence_uploaded", "task", task.id, journey_id=task.journey_id, after=after)

        self._tx(work)

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
