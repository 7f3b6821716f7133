"""The SLA sweep: announce once per stage visit when a stage nears or passes its deadline."""

from __future__ import annotations

from v2g.journey import engine
from v2g.journey.model import JourneyStatus
from v2g.services.actors.ports import SYSTEM
from v2g.services.journey.base import JourneyCore
from v2g.services.journey.ports import JourneyRepository


class SlaSweep(JourneyCore):
    """Deadline warnings and breaches, announced to the people involved."""

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
