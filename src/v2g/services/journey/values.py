"""Values the journey use cases take and give: a sign-up, a journey with its tasks, a state conflict."""

from __future__ import annotations

from dataclasses import dataclass

from v2g.fleet.model import Charger, Customer, Site, Vehicle
from v2g.journey.model import Journey, JourneyError, Task


class StateConflictError(JourneyError):
    """The request is valid but the journey's state does not allow it now (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class SignUp:
    """A new customer: the owner, the home site, the vehicle, the chosen offer, the wallbox if known."""

    customer: Customer
    site: Site
    vehicle: Vehicle
    offer: str
    charger: Charger | None = None
    serving_organisation_ids: tuple[str, ...] = ()
    owner_username: str | None = None
    owner_password_hash: str | None = None


@dataclass(frozen=True, slots=True)
class JourneyView:
    journey: Journey
    tasks: list[Task]
