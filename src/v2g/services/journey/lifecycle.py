"""Lifecycle of the service: pause, resume, terminate (with exit reasons and retention offers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from v2g.journey.model import Journey, JourneyError, JourneyStatus
from v2g.journey.rules import RetentionOffer
from v2g.services.actors.ports import Principal
from v2g.services.journey.base import STAFF_ROLE
from v2g.services.journey.ports import ExitFeedback, JourneyRepository
from v2g.services.journey.progress import JourneyProgress
from v2g.services.journey.values import JourneyView, StateConflictError


class Lifecycle(JourneyProgress):
    """Pausing, resuming and ending the service."""

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

    def retention_offers(self, who: Principal, journey_id: str) -> tuple[RetentionOffer, ...]:
        self._require_role(who, "owner", STAFF_ROLE, action="see retention offers")
        with self.uow() as repo:
            self._load(repo, who, journey_id)
        return self.rules.retention_offers
