"""One-time secrets: what an organisation must receive exactly once (a charger's OCPP password for
the installer) is kept beside the task that issued it, never in the outbox, an export or a task
result. The organisation retrieves it once; afterwards the value is gone (HTTP 410)."""

from __future__ import annotations

from v2g.services.actors.ports import GoneError, NotFoundError, OneTimeSecret, Principal
from v2g.services.journey.base import JourneyCore
from v2g.services.journey.ports import JourneyRepository


class OneTimeSecrets(JourneyCore):
    """Retrieving a secret addressed to the caller's organisation through a task."""

    def take_secret(self, who: Principal, task_id: str) -> OneTimeSecret:
        """The secret of ``task_id`` for the caller's organisation, once; :class:`GoneError` afterwards."""
        journey_id = task_id.split(":", 1)[0]

        def work(repo: JourneyRepository) -> OneTimeSecret:
            self._load(repo, who, journey_id)
            secret = repo.secret(task_id, who.organisation_id, for_update=True)
            if secret is None:
                msg = f"task {task_id!r} holds no secret for your organisation"
                raise NotFoundError(msg)
            now = self.clock.now()
            if secret.value is None or not repo.mark_secret_retrieved(
                task_id, who.organisation_id, at=now, by=who.user_id
            ):
                msg = (
                    f"the {secret.label} of task {task_id!r} was already retrieved"
                    + (f" at {secret.retrieved_at.isoformat()}" if secret.retrieved_at else "")
                    + "; ask the aggregator operator to issue new credentials"
                )
                raise GoneError(msg)
            self._audit(
                repo,
                who,
                "secret_retrieved",
                "task",
                task_id,
                journey_id=journey_id,
                after={"subject": secret.subject, "label": secret.label},
            )
            return secret

        return self._tx(work)
