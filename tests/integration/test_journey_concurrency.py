"""Two actors completing tasks on the same journey at the same time lose no update (real transactions)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from sqlalchemy import Engine

from tests.journey_support import SERVING, START, seed_world
from v2g.adapters.db.journey_repo import SqlJourneyRepository
from v2g.fleet.model import Charger, ChargerProtocol, Customer, PriceArea, Site, Vehicle
from v2g.journey.model import Journey
from v2g.services.actors.ports import ConcurrentUpdateError, Principal
from v2g.services.journey.service import JourneyService
from v2g.services.journey.values import SignUp

AGG = Principal("user-aggregator", "org-agg", "aggregator_operator")
DSO = Principal("user-dso", "org-dso", "dso")
INSURER = Principal("user-insurer", "org-ins", "insurer")


pytestmark = pytest.mark.slow


class SlowRepository(SqlJourneyRepository):
    """Holds the journey a little after reading it, so both transactions surely overlap."""

    def journey(self, journey_id: str, *, for_update: bool = False) -> Journey | None:
        found = super().journey(journey_id, for_update=for_update)
        time.sleep(0.15)
        return found


def slow_uow(engine: Engine) -> object:
    @contextmanager
    def uow() -> Iterator[SqlJourneyRepository]:
        with engine.begin() as conn:
            yield SlowRepository(conn)

    return uow


def _signup(cid: str) -> SignUp:
    site = Site(f"site-{cid}", cid, "Storgatan 1", PriceArea.SE3, "GA-1", main_fuse_a=20, household_peak_kw=6.9)
    return SignUp(
        customer=Customer(cid, f"Owner {cid}", f"{cid}@example.se", START, "+46701234567"),
        site=site,
        vehicle=Vehicle(f"veh-{cid}", cid, "Volkswagen", "ID.4", 77.0, 11.0, 10.0, True, site.id),
        offer="v2g-basic",
        charger=Charger(f"CP-{cid}", site.id, "Wallbox", "Quasar 2", ChargerProtocol.OCPP201, 11.5, 11.5),
        serving_organisation_ids=tuple(SERVING),
    )


def _to_onboarding(service: JourneyService, cid: str) -> str:
    view = service.sign_up(AGG, _signup(cid))
    jid = view.journey.id
    while service.get(AGG, jid).journey.stage_id != "installation_onboarding":
        service.advance(AGG, jid)
    installer = Principal("user-installer", "org-inst", "installer")
    item = "installation_onboarding.front.installer.install_wallbox"
    service.complete_task(installer, f"{jid}:{item}", evidence={"installation_report": "IR-1"})
    return jid


def test_dso_and_insurer_at_the_same_time_both_count(engine: Engine) -> None:
    world = seed_world(engine)
    jid = _to_onboarding(world.service, "c1")
    concurrent = JourneyService(slow_uow(engine), world.clock, world.blueprint, world.service.registry)  # type: ignore[arg-type]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def act(who: Principal, item: str, **kwargs: object) -> None:
        try:
            barrier.wait()
            concurrent.complete_task(who, f"{jid}:{item}", **kwargs)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(
            target=act,
            args=(DSO, "installation_onboarding.back.dso.inspect_approve_installation"),
            kwargs={"outcome": "approved", "evidence": {"inspection_report": "R1", "grid_connection_id": "GC1"}},
        ),
        threading.Thread(
            target=act,
            args=(INSURER, "installation_onboarding.back.insurance.confirm_coverage"),
            kwargs={"evidence": {"coverage_confirmation": "P1"}},
        ),
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    view = world.service.get(AGG, jid)
    done = {t.item_id.rsplit(".", 1)[-1] for t in view.tasks if t.done}
    assert {"inspect_approve_installation", "confirm_coverage"} <= done
    # the second transaction saw the first one's completion, so the gate opened and the journey moved on
    assert view.journey.stage_id == "test_prequalification"
    audit = [e.action for e in world.service.audit_log(AGG, jid)]
    assert audit.count("task_completed") >= 2
    # both waited on each other rather than running blind: at least two slow reads in sequence
    assert time.perf_counter() - started >= 0.3


def test_the_same_task_completed_twice_at_once_is_done_once(engine: Engine) -> None:
    world = seed_world(engine)
    jid = _to_onboarding(world.service, "c1")
    concurrent = JourneyService(slow_uow(engine), world.clock, world.blueprint, world.service.registry)  # type: ignore[arg-type]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act(report: str) -> None:
        barrier.wait()
        try:
            concurrent.complete_task(
                INSURER,
                f"{jid}:installation_onboarding.back.insurance.confirm_coverage",
                evidence={"coverage_confirmation": report},
            )
            outcomes.append("ok")
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=act, args=(r,)) for r in ("P1", "P2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["StateConflictError", "ok"]
    task = next(t for t in world.service.get(AGG, jid).tasks if t.item_id.endswith("confirm_coverage"))
    audit = [e for e in world.service.audit_log(AGG, jid) if e.entity_id == task.id and e.action == "task_completed"]
    assert len(audit) == 1
    assert audit[0].after is not None
    assert audit[0].after["evidence"] == task.evidence


def test_version_check_refuses_a_stale_write(engine: Engine) -> None:
    world = seed_world(engine)
    jid = world.service.sign_up(AGG, _signup("c1")).journey.id
    with engine.begin() as conn:
        repo = SqlJourneyRepository(conn)
        stale = repo.journey(jid)
        assert stale is not None
        repo.update_journey(replace(stale, version=stale.version + 1), expected_version=stale.version)
    with engine.begin() as conn, pytest.raises(ConcurrentUpdateError, match="changed concurrently"):
        SqlJourneyRepository(conn).update_journey(
            replace(stale, version=stale.version + 1), expected_version=stale.version
        )
