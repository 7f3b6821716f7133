"""`v2g twin run`: the platform's own jobs against twin households in simulated time."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from v2g.adapters.db.demo_seed import demo_households, seed_demo_households
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.migrate import upgrade
from v2g.adapters.db.operations_repo import SqlFleetState
from v2g.cli import app as cli_app
from v2g.cli.twin import run_twin
from v2g.sim.scenario import ScenarioError, TwinScenario, load_scenario, parse_scenario

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "twin-20-households.yaml"


@pytest.mark.slow
async def test_twenty_households_for_three_days(tmp_path: Path) -> None:
    scenario = load_scenario(EXAMPLE)
    assert (scenario.households, scenario.days) == (20, 3)
    figures = await run_twin(scenario, f"sqlite:///{tmp_path / 'twin.db'}")
    assert figures["households"] == 20
    assert figures["steps"] == 3 * 24 * 60
    assert figures["failed_jobs"] == []
    # every EV that left had what its owner asked for
    assert figures["departures"] >= 20
    assert figures["departures_missed"] == 0
    # the fleet charged and (V2G) discharged; the plans say which recorded prices they rest on
    assert figures["energy_in_kwh"] > figures["energy_out_kwh"] > 0
    assert "recorded 2025-" in figures["prices"]["day_ahead"]
    assert figures["plans"] >= 3 * 24  # at least one fresh plan an hour


def test_a_run_is_deterministic_and_reports_as_json(tmp_path: Path) -> None:
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text("households: 4\ndays: 1\nseed: 7\nfrequency: false\n", encoding="utf-8")
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}.json"
        result = CliRunner().invoke(cli_app, ["twin", "run", "--scenario", str(scenario_file), "--out", str(out)])
        assert result.exit_code == 0, result.output
        figures = json.loads(out.read_text(encoding="utf-8"))
        figures.pop("wall_s")
        outs.append(figures)
    assert outs[0] == outs[1]
    assert outs[0]["departures_missed"] == 0
    assert math.isfinite(outs[0]["energy_in_kwh"])


def test_scenario_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="households: 0 must be between"):
        parse_scenario({"households": 0})
    with pytest.raises(ScenarioError, match="colour: unknown field"):
        parse_scenario({"colour": "red"})
    with pytest.raises(ScenarioError, match=r"start: .* must be on a clock hour"):
        parse_scenario({"start": "2026-11-16T12:30:00Z"})
    with pytest.raises(ScenarioError, match="strategy"):
        TwinScenario(strategy="greedy")
    bad = tmp_path / "bad.yaml"
    bad.write_text("households: 3\nplug_in_probability: 2\n", encoding="utf-8")
    result = CliRunner().invoke(cli_app, ["twin", "run", "--scenario", str(bad)])
    assert result.exit_code == 2
    assert "plug_in_probability: 2" in result.output
    with pytest.raises(ScenarioError, match="evs_per_area: -1 must be between"):
        parse_scenario({"evs_per_area": -1})


def test_households_fill_generated_grid_areas_in_order(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'areas.db'}")
    upgrade(engine)
    seed_demo_households(engine, 7, evs_per_area=3)
    seed_demo_households(engine, 7, evs_per_area=3)  # idempotent
    rows = demo_households(engine)
    by_area: dict[str, int] = {}
    for row in rows:
        by_area[row["grid_area_id"]] = by_area.get(row["grid_area_id"], 0) + 1
    assert by_area == {"GA-SE3-TWIN-0001": 3, "GA-SE3-TWIN-0002": 3, "GA-SE3-TWIN-0003": 1}
    limits = {a.area_id: a.import_limit_kw for a in SqlFleetState(engine).area_limits(sorted(by_area))}
    assert limits == {"GA-SE3-TWIN-0001": 18.0, "GA-SE3-TWIN-0002": 18.0, "GA-SE3-TWIN-0003": 6.0}
