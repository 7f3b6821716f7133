"""The device layer's automated services for the journey engine (registered in ``bootstrap.py``).

* ``generate_box_site_id``: the charger gets its V2G site id and, if it has none yet, OCPP
  credentials (security profile 2); the password is stored only as a hash for the CSMS, and the
  installer organisation serving the customer retrieves it once through the task
  (``GET /api/v1/tasks/{task_id}/secret``); the outbox only says where to get it.
* ``verify_connectivity``: the journey's handler, fed by the CSMS, which reports ``boot`` and
  ``test_profile_accepted`` through ``JourneyService.record_device_event``.
* ``deactivate_charger``: the charger is marked inactive in the same transaction; the CSMS then
  clears its profiles, makes it Inoperative and closes the connection (and refuses it afterwards).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Protocol

from v2g.services.actors.ports import OneTimeSecret
from v2g.services.devices.ports import CredentialHasher
from v2g.services.journey import handlers as journey_handlers
from v2g.services.journey.automation import Handler, ServiceContext, ServiceOutcome

SECURITY_PROFILE = 2


class CredentialStore(Protocol):
    """Charger credentials on the journey's own transaction."""

    def has_credentials(self, charger_id: str) -> bool: ...

    def add_credentials(self, charger_id: str, password_hash: str, security_profile: int) -> None: ...


def device_handlers(
    store_for: Callable[[ServiceContext], CredentialStore], hasher: CredentialHasher
) -> dict[str, Handler]:
    """Handlers by service name, to register in the journey engine's registry."""

    def generate_box_site_id(ctx: ServiceContext) -> ServiceOutcome:
        outcome = journey_handlers.generate_box_site_id(ctx)
        if not outcome.completed:
            return outcome
        charger_id = str(outcome.result["charger_id"])
        store = store_for(ctx)
        issued = False
        if not store.has_credentials(charger_id):
            installers = [o for o in ctx.repo.serving_organisations(ctx.journey.customer_id) if o.role == "installer"]
            if not installers:
                return ServiceOutcome.waiting(
                    "no installer organisation serves the customer to receive the credentials"
                )
            password = secrets.token_urlsafe(24)
            store.add_credentials(charger_id, hasher.hash(password), SECURITY_PROFILE)
            issued = True
            for org in installers:
                ctx.repo.add_secret(
                    OneTimeSecret(
                        task_id=ctx.task.id,
                        organisation_id=org.id,
                        journey_id=ctx.journey.id,
                        subject=charger_id,
                        label="OCPP password",
                        created_at=ctx.now,
                        value=password,
                    )
                )
                ctx.notify(
                    "Charger OCPP credentials",
                    f"Charger {charger_id}: connect to /ocpp/{charger_id} over TLS with basic auth, user {charger_id}. "
                    f"Retrieve the password once from GET /api/v1/tasks/{ctx.task.id}/secret.",
                    organisation_id=org.id,
                )
        return ServiceOutcome.done(
            {**outcome.result, "credentials_issued": issued, "security_profile": SECURITY_PROFILE}
        )

    def deactivate_charger(ctx: ServiceContext) -> ServiceOutcome:
        outcome = journey_handlers.deactivate_charger(ctx)
        return ServiceOutcome.done(
            {**outcome.result, "remote": "the CSMS clears profiles, sets Inoperative and disconnects live chargers"}
        )

    return {"generate_box_site_id": generate_box_site_id, "deactivate_charger": deactivate_charger}
