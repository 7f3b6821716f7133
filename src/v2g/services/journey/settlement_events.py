"""Settlement reports back: after each settlement day the journeys that are ending look again at
their open automated tasks (the final settlement waits for its month to be settled)."""

from __future__ import annotations

from v2g.journey.model import Journey, JourneyStatus
from v2g.services.actors.ports import SYSTEM
from v2g.services.journey.ports import JourneyRepository
from v2g.services.journey.progress import JourneyProgress


class SettlementEvents(JourneyProgress):
    """The settlement job's report to the journeys."""

    def settlement_day_done(self) -> list[str]:
        """Re-run the automated tasks of every terminating journey; the ids of those that moved on."""
        with self.uow() as repo:
            ending = [j.id for j in repo.journeys() if j.status is JourneyStatus.TERMINATING]
        moved = []
        for journey_id in ending:

            def work(repo: JourneyRepository, journey_id: str = journey_id) -> Journey | None:
                journey = repo.journey(journey_id, for_update=True)
                if journey is None or journey.status is not JourneyStatus.TERMINATING:
                    return None
                return self._save(repo, journey, self._settle(repo, journey, SYSTEM))

            after = self._tx(work)
            if after is not None and after.status is JourneyStatus.TERMINATED:
                moved.append(journey_id)
        return moved
