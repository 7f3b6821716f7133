"""The engine loop: run the current stage's automated tasks and move on while the gates hold."""

from __future__ import annotations

from dataclasses import replace

from v2g.journey import engine
from v2g.journey.model import Journey, JourneyStatus, TaskKind
from v2g.services.actors.ports import ConcurrentUpdateError, DuplicateError, Principal
from v2g.services.journey.automation import ServiceContext, ServiceOutcome
from v2g.services.journey.base import JourneyCore
from v2g.services.journey.ports import JourneyRepository


class JourneyProgress(JourneyCore):
    """Moves a journey forward after every change (used by every use case that changes a journey)."""

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
