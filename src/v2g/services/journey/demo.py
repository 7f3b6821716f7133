"""Demo organisations, users and journeys spread over every stage (for `v2g demo`; idempotent).

The passwords printed by `v2g demo` are for the local demo database only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from v2g.journey.model import GateRefusedError, JourneyStatus, TaskKind
from v2g.services.actors.auth import ensure_organisation_user, hash_password
from v2g.services.actors.ports import SYSTEM
from v2g.services.journey.ports import UnitOfWork
from v2g.services.journey.service import JourneyService

DEMO_PASSWORD = "v2g-demo-only"
DEMO_ORGANISATIONS = (
    ("org-agg-demo", "Demo Aggregator AB", "aggregator_operator", "aggregator"),
    ("org-dso-demo", "Demo Nät AB", "dso", "dso"),
    ("org-inst-demo", "Demo Installation AB", "installer", "installer"),
    ("org-ins-demo", "Demo Försäkring AB", "insurer", "insurer"),
    ("org-tso-demo", "Demo TSO", "tso", "tso"),
    ("org-bsp-demo", "Demo BSP AB", "bsp", "bsp"),
    ("org-brp-demo", "Demo BRP AB", "brp", "brp"),
    ("org-es-demo", "Demo Elhandel AB", "energy_supplier", "energy_supplier"),
    ("org-evs-demo", "Demo Bil AB", "ev_supplier", "ev_supplier"),
    ("org-evse-demo", "Demo Wallbox AB", "evse_supplier", "evse_supplier"),
)


@dataclass
class _DemoClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


def seed_demo_journeys(
    uow: UnitOfWork, service: JourneyService, customer_ids: list[str], *, start: datetime | None = None
) -> list[tuple[str, str]]:
    """Demo organisations and users (returned as (username, password)), and one journey per customer,
    customer ``i`` driven to stage ``i mod stages`` (the last stage by termination, one usage journey paused)."""
    start = start or datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    clock = _DemoClock(start)
    seeding = JourneyService(uow, clock, service.blueprint, service.registry, service.rules)
    credentials: list[tuple[str, str]] = []
    demo_hash = hash_password(DEMO_PASSWORD)  # one hash for the shared demo password
    with uow() as repo:
        for org_id, name, role, username in DEMO_ORGANISATIONS:
            ensure_organisation_user(
                repo,
                organisation_id=org_id,
                organisation_name=name,
                role=role,
                username=username,
                password_hash=demo_hash,
                now=start,
            )
            credentials.append((username, DEMO_PASSWORD))
        for cid in customer_ids:
            ensure_organisation_user(
                repo,
                organisation_id=f"org-owner-{cid}",
                organisation_name=f"Owner {cid}",
                role="owner",
                username=f"owner-{cid}",
                password_hash=demo_hash,
                now=start,
                customer_id=cid,
            )
            credentials.append((f"owner-{cid}", DEMO_PASSWORD))
            for org_id, *_ in DEMO_ORGANISATIONS:
                if org_id != "org-dso-demo":
                    repo.assign(org_id, cid)
        existing = {j.customer_id for j in repo.journeys(set(customer_ids))}
    stages = [s.id for s in service.blueprint.stages]
    for i, cid in enumerate(customer_ids):
        if cid in existing:
            continue
        clock.at = start + timedelta(days=3 * i)
        jid = seeding.start_journey(SYSTEM, cid, "v2g-demo").journey.id
        target = i % len(stages)
        _drive(seeding, clock, jid, stages[target] if target < len(stages) - 1 else None)
        if target == len(stages) - 1:
            clock.at += timedelta(days=2)
            seeding.terminate(SYSTEM, jid, ["other"], "demo termination")
            if i < len(stages):  # the first one finishes its termination, later ones are still in it
                clock.at += timedelta(days=10)
                _complete_stage(seeding, jid)
        elif stages[target] in service.rules.pausable_stages and i % 2 == 0:
            seeding.pause(SYSTEM, jid, "demo pause")
    return credentials


def _drive(service: JourneyService, clock: _DemoClock, journey_id: str, target: str | None) -> None:
    """Complete tasks with demo evidence and advance until ``target`` (None: the stage before termination)."""
    stages = [s.id for s in service.blueprint.stages]
    stop = stages.index(target or stages[-2])
    for _ in range(len(stages) * 4):
        view = service.get(SYSTEM, journey_id)
        # a stage without tasks is passed on its own, so a journey may already be beyond its target
        if stages.index(view.journey.stage_id) >= stop or view.journey.status is not JourneyStatus.ACTIVE:
            return
        clock.at += timedelta(days=4)
        try:
            service.advance(SYSTEM, journey_id)
            continue
        except GateRefusedError:
            _complete_stage(service, journey_id)


def _complete_stage(service: JourneyService, journey_id: str) -> None:
    """Complete the current stage's open tasks with demo evidence (the first outcome each)."""
    view = service.get(SYSTEM, journey_id)
    for task in view.tasks:
        if task.done or task.stage_id != view.journey.stage_id:
            continue
        evidence = (
            {name: f"demo {name}" for name in task.evidence_required}
            if task.kind is TaskKind.MANUAL
            else {"note": "completed by hand for the demo"}
        )
        outcome = task.outcomes[0] if task.outcomes else None
        service.complete_task(SYSTEM, task.id, outcome=outcome, evidence=evidence)
