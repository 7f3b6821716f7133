"""A second blueprint is another YAML file: loaded, validated, rendered and exported without code changes."""

from __future__ import annotations

import shutil
from pathlib import Path

from v2g.blueprint import export_blueprint, load_blueprint
from v2g.blueprint.catalogue import load_catalogue
from v2g.blueprint.render import render_html
from v2g.config import BLUEPRINTS_DIR

FLEET = BLUEPRINTS_DIR / "sweden-fleet-depot.yaml"
SWEDEN = BLUEPRINTS_DIR / "sweden-private-ev.yaml"


def test_fleet_blueprint_differs_in_lanes() -> None:
    fleet = load_blueprint(FLEET)
    sweden = load_blueprint(SWEDEN)
    assert [s.id for s in fleet.stages] == [s.id for s in sweden.stages]
    fleet_lanes = {lane.id for lane in fleet.lanes}
    sweden_lanes = {lane.id for lane in sweden.lanes}
    assert fleet_lanes - sweden_lanes == {"back.fleet_manager"}
    assert {"front.insurance", "back.insurance", "front.tso"} <= sweden_lanes - fleet_lanes
    assert all(item.origin.value == "platform" for _, item in fleet.items())
    data = export_blueprint(fleet)
    assert {c["lane"] for c in data["cells"]} <= fleet_lanes
    assert 'data-lane="back.fleet_manager"' in render_html(fleet)


def test_catalogue_loads_the_shipped_folder() -> None:
    catalogue = load_catalogue(BLUEPRINTS_DIR)
    assert catalogue.problems == ()
    assert set(catalogue.entries) == {"sweden_private_ev", "sweden_fleet_depot"}
    assert catalogue.entries["sweden_fleet_depot"].path.name == "sweden-fleet-depot.yaml"


def test_catalogue_leaves_out_broken_and_duplicate_files(tmp_path: Path) -> None:
    shutil.copy(SWEDEN, tmp_path / "a.yaml")
    shutil.copy(SWEDEN, tmp_path / "b.yaml")  # same blueprint id
    (tmp_path / "c.yaml").write_text("blueprint: {id: broken}\n", encoding="utf-8")
    catalogue = load_catalogue(tmp_path)
    assert set(catalogue.entries) == {"sweden_private_ev"}
    lines = [str(p) for p in catalogue.problems]
    assert any("b.yaml: sweden_private_ev: blueprint id already used by a.yaml" in line for line in lines)
    assert any("c.yaml" in line and "is required" in line for line in lines)
    assert load_catalogue(tmp_path / "absent").problems[0].message == "no such folder"
