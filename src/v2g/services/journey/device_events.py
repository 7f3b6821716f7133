"""Device events: the device layer reports a charger's boot and its accepted test profile."""

from __future__ import annotations

from dataclasses import replace

from v2g.journey.model import Journey, JourneyError
from v2g.services.actors.ports import SYSTEM, NotFoundError, Principal
from v2g.services.journey.base import STAFF_ROLE
from v2g.services.journey.ports import JourneyRepository
from v2g.services.journey.progress import JourneyProgress


class DeviceEvents(JourneyProgress):
    """Device reports that complete the connectivity check."""

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
