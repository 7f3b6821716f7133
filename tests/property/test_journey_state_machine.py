"""Random actors acting in random order never get a journey past a gate that does not hold."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.integration.test_journey_concurrency import AGG, _signup
from tests.journey_support import ACTORS, PRODUCT_BLUEPRINT, World, seed_world
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.migrate import upgrade
from v2g.journey import engine as rules
from v2g.journey.model import GateRefusedError, JourneyError, JourneyStatus, TaskKind
from v2g.services.actors.ports import ForbiddenError, Principal
from v2g.services.journey.values import StateConflictError

pytestmark = pytest.mark.slow
PRINCIPALS = {role: Principal(f"user-{name}", org, role) for name, (org, _, role) in ACTORS.items() if "2" not in name}
_ids = itertools.count()


WORLDS: list[World] = []


@pytest.fixture(scope="module", autouse=True)
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    path: Path = tmp_path_factory.mktemp("sm") / "v2g.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    WORLDS.append(seed_world(engine, blueprint_path=PRODUCT_BLUEPRINT))
    yield
    WORLDS.clear()
    engine.dispose()


actions = st.lists(
    st.tuples(st.sampled_from(["complete", "advance", "pause", "resume", "device"]), st.integers(0, 200)),
    min_size=5,
    max_size=40,
)


@settings(max_examples=25, deadline=None)
@given(steps=actions)
def test_gates_hold_whatever_the_order(steps: list[tuple[str, int]]) -> None:
    world = WORLDS[0]
    service, bp = world.service, world.blueprint
    cid = f"sm{next(_ids)}"
    jid = service.sign_up(AGG, _signup(cid)).journey.id
    stages = [s.id for s in bp.stages]
    last_index = stages.index(service.get(AGG, jid).journey.stage_id)
    for action, pick in steps:
        view = service.get(AGG, jid)
        open_tasks = [t for t in view.tasks if not t.done]
        try:
            if action == "complete" and open_tasks:
                task = open_tasks[pick % len(open_tasks)]
                evidence = dict.fromkeys(task.evidence_required, "x") if task.kind is TaskKind.MANUAL else {"note": "x"}
                outcome = task.outcomes[pick % len(task.outcomes)] if task.outcomes else None
                role = "aggregator_operator" if task.kind is TaskKind.AUTOMATED else task.role
                who = PRINCIPALS.get(role, Principal("system", "platform", "system"))  # owner: none seeded
                service.complete_task(who, task.id, outcome=outcome, evidence=evidence)
            elif action == "advance":
                service.advance(AGG, jid)
            elif action == "pause":
                service.pause(AGG, jid)
            elif action == "resume":
                service.resume(AGG, jid)
            elif action == "device":
                service.record_device_event(f"CP-{cid}", ("boot", "test_profile_accepted")[pick % 2])
        except (GateRefusedError, StateConflictError, JourneyError, ForbiddenError):
            pass
        view = service.get(AGG, jid)
        index = stages.index(view.journey.stage_id)
        assert index >= last_index, "a journey never moves backwards"
        last_index = index
        # every gate passed on the way here still holds (completed tasks stay completed)
        for before, after in itertools.pairwise(stages[: index + 1]):
            assert rules.transition_unmet(bp, before, after, view.tasks) == []
        if view.journey.status is JourneyStatus.PAUSED:
            assert view.journey.stage_id in service.rules.pausable_stages
