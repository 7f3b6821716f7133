"""The journey service: every journey use case on one object, for the API, the CLI and the jobs.

The use cases live one module each (``onboarding``, ``tasks``, ``lifecycle``, ``queries``,
``device_events``, ``settlement_events``, ``sla``, ``secrets``, ``stakeholders``)
as mixins over one shared core (``base.JourneyCore``, with the engine
loop in ``progress.JourneyProgress``). Mixins rather than composition because every use case needs
the same five collaborators (unit of work, clock, blueprint, service registry, rules) and the same
transactional helpers, and several use cases end in the same engine loop; composing them would
mean either passing a core object around or a forwarding method per use case. ``JourneyService``
keeps one public surface, so the API, the CLI and the scheduled jobs are unaware of the split.
"""

from __future__ import annotations

from v2g.services.journey.device_events import DeviceEvents
from v2g.services.journey.lifecycle import Lifecycle
from v2g.services.journey.onboarding import Onboarding
from v2g.services.journey.queries import Queries
from v2g.services.journey.secrets import OneTimeSecrets
from v2g.services.journey.settlement_events import SettlementEvents
from v2g.services.journey.sla import SlaSweep
from v2g.services.journey.stakeholders import StakeholderViews
from v2g.services.journey.tasks import TaskWork


class JourneyService(
    Onboarding, StakeholderViews, TaskWork, Lifecycle, Queries, DeviceEvents, SettlementEvents, SlaSweep, OneTimeSecrets
):
    """The journey engine running against storage, a clock and the automated-service registry."""


__all__ = ["JourneyService"]
