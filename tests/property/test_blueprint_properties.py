"""Properties of validation and rendering over generated blueprints."""

from __future__ import annotations

import copy
import csv
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from v2g.blueprint import BlueprintError, iter_conditions, load_blueprint
from v2g.blueprint.loader import blueprint_from_data, parse_yaml
from v2g.blueprint.render import render_csv, render_html
from v2g.config import BLUEPRINTS_DIR

SWEDEN_PATH = BLUEPRINTS_DIR / "sweden-private-ev.yaml"
SWEDEN_DATA: dict[str, Any] = parse_yaml(SWEDEN_PATH.read_text(encoding="utf-8"), "sweden")
SWEDEN = load_blueprint(SWEDEN_PATH)
GATED = sorted({c.task for g in SWEDEN.gates for c in iter_conditions(g.requires)})


@settings(max_examples=30, deadline=None)
@given(st.sets(st.sampled_from(GATED), min_size=1))
def test_removing_gated_items_flags_exactly_the_gates_that_name_them(removed: set[str]) -> None:
    data = copy.deepcopy(SWEDEN_DATA)
    for cell in data["cells"]:
        cell["items"] = [i for i in cell["items"] if i["id"] not in removed]
    data["cells"] = [c for c in data["cells"] if c["items"]]
    expected = {
        (g.id, c.task) for g in SWEDEN.gates for c in iter_conditions(g.requires) if c.task in removed
    }  # fmt: skip
    with pytest.raises(BlueprintError) as caught:
        blueprint_from_data(data, "x.yaml")
    problems = caught.value.problems
    assert all(p.message.startswith("gate names unknown task") for p in problems)
    assert {(p.where, p.message.split("'")[1]) for p in problems} == expected


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=60).filter(
    lambda t: t.strip() != ""
)


@settings(max_examples=40, deadline=None)
@given(_TEXT)
def test_any_item_text_survives_csv_and_is_escaped_in_html(text: str) -> None:
    data = copy.deepcopy(SWEDEN_DATA)
    data["cells"][0]["items"][0]["text"] = text
    blueprint = blueprint_from_data(data, "x.yaml")
    item_id = data["cells"][0]["items"][0]["id"]
    rows = {r["item_id"]: r for r in csv.DictReader(io.StringIO(render_csv(blueprint)))}
    assert rows[item_id]["text"] == text.strip()
    html = render_html(blueprint)
    assert f'title="{item_id}">{escape(text.strip())}' in html  # the text, escaped, as the card's content
    assert "<script" not in html
