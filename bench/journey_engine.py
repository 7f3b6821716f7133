"""Journey engine: sign-up and task-completion latency on SQLite (and PostgreSQL when
V2G_BENCH_DATABASE_URL names a server), gate evaluation and KPI computation on the product blueprint.

Prints one JSON line of figures (milliseconds, medians unless named otherwise).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from v2g.adapters.db.demo_seed import DEMO_GRID_AREAS
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.journey_repo import sql_unit_of_work
from v2g.adapters.db.migrate import upgrade
from v2g.blueprint import load_blueprint
from v2g.fleet.model import Charger, ChargerProtocol, Customer, Site, Vehicle
from v2g.journey import engine as journey_engine
from v2g.journey.kpis import KpiInput, compute_kpis
from v2g.journey.model import Journey, StageVisit
from v2g.services.actors.ports import SYSTEM
from v2g.services.journey.handlers import default_registry
from v2g.services.journey.service import JourneyService
from v2g.services.journey.values import SignUp

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINT = load_blueprint(ROOT / "blueprints" / "sweden-private-ev.yaml")
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at


def _signup(i: int) -> SignUp:
    cid = f"b{i:05d}"
    area = DEMO_GRID_AREAS[i % len(DEMO_GRID_AREAS)]
    site = Site(f"site-{cid}", cid, "Gatan 1", area.price_area, area.id, main_fuse_a=20, household_peak_kw=5.0)
    return SignUp(
        customer=Customer(cid, f"Owner {cid}", f"{cid}@example.se", START, "+46700000000"),
        site=site,
        vehicle=Vehicle(f"veh-{cid}", cid, "Volkswagen", "ID.4", 77.0, 11.0, 10.0, True, site.id),
        offer="v2g-basic",
        charger=Charger(f"CP-{cid}", site.id, "Wallbox", "Quasar 2", ChargerProtocol.OCPP201, 11.5, 11.5),
    )


def _db_figures(url: str, customers: int) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        for area in DEMO_GRID_AREAS:
            SqlFleetRepository(conn).add_grid_area(area)
    service = JourneyService(sql_unit_of_work(engine), Clock(), BLUEPRINT, default_registry())
    signups, completions = [], []
    for i in range(customers):
        started = time.perf_counter()
        view = service.sign_up(SYSTEM, _signup(i))
        signups.append((time.perf_counter() - started) * 1000)
        for task in [t for t in view.tasks if t.kind.value == "manual" and t.stage_id == view.journey.stage_id]:
            started = time.perf_counter()
            body = dict.fromkeys(task.evidence_required, "x")
            service.complete_task(SYSTEM, task.id, outcome=task.outcomes[0] if task.outcomes else None, evidence=body)
            completions.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    service.list_journeys(SYSTEM)
    list_ms = (time.perf_counter() - started) * 1000
    engine.dispose()
    return {
        "sign_up_ms": round(statistics.median(signups), 2),
        "sign_up_p95_ms": round(sorted(signups)[int(0.95 * (len(signups) - 1))], 2),
        "complete_task_ms": round(statistics.median(completions), 2),
        "complete_task_p95_ms": round(sorted(completions)[int(0.95 * (len(completions) - 1))], 2),
        "list_journeys_ms": round(list_ms, 2),
    }


def _pure_figures(journeys: int) -> dict[str, Any]:
    js, visits = [], []
    stages = [s.id for s in BLUEPRINT.stages]
    for i in range(journeys):
        stage = stages[i % len(stages)]
        j = Journey(f"j{i}", f"c{i}", BLUEPRINT.blueprint.id, stage, START, START, "v2g")
        js.append(j)
        for k, sid in enumerate(stages[: stages.index(stage) + 1]):
            visits.append(StageVisit(j.id, sid, START + timedelta(days=10 * k), START + timedelta(days=10 * k + 9)))
    started = time.perf_counter()
    compute_kpis(BLUEPRINT, KpiInput(js, visits, ["other"] * 10, frozenset(), frozenset()), START, "usage")
    kpi_ms = (time.perf_counter() - started) * 1000
    all_tasks = [t for s in stages for t in journey_engine.stage_tasks(BLUEPRINT, js[0], s, now=START)]
    repeats = 2000
    started = time.perf_counter()
    for _ in range(repeats):
        journey_engine.transition_unmet(BLUEPRINT, "installation_onboarding", "test_prequalification", all_tasks)
    gate_us = (time.perf_counter() - started) / repeats * 1e6
    return {
        "kpi_journeys": journeys,
        "kpi_ms": round(kpi_ms, 2),
        "gate_check_us": round(gate_us, 1),
        "tasks_per_journey": len(all_tasks),
    }


def main() -> None:
    customers = int(os.environ.get("V2G_BENCH_CUSTOMERS", "40"))
    figures: dict[str, Any] = {"bench": "journey_engine", "customers": customers}
    with tempfile.TemporaryDirectory() as tmp:
        figures["sqlite"] = _db_figures(f"sqlite:///{tmp}/bench.sqlite3", customers)
    admin_url = os.environ.get("V2G_BENCH_DATABASE_URL")
    if admin_url:
        name = f"v2g_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
            figures["postgresql"] = _db_figures(url, customers)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    figures.update(_pure_figures(10_000))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
