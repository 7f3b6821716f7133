"""The registry of automated services: blueprint ``service`` name -> handler.

Each area registers the handlers it owns with one call in ``bootstrap.py``::

    registry.register("verify_connectivity", my_handler, replace=True)

A handler gets a :class:`ServiceContext` and returns :class:`ServiceOutcome`: completed (with a
result recorded on the task) or waiting (with the reason). A contract service with no handler yet
waits for its owning area, so an aggregator operator can still complete it by hand (audited).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from v2g.journey.model import Journey, Task
from v2g.journey.rules import JourneyRules
from v2g.services.actors.ports import Notification
from v2g.services.journey.ports import JourneyRepository

CONTRACT_SERVICES: dict[str, str] = {
    "check_vehicle_compatibility": "journey",
    "list_certified_wallboxes": "journey",
    "dso_feasibility_indication": "journey",
    "prepare_service_agreement": "journey",
    "publish_status_tracker": "journey",
    "generate_box_site_id": "device layer",
    "verify_connectivity": "device layer",
    "activate_v2g_service": "journey",
    "notify_tso": "journey",
    "notify_bsp": "journey",
    "create_bidding_group": "markets",
    "submit_bids": "markets",
    "manage_charge_discharge": "planning and dispatch",
    "handle_payments": "settlement",
    "final_settlement": "settlement",
    "deactivate_charger": "device layer",
    "deregister_unit": "markets",
    "remove_v2g_site_id": "journey",
    "export_customer_data": "journey",
}


@dataclass
class ServiceContext:
    """What a handler may use: the journey, its task, the repository (same transaction), now, rules."""

    journey: Journey
    task: Task
    repo: JourneyRepository
    now: datetime
    rules: JourneyRules
    tasks: list[Task] = field(default_factory=list)

    def notify(
        self,
        subject: str,
        body: str,
        *,
        channel: str = "app",
        organisation_id: str | None = None,
        user_id: str | None = None,
        address: str | None = None,
    ) -> None:
        """Put a message for someone involved in the outbox."""
        self.repo.notify(
            Notification(
                created_at=self.now,
                channel=channel,
                subject=subject,
                body=body,
                journey_id=self.journey.id,
                recipient_organisation_id=organisation_id,
                recipient_user_id=user_id,
                address=address,
            )
        )


@dataclass(frozen=True, slots=True)
class ServiceOutcome:
    """A handler's answer."""

    completed: bool
    result: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    outcome: str | None = None

    @classmethod
    def done(cls, result: dict[str, Any] | None = None, outcome: str | None = None) -> ServiceOutcome:
        return cls(True, dict(result or {}), None, outcome)

    @classmethod
    def waiting(cls, reason: str, result: dict[str, Any] | None = None) -> ServiceOutcome:
        return cls(False, dict(result or {}), reason)


Handler = Callable[[ServiceContext], ServiceOutcome]


class ServiceRegistry:
    """Handlers by service name."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, name: str, handler: Handler, *, replace: bool = False) -> None:
        """Register ``handler`` for ``name``; refuses a second registration unless ``replace``."""
        if name in self._handlers and not replace:
            msg = f"service {name!r} already has a handler; pass replace=True to override it"
            raise ValueError(msg)
        self._handlers[name] = handler

    def known(self) -> set[str]:
        """Every service the platform knows: the contract list plus anything registered."""
        return set(CONTRACT_SERVICES) | set(self._handlers)

    def run(self, ctx: ServiceContext) -> ServiceOutcome:
        name = ctx.task.service or ""
        handler = self._handlers.get(name)
        if handler is None:
            owner = CONTRACT_SERVICES.get(name, "another area")
            return ServiceOutcome.waiting(f"{name} is run by the {owner}; waiting for its report")
        return handler(ctx)
