"""`v2g demo` journeys spread over every stage (idempotent), and `v2g journey list|show|advance`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.journey_support import PRODUCT_BLUEPRINT, TEST_BLUEPRINT, MovableClock
from v2g.adapters.db.demo_seed import seed_demo
from v2g.adapters.db.journey_repo import sql_unit_of_work
from v2g.blueprint import load_blueprint
from v2g.cli import app
from v2g.journey.model import JourneyStatus
from v2g.services.actors.ports import SYSTEM
from v2g.services.journey.demo import seed_demo_journeys
from v2g.services.journey.handlers import default_registry
from v2g.services.journey.service import JourneyService


def _seed(engine: Engine, blueprint_path: Path = TEST_BLUEPRINT) -> JourneyService:
    seed_demo(engine, customers=10)
    uow = sql_unit_of_work(engine)
    service = JourneyService(uow, MovableClock(), load_blueprint(blueprint_path), default_registry())
    ids = [f"cust-{i:03d}" for i in range(1, 11)]
    seed_demo_journeys(uow, service, ids)
    return service


pytestmark = pytest.mark.slow


def test_demo_journeys_cover_every_stage_and_reseeding_adds_nothing(engine: Engine) -> None:
    service = _seed(engine, PRODUCT_BLUEPRINT)
    journeys = service.list_journeys(SYSTEM)
    assert len(journeys) == 10
    # awareness has no tasks in either blueprint, so journeys pass it on their own
    assert {j.stage_id for j in journeys} == {s.id for s in service.blueprint.stages} - {"awareness_interest"}
    assert any(j.status is JourneyStatus.PAUSED for j in journeys)
    assert any(j.status is JourneyStatus.TERMINATED for j in journeys)
    before = [(j.id, j.version) for j in journeys]
    seed_demo_journeys(sql_unit_of_work(engine), service, [j.customer_id for j in journeys])
    assert [(j.id, j.version) for j in service.list_journeys(SYSTEM)] == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cli_list_show_advance(engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _seed(engine)
    monkeypatch.setenv("V2G_DATABASE_URL", db_url)
    monkeypatch.setenv("V2G_BLUEPRINT_PATH", str(TEST_BLUEPRINT))
    runner = CliRunner()
    listed = runner.invoke(app, ["journey", "list"])
    assert listed.exit_code == 0, listed.output
    assert "10 journeys" in listed.output
    assert "j-cust-005" in listed.output
    shown = runner.invoke(app, ["journey", "show", "j-cust-005"])
    assert shown.exit_code == 0, shown.output
    assert "Installation & onboarding" in shown.output
    refused = runner.invoke(app, ["journey", "advance", "j-cust-005"])
    assert refused.exit_code == 3
    assert "gate installation_approved_and_insured" in refused.output
    moved = runner.invoke(app, ["journey", "advance", "j-cust-002", "--to", "decision_contracting"])
    assert moved.exit_code == 0, moved.output
    assert "now at decision_contracting" in moved.output
    missing = runner.invoke(app, ["journey", "show", "j-nobody"])
    assert missing.exit_code == 1
