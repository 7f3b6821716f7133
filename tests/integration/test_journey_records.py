"""Audit log (append-only), outbox delivery, sign-up refusals and token handling on real databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text

from tests.integration.test_journey_concurrency import AGG, _signup
from tests.journey_support import ACTORS, PASSWORD, seed_world
from v2g.adapters.db.journey_repo import SqlJourneyRepository, sql_unit_of_work
from v2g.adapters.db.records_repo import AppendOnlyError
from v2g.adapters.db.tables.journey import audit_log, journeys, outbox
from v2g.adapters.notify import LogSender
from v2g.services.actors.auth import AuthenticationError, login, principal_for_token
from v2g.services.actors.outbox import deliver_pending
from v2g.services.actors.ports import DuplicateError, ForbiddenError, Notification, Organisation, Principal
from v2g.services.journey.automation import ServiceContext, ServiceOutcome
from v2g.services.journey.values import StateConflictError


def test_audit_log_is_append_only(engine: Engine) -> None:
    world = seed_world(engine)
    world.service.sign_up(AGG, _signup("c1"))
    with engine.begin() as conn:
        repo = SqlJourneyRepository(conn)
        entries = repo.audit_entries("j-c1")
        assert entries[0].action == "journey_created"
        assert entries[0].user_id == "user-aggregator"
        with pytest.raises(AppendOnlyError):
            repo.update_audit(entries[0].id, action="nothing happened")
    if engine.dialect.name == "postgresql":
        for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
            with engine.begin() as conn, pytest.raises(Exception, match="append-only"):
                conn.execute(text(statement))
    with engine.connect() as conn:
        on_journey = select(func.count()).select_from(audit_log).where(audit_log.c.journey_id == "j-c1")
        assert conn.execute(on_journey).scalar() == len(entries)
        issued = conn.execute(select(audit_log.c.after).where(audit_log.c.action == "token_issued")).scalars().all()
    assert len(issued) == len(world.tokens)
    assert all(set(after) == {"label", "expires_at"} for after in issued)  # never the token itself


def test_outbox_delivery_marks_sent_and_failed(engine: Engine) -> None:
    world = seed_world(engine)
    world.service.sign_up(AGG, _signup("c1"))
    uow = sql_unit_of_work(engine)

    class FlakySender:
        def send(self, message: Notification) -> None:
            if message.channel == "sms":
                raise ConnectionError("SMS gateway down")

    sent, failed = deliver_pending(uow, FlakySender(), world.clock)
    assert sent > 0
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.channel, outbox.c.status, outbox.c.error)).all()
    assert failed == sum(1 for c, _, _ in rows if c == "sms") >= 1
    assert sent + failed == len(rows)
    assert {(c, s) for c, s, _ in rows} == {("email", "sent"), ("app", "sent"), ("sms", "failed")}
    assert next(e for c, _, e in rows if c == "sms") == "ConnectionError: SMS gateway down"
    assert deliver_pending(uow, LogSender(), world.clock) == (0, 0)  # nothing is sent twice


def test_sign_up_refusals_lose_nothing(engine: Engine) -> None:
    world = seed_world(engine)
    with pytest.raises(ForbiddenError, match="role 'installer' may not sign up customers"):
        world.service.sign_up(Principal("user-installer", "org-inst", "installer"), _signup("c1"))
    world.service.sign_up(AGG, _signup("c1"))
    with pytest.raises(StateConflictError, match=r"customer\.id: customer 'c1' already exists"):
        world.service.sign_up(AGG, _signup("c1"))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(journeys)).scalar() == 1


def test_tokens_are_stored_hashed_and_expire(engine: Engine) -> None:
    world = seed_world(engine)
    uow = sql_unit_of_work(engine)
    with uow() as repo:
        token = login(repo, "installer", PASSWORD, now=world.clock.now())
        with pytest.raises(AuthenticationError):
            login(repo, "installer", "not the password", now=world.clock.now())
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
        hashes = conn.execute(text("SELECT password_hash FROM users")).scalars().all()
    assert token not in stored
    assert len(stored[0]) == 64
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert len(hashes) == len(ACTORS)
    with uow() as repo:
        who = principal_for_token(repo, token, now=world.clock.now())
        assert (who.role, who.organisation_id) == ("installer", "org-inst")
        with pytest.raises(AuthenticationError, match="expired"):
            principal_for_token(repo, token, now=world.clock.now() + timedelta(hours=13))


def test_sla_sweep_announces_warning_then_breach_once_each(engine: Engine) -> None:
    world = seed_world(engine)
    world.service.sign_up(AGG, _signup("c1"))  # in selection_request: 7-14 days, warning at 80 %
    assert world.service.sla_sweep() == []
    world.clock.advance(days=12)
    assert world.service.sla_sweep() == [("j-c1", "selection_request", "warning")]
    assert world.service.sla_sweep() == []
    world.clock.advance(days=3)
    assert world.service.sla_sweep() == [("j-c1", "selection_request", "breached")]
    assert world.service.sla_sweep() == []
    warned = [n for n in world.service.notifications(AGG, "j-c1") if n.subject.endswith("close to its deadline")]
    assert sorted(n.channel for n in warned if n.address) == ["email", "sms"]  # the owner
    assert {n.recipient_organisation_id for n in warned if n.channel == "app"} >= {"org-agg", "org-inst"}
    assert "waiting on customer" in warned[0].body
    tracker = world.service.tracker(AGG, "j-c1")
    assert tracker.sla.state.value == "breached"
    assert tracker.waiting_on == ("customer",)


def test_a_colliding_write_is_a_conflict_and_saves_nothing(engine: Engine) -> None:
    world = seed_world(engine)
    uow = sql_unit_of_work(engine)

    def clash() -> None:
        with uow() as repo:
            repo.add_organisation(Organisation("org-new", "New AB", "bsp"))
            repo.add_organisation(Organisation("org-agg", "Clash AB", "bsp"))

    with pytest.raises(DuplicateError, match="nothing was saved"):
        clash()
    with uow() as repo:
        assert repo.organisation("org-new") is None
        assert world.service.list_journeys(AGG) == []


def test_a_failing_service_waits_with_the_error_and_its_writes_are_undone(engine: Engine) -> None:
    world = seed_world(engine)

    def broken(ctx: ServiceContext) -> ServiceOutcome:
        ctx.repo.set_charger("CP-c1", v2g_site_id="HALF-WRITTEN")
        raise ConnectionError("DSO portal unreachable")

    world.service.registry.register("dso_feasibility_indication", broken, replace=True)
    view = world.service.sign_up(AGG, _signup("c1"))
    task = next(t for t in view.tasks if t.service == "dso_feasibility_indication")
    assert task.status.value == "waiting"
    assert task.waiting_reason == "dso_feasibility_indication failed: ConnectionError: DSO portal unreachable"
    assert next(t for t in view.tasks if t.service == "check_vehicle_compatibility").done
    with sql_unit_of_work(engine)() as repo:
        assert repo.customer_file("c1").chargers[0].v2g_site_id is None
