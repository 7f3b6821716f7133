"""The pure journey engine against the small test blueprint: tasks, gates, SLAs, tracker, KPIs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.journey_support import load_test_blueprint
from v2g.blueprint.model import Blueprint
from v2g.journey import engine
from v2g.journey.kpis import KpiInput, compute_kpis
from v2g.journey.model import GateRefusedError, Journey, JourneyError, JourneyStatus, StageVisit, Task, TaskKind
from v2g.journey.rules import load_rules
from v2g.journey.tracker import status_tracker
from v2g.services.journey.automation import CONTRACT_SERVICES, ServiceOutcome, ServiceRegistry

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
RULES = load_rules()


@pytest.fixture(scope="module")
def bp() -> Blueprint:
    return load_test_blueprint()


def journey(stage: str = "installation_onboarding", **kw: object) -> Journey:
    return Journey("j1", "c1", "test_journey", stage, T0, T0, "v2g-basic", **kw)  # type: ignore[arg-type]


def done(tasks: list[Task], suffix: str, outcome: str | None = None, **evidence: str) -> list[Task]:
    out = []
    for t in tasks:
        if t.item_id.endswith(suffix):
            if t.kind is TaskKind.MANUAL:
                evidence = evidence or dict.fromkeys(t.evidence_required, "x")
            t = t.complete(at=T0, by="u", outcome=outcome, evidence=evidence)
        out.append(t)
    return out


def test_stage_tasks_are_actions_only_with_roles_from_actors(bp: Blueprint) -> None:
    tasks = engine.stage_tasks(bp, journey(), "installation_onboarding", now=T0)
    roles = {t.item_id.rsplit(".", 1)[-1]: t.role for t in tasks}
    assert roles == {
        "install_wallbox": "installer",
        "inspect_approve_installation": "dso",
        "confirm_coverage": "insurer",
        "generate_box_site_id": "aggregator_operator",
    }
    assert engine.stage_tasks(bp, journey(), "awareness_interest", now=T0) == []  # informational only
    assert all(t.id == f"j1:{t.item_id}" for t in tasks)


def test_gate_lists_every_unmet_condition_then_opens(bp: Blueprint) -> None:
    tasks = engine.stage_tasks(bp, journey(), "installation_onboarding", now=T0)
    with pytest.raises(GateRefusedError) as refused:
        engine.check_advance(bp, journey(), tasks)
    assert len(refused.value.unmet) == 2
    assert "must be completed with outcome 'approved'; it is open" in refused.value.unmet[0]
    tasks = done(tasks, "inspect_approve_installation", "rejected")
    with pytest.raises(GateRefusedError, match="must have outcome 'approved'; it has 'rejected'"):
        engine.check_advance(bp, journey(), tasks)
    tasks = engine.stage_tasks(bp, journey(), "installation_onboarding", now=T0)
    tasks = done(done(tasks, "inspect_approve_installation", "approved"), "confirm_coverage")
    assert engine.check_advance(bp, journey(), tasks).id == "test_prequalification"


def test_any_gate_accepts_either_outcome(bp: Blueprint) -> None:
    j = journey("test_prequalification")
    tasks = engine.stage_tasks(bp, j, "test_prequalification", now=T0)
    with pytest.raises(GateRefusedError, match="one of"):
        engine.check_advance(bp, j, tasks)
    assert engine.check_advance(bp, j, done(tasks, "prequalification_test", "joined_qualified_group")).id == "usage"
    with pytest.raises(GateRefusedError):
        engine.check_advance(bp, j, done(tasks, "prequalification_test", "failed"))


def test_advance_refuses_skips_unknown_stages_and_inactive_journeys(bp: Blueprint) -> None:
    with pytest.raises(JourneyError, match="can only move to decision_contracting") as skip:
        engine.check_advance(bp, journey("selection_request"), [], "usage")
    assert skip.value.field == "to_stage"
    with pytest.raises(JourneyError, match="unknown stage 'nowhere'"):
        engine.check_advance(bp, journey("selection_request"), [], "nowhere")
    with pytest.raises(JourneyError, match="paused"):
        engine.check_advance(bp, journey("usage", status=JourneyStatus.PAUSED), [])
    with pytest.raises(JourneyError, match="last stage"):
        engine.check_advance(bp, journey("termination"), [])


def test_task_completion_checks_evidence_and_outcome(bp: Blueprint) -> None:
    task = next(
        t
        for t in engine.stage_tasks(bp, journey(), "installation_onboarding", now=T0)
        if t.item_id.endswith("inspect_approve_installation")
    )
    with pytest.raises(JourneyError, match="evidence missing: grid_connection_id") as missing:
        task.complete(at=T0, by="u", outcome="approved", evidence={"inspection_report": "r"})
    assert missing.value.field == "evidence"
    with pytest.raises(JourneyError, match="not asked for: colour"):
        task.complete(
            at=T0,
            by="u",
            outcome="approved",
            evidence={"inspection_report": "r", "grid_connection_id": "g", "colour": "red"},
        )
    with pytest.raises(JourneyError, match="outcome required") as no_outcome:
        task.complete(at=T0, by="u", evidence={"inspection_report": "r", "grid_connection_id": "g"})
    assert no_outcome.value.field == "outcome"
    finished = task.complete(
        at=T0, by="u", outcome="approved", evidence={"inspection_report": "r", "grid_connection_id": "g"}
    )
    with pytest.raises(JourneyError, match="already completed"):
        finished.complete(at=T0, by="u", outcome="approved", evidence=finished.evidence)


def test_sla_states_follow_the_timeline(bp: Blueprint) -> None:
    stage = bp.stages[bp.stage_index("installation_preparation")]  # 14-56 days, warn at 80 %
    assert engine.sla_status(stage, T0, T0 + timedelta(days=10)).state is engine.SlaState.OK
    warn = engine.sla_status(stage, T0, T0 + timedelta(days=45))
    assert warn.state is engine.SlaState.WARNING
    assert warn.warn_at == T0 + timedelta(days=56 * 0.8)
    breached = engine.sla_status(stage, T0, T0 + timedelta(days=57))
    assert breached.state is engine.SlaState.BREACHED
    assert breached.due_at == T0 + timedelta(days=56)
    assert engine.sla_status(bp.stages[0], T0, T0).state is engine.SlaState.NONE


def test_tracker_go_live_sums_remaining_windows(bp: Blueprint) -> None:
    j = journey("installation_preparation")
    now = T0 + timedelta(days=4)
    tasks = engine.stage_tasks(bp, j, "installation_preparation", now=T0)
    tracker = status_tracker(bp, j, tasks, now, RULES)
    # remaining: preparation 14-4=10 .. 56-4=52, onboarding 7..14, pre-qualification 7..28
    assert tracker.go_live.earliest_at == now + timedelta(days=24)
    assert tracker.go_live.latest_at == now + timedelta(days=94)
    assert tracker.go_live.uncertainty_days == 35.0
    assert tracker.waiting_on == ("aggregator", "installer")
    assert tracker.dso_queue_position is None
    # a DSO preliminary connection date later than the earliest date moves it
    dso = replace(
        tasks[0],
        service="dso_feasibility_indication",
        result={"queue_position": 5, "preliminary_connection_at": (now + timedelta(days=60)).isoformat()},
    )
    tracker = status_tracker(bp, j, [*tasks, dso], now, RULES)
    assert tracker.go_live.earliest_at == now + timedelta(days=60)
    assert tracker.dso_queue_position == 5
    assert "preliminary connection date" in tracker.go_live.basis
    live = status_tracker(bp, journey("usage", first_active_at=T0), [], now, RULES)
    assert live.go_live.basis == "live"


def test_kpis_from_journeys(bp: Blueprint) -> None:
    now = T0 + timedelta(days=100)
    js = [
        journey("usage", first_active_at=T0 + timedelta(days=50)),
        replace(journey("selection_request"), id="j2"),
        replace(journey("termination", status=JourneyStatus.TERMINATED, first_active_at=T0), id="j3"),
    ]
    visits = [
        StageVisit("j1", "selection_request", T0, T0 + timedelta(days=20)),  # over 14 days: breached
        StageVisit("j1", "usage", T0 + timedelta(days=50)),
        StageVisit("j2", "selection_request", T0 + timedelta(days=95)),
        StageVisit("j3", "usage", T0, T0 + timedelta(days=30)),
        StageVisit("j3", "termination", T0 + timedelta(days=30)),
    ]
    kpis = compute_kpis(
        bp, KpiInput(js, visits, ["technical_issues"], frozenset({"j1"}), frozenset({"j1"})), now, "usage"
    )
    funnel = {row["stage_id"]: row for row in kpis["funnel_by_stage"]["stages"]}
    assert funnel["selection_request"] == {"stage_id": "selection_request", "current": 1, "reached": 2}
    sla = {row["stage_id"]: row for row in kpis["time_in_stage_vs_sla"]}
    assert sla["selection_request"]["breached"] == 1
    assert sla["selection_request"]["breach_rate"] == 0.5
    assert kpis["onboarding_completion_rate"]["rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert kpis["first_week_activity_rate"] == {"active_in_first_week": 1, "live_for_a_week": 2, "rate": 0.5}
    assert kpis["pause_rate"]["rate"] == 0.5
    assert kpis["churn_rate"]["terminated"] == 1
    assert kpis["churn_reasons"] == {"technical_issues": 1}


def test_registry_knows_the_contract_and_refuses_double_registration(bp: Blueprint) -> None:
    registry = ServiceRegistry()
    assert set(CONTRACT_SERVICES) <= registry.known()
    registry.register("submit_bids", lambda ctx: ServiceOutcome.done())
    with pytest.raises(ValueError, match="already has a handler"):
        registry.register("submit_bids", lambda ctx: ServiceOutcome.done())
    registry.register("submit_bids", lambda ctx: ServiceOutcome.waiting("later"), replace=True)
    engine.validate_services(bp, registry.known())
    odd = bp.model_copy(
        update={
            "cells": (
                *bp.cells,
                bp.cells[1].model_copy(
                    update={"items": (bp.cells[1].items[0].model_copy(update={"service": "teleport_car"}),)}
                ),
            )
        }
    )
    with pytest.raises(engine.UnknownServiceError, match="teleport_car"):
        engine.validate_services(odd, registry.known())
