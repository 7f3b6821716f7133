"""Every kind of blueprint error is reported with the file, the id of what is wrong and why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.unit.blueprint_helpers import base, write
from v2g.blueprint import BlueprintError, load_blueprint, validate_blueprint

Mutation = Callable[[dict[str, Any]], None]


def _cell(data: dict[str, Any], stage: str, lane: str) -> dict[str, Any]:
    return next(c for c in data["cells"] if c["stage"] == stage and c["lane"] == lane)


def _item(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    return next(i for c in data["cells"] for i in c["items"] if i["id"] == item_id)


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _add_item(stage: str, lane: str, item: dict[str, Any]) -> Mutation:
    return lambda data: _cell(data, stage, lane)["items"].append(item)


def _patch_item(item_id: str, **fields: Any) -> Mutation:
    return lambda data: _item(data, item_id).update(fields)


def _gate_requires(requires: dict[str, Any]) -> Mutation:
    return _set(["gates", 0, "requires"], requires)


QUOTE = "selection_request.customer_action.request_quote"
FEAS = "selection_request.back.dso.feasibility"

CASES: list[tuple[str, Mutation, str, str]] = [
    ("unknown actor", _set(["lanes", 1, "actor"], "ghost"), "front.aggregator", "unknown actor 'ghost'"),
    (
        "unknown stage",
        lambda d: d["cells"].append({"stage": "ghost", "lane": "customer_action", "items": [
            {"id": "ghost.customer_action.x", "text": "X"}]}),
        "cell ghost x customer_action",
        "unknown stage 'ghost'",
    ),
    (
        "unknown lane",
        lambda d: d["cells"].append({"stage": "usage", "lane": "back.ghost", "items": [
            {"id": "usage.back.ghost.x", "text": "X"}]}),
        "cell usage x back.ghost",
        "unknown lane 'back.ghost'",
    ),
    (
        "duplicate item id",
        _add_item("selection_request", "customer_action", {"id": QUOTE, "text": "Again"}),
        QUOTE,
        "duplicate item id",
    ),
    ("duplicate stage id", _set(["stages", 1, "id"], "selection_request"), "selection_request", "duplicate stage id"),
    ("duplicate lane id", _set(["lanes", 2, "id"], "front.aggregator"), "front.aggregator", "duplicate lane id"),
    ("empty text", _patch_item(QUOTE, text="   "), QUOTE, "text: must not be empty"),
    ("gate unknown task", _gate_requires({"task": "usage.back.dso.ghost"}), "usage_entry",
     "gate names unknown task 'usage.back.dso.ghost'"),
    ("gate unknown stage", _set(["gates", 0, "stage"], "ghost"), "usage_entry", "gate names unknown stage 'ghost'"),
    ("gate outcome not allowed", _gate_requires({"task": FEAS, "outcome": "maybe"}), "usage_entry",
     "gate requires outcome 'maybe'"),
    ("gate informational task", _gate_requires({"task": "selection_request.back.dso.info"}), "usage_entry",
     "informational item that never becomes a task"),
    ("gate bad on", _set(["gates", 0, "on"], "during"), "usage_entry", "on: Input should be 'entry' or 'exit'"),
    (
        "item id not matching its cell",
        _add_item("selection_request", "customer_action", {"id": "usage.customer_action.x", "text": "X"}),
        "usage.customer_action.x",
        "item id must be 'selection_request.customer_action.<slug>'",
    ),
    ("stage without timeline", _set(["stages", 1, "timeline"], " "), "usage", "stage has no timeline"),
    ("stage timeline missing", lambda d: d["stages"][1].pop("timeline"), "usage", "timeline: is required"),
    ("automated without service", _patch_item(FEAS, service=None), FEAS, "automated item needs 'service'"),
    ("manual without evidence", _patch_item(QUOTE, evidence=[]), QUOTE, "manual item needs at least one 'evidence'"),
    ("evidence not a name", _patch_item(QUOTE, evidence=["Quote request"]), QUOTE,
     "evidence 'Quote request' is not a snake_case name"),
    ("evidence repeated", _patch_item(QUOTE, evidence=["quote", "quote"]), QUOTE, "evidence repeats a name"),
    ("service on manual item", _patch_item(QUOTE, service="submit_bids"), QUOTE, "only automated items name a service"),
    ("unknown mode", _patch_item(QUOTE, mode="magic"), QUOTE, "mode: Input should be"),
    ("unknown kpi", _patch_item("usage.insight.facts_metrics.churn", kpi="happiness"),
     "usage.insight.facts_metrics.churn", "unknown kpi 'happiness'"),
    ("kpi outside facts", _patch_item(QUOTE, kpi="churn_rate"), QUOTE, "only facts/metrics items name a kpi"),
    ("insight item with a task", _patch_item("usage.insight.facts_metrics.churn", mode="manual", evidence=["x"]),
     "usage.insight.facts_metrics.churn", "insight items are informational"),
    ("platform item without note", _patch_item(QUOTE, origin="platform"), QUOTE, "need a 'note'"),
    ("unknown field", _patch_item(QUOTE, colour="red"), QUOTE, "colour: unknown field"),
    ("bad identifier", _set(["stages", 1, "id"], "Usage Stage"), "Usage Stage",
     "id: 'Usage Stage' is not a lower-case"),
    ("lane layer mismatch", _set(["lanes", 1, "layer"], "backstage"), "front.aggregator",
     "lane id starts with 'front.' but its layer is backstage"),
    ("lane id names another actor", _set(["lanes", 2, "actor"], "aggregator"), "back.dso",
     "lane id names actor 'dso' but its actor is 'aggregator'"),
    ("action lane without actor", _set(["lanes", 1, "actor"], None), "front.aggregator", "needs an 'actor'"),
    ("unknown insight row", _set(["lanes", 3, "id"], "insight.gossip"), "insight.gossip", "unknown insight row"),
    (
        "duplicate cell",
        lambda d: d["cells"].append({"stage": "usage", "lane": "insight.facts_metrics", "items": [
            {"id": "usage.insight.facts_metrics.other", "text": "Other"}]}),
        "cell usage x insight.facts_metrics",
        "the same stage and lane appear in two cells",
    ),
    ("empty cell", _set(["cells", 0, "items"], []), "cell selection_request x customer_action",
     "items: must not be empty"),
    ("sla inverted", _set(["stages", 0, "sla"], {"min_days": 9, "max_days": 3}), "selection_request",
     "max_days 3 is below min_days 9"),
    ("duplicate role", _set(["actors", 2, "role"], "owner"), "owner", "duplicate actor role"),
]  # fmt: skip


def test_base_is_valid(tmp_path: Path) -> None:
    blueprint = load_blueprint(write(tmp_path / "mini.yaml", base()))
    assert validate_blueprint(blueprint) == []
    assert len(blueprint.items()) == 4


@pytest.mark.parametrize(("mutate", "where", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_error_names_file_id_and_problem(tmp_path: Path, mutate: Mutation, where: str, message: str) -> None:
    data = base()
    mutate(data)
    path = write(tmp_path / "broken.yaml", data)
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(path)
    lines = [str(p) for p in caught.value.problems]
    assert any(line.startswith(f"{path}: {where}: ") and message in line for line in lines), lines


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text("blueprint:\n  id: x\n  name: [unclosed\n", encoding="utf-8")
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(path)
    (problem,) = caught.value.problems
    assert problem.file == str(path)
    assert problem.where.startswith("line ")
    assert "invalid YAML" in problem.message


def test_duplicate_yaml_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("blueprint:\n  id: a\n  id: b\n", encoding="utf-8")
    with pytest.raises(BlueprintError, match=r"duplicate key 'id' \(line 3\)"):
        load_blueprint(path)


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(BlueprintError, match="no such file"):
        load_blueprint(tmp_path / "absent.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(BlueprintError, match="must hold a mapping"):
        load_blueprint(path)


def test_on_is_not_a_boolean(tmp_path: Path) -> None:
    """YAML 1.1 reads a bare `on:` key as True; the loader keeps it the word 'on'."""
    path = write(tmp_path / "mini.yaml", base())
    text = path.read_text(encoding="utf-8").replace("'on': entry", "on: entry")
    assert "\n  on: entry" in text
    assert "'on'" not in text
    path.write_text(text, encoding="utf-8")
    assert load_blueprint(path).gates[0].on == "entry"


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    data = base()
    data["lanes"][1]["actor"] = "ghost"
    data["gates"][0]["requires"] = {"task": "usage.back.dso.ghost"}
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(write(tmp_path / "two.yaml", data))
    messages = [p.message for p in caught.value.problems]
    assert "lane names unknown actor 'ghost'" in messages
    assert "gate names unknown task 'usage.back.dso.ghost'" in messages


def test_unknown_service_is_not_a_blueprint_error(tmp_path: Path) -> None:
    """Which services exist is the journey engine's registry's business."""
    data = base()
    _item(data, FEAS)["service"] = "a_service_of_another_deployment"
    assert load_blueprint(write(tmp_path / "svc.yaml", data)).item(FEAS).service == "a_service_of_another_deployment"


def test_lookup_helpers(tmp_path: Path) -> None:
    blueprint = load_blueprint(write(tmp_path / "mini.yaml", base()))
    assert blueprint.lane("back.dso").actor == "dso"
    assert blueprint.cell_of(FEAS).lane == "back.dso"
    assert [g.id for g in blueprint.gates_for("usage", "entry")] == ["usage_entry"]
    assert blueprint.gates_for("usage", "exit") == []
    with pytest.raises(KeyError):
        blueprint.lane("front.ghost")
    with pytest.raises(KeyError):
        blueprint.cell_of("ghost")
