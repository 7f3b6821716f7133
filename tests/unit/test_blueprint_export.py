"""The export contract, and the shipped blueprint against the seed's Figure 4, cell by cell."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from v2g.blueprint import export_blueprint, load_blueprint
from v2g.blueprint.model import Blueprint, Mode, Origin
from v2g.config import BLUEPRINTS_DIR

SWEDEN = BLUEPRINTS_DIR / "sweden-private-ev.yaml"
STAGE_IDS = [
    "awareness_interest",
    "selection_request",
    "decision_contracting",
    "installation_preparation",
    "installation_onboarding",
    "test_prequalification",
    "usage",
    "engagement",
    "termination",
]
ACTORS = ["ev_supplier", "aggregator", "installer", "evse_supplier", "dso", "energy_supplier", "tso", "insurance"]
BACK_ACTORS = ["ev_supplier", "aggregator", "installer", "evse_supplier", "dso", "bsp", "brp", "energy_supplier", "tso"]
ROWS = ["synchronisation", "facts_metrics", "pitfalls", "ideas", "policies"]
SEED_LANES = {
    "CUSTOMER ACTION": "customer_action",
    "TOUCHPOINT": "touchpoint",
    "EV SUPPLIER": "ev_supplier",
    "TECHNICAL AGGREGATOR": "aggregator",
    "WALLBOX INSTALLER": "installer",
    "EVSE (CHARGER SUPPLIER)": "evse_supplier",
    "DSO": "dso",
    "ENERGY SUPPLIER": "energy_supplier",
    "TSO": "tso",
    "INSURANCE": "insurance",
    "BSP": "bsp",
    "BRP": "brp",
    "SYNCHRONISATION AREAS": "insight.synchronisation",
    "FACTS/METRICS": "insight.facts_metrics",
    "POTENTIAL PITFALLS": "insight.pitfalls",
    "IDEAS OPPORTUNITIES": "insight.ideas",
    "COMMON POLICIES": "insight.policies",
}


@pytest.fixture(scope="module")
def sweden() -> Blueprint:
    return load_blueprint(SWEDEN)


def _seed_table(seed_dir: Path) -> tuple[list[str], dict[tuple[str, str], str]]:
    """The seed's Figure 4 table: the timeline values and every non-empty cell's raw text."""
    (paper,) = sorted(seed_dir.glob("*.txt"))
    lines = paper.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TIMELINE\t"))
    timeline = [v for v in lines[start].split("\t")[1:] if v.strip()]
    stages_row = lines[start + 1].split("\t")
    assert stages_row[0] == "CUSTOMER JOURNEY"
    cells: dict[tuple[str, str], str] = {}
    layer = ""
    for line in lines[start + 2 :]:
        if "\t" not in line:
            break
        fields = line.split("\t")
        layer = fields[0] or layer
        lane = SEED_LANES[fields[1]]
        if layer == "FRONTSTAGE" and "." not in lane and lane not in ("customer_action", "touchpoint"):
            lane = f"front.{lane}"
        elif layer == "BACKSTAGE":
            lane = f"back.{lane}"
        for stage, raw in zip(STAGE_IDS, fields[2:11], strict=False):
            text = re.sub(r"<ul[^>]*>", "", raw).strip()
            if text:
                cells[(stage, lane)] = text
    return timeline, cells


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_export_shape_is_exactly_the_contract(sweden: Blueprint) -> None:
    data = export_blueprint(sweden)
    assert set(data) == {"stages", "lanes", "cells"}
    assert all(set(s) == {"id", "name", "timeline"} for s in data["stages"])
    assert all(set(lane) == {"id", "name", "layer"} for lane in data["lanes"])
    assert all(set(c) == {"stage", "lane", "items"} for c in data["cells"])
    assert all(set(i) == {"id", "text", "mode"} for c in data["cells"] for i in c["items"])
    assert {i["mode"] for c in data["cells"] for i in c["items"]} == {"automated", "manual", "informational"}
    assert json.loads(json.dumps(data)) == data


def test_export_ids_are_the_contract_ids(sweden: Blueprint) -> None:
    data = export_blueprint(sweden)
    assert [s["id"] for s in data["stages"]] == STAGE_IDS
    lanes = {lane["id"]: lane["layer"] for lane in data["lanes"]}
    expected = {"customer_action": "customer", "touchpoint": "customer"}
    expected |= {f"front.{a}": "frontstage" for a in ACTORS}
    expected |= {f"back.{a}": "backstage" for a in [*BACK_ACTORS, "insurance"]}
    expected |= {f"insight.{r}": "insight" for r in ROWS}
    assert lanes == expected
    # the line of visibility sits between the last frontstage and the first backstage lane
    layers = [lane["layer"] for lane in data["lanes"]]
    assert layers == sorted(layers, key=["customer", "frontstage", "backstage", "insight"].index)
    for cell in data["cells"]:
        for item in cell["items"]:
            assert item["id"].startswith(f"{cell['stage']}.{cell['lane']}.")
            assert re.fullmatch(r"[a-z0-9_]+", item["id"].removeprefix(f"{cell['stage']}.{cell['lane']}."))


def test_every_seed_cell_is_present_with_its_text(sweden: Blueprint, shared_data: Path) -> None:
    timeline, seed_cells = _seed_table(shared_data.parent / "seed")
    assert len(seed_cells) > 140  # the table was found and parsed (the figure has 149 non-empty cells)
    exported = {(c["stage"], c["lane"]): c["items"] for c in export_blueprint(sweden)["cells"]}
    seed_origin = {item.id for _, item in sweden.items() if item.origin is Origin.SEED}
    for key, raw in seed_cells.items():
        assert key in exported, f"seed cell {key} missing"
        seed_items = [i for i in exported[key] if i["id"] in seed_origin]
        # the seed runs the items together: their texts, in order, must be exactly the seed's cell
        assert _squash("".join(i["text"] for i in seed_items)) == _squash(raw), key
    # nothing invented: every cell with seed-origin items is a seed cell
    for key, items in exported.items():
        if any(i["id"] in seed_origin for i in items):
            assert key in seed_cells, f"{key} has seed items but the seed cell is empty"
    # the 8 timeline values all appear on the stages, and the decision is written down
    stage_timelines = [s.timeline.lower() for s in sweden.stages]
    for value in timeline:
        assert value.lower() in stage_timelines
    assert "8 values" in sweden.blueprint.timeline_alignment


def test_seed_items_are_split(sweden: Blueprint) -> None:
    texts = {item.text for _, item in sweden.items()}
    for expected in (
        "Learn about V2G",
        "Research opportunities and requirements",
        "Notify TSO",
        "Notify BSP",
        "Generate Box Site ID",
        "Verify connectivity with EV, grid, and backend systems",
        "BankID",
        "Energy tax and VAT",
        "TSO requirements",
    ):
        assert expected in texts
    assert not any(re.search(r"[a-z][A-Z]", t) and t != "BankID" for t in texts)


def test_modes_services_kpis_and_gates(sweden: Blueprint) -> None:
    items = {i.id: i for _, i in sweden.items()}
    assert items["installation_onboarding.back.dso.inspect_approve_installation"].outcomes == ("approved", "rejected")
    assert items["installation_onboarding.back.evse_supplier.generate_box_site_id"].service == "generate_box_site_id"
    services = {i.service for i in items.values() if i.mode is Mode.AUTOMATED}
    assert {"generate_box_site_id", "verify_connectivity", "create_bidding_group", "submit_bids"} <= services
    kpis = {i.kpi for i in items.values() if i.kpi}
    assert {"churn_rate", "contract_reading_time", "onboarding_completion_rate"} <= kpis
    platform = [i for i in items.values() if i.origin is Origin.PLATFORM]
    assert platform
    assert all(i.note for i in platform)
    gates = {(g.stage, g.on): g for g in sweden.gates}
    assert ("installation_onboarding", "exit") in gates
    assert ("usage", "entry") in gates
    assert sum(1 for s in sweden.stages if s.sla is None) == 2  # daily and n/a
