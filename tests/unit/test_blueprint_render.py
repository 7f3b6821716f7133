"""HTML, Markdown and CSV renderings of the shipped blueprints."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

import pytest

from v2g.blueprint import load_blueprint
from v2g.blueprint.model import Blueprint
from v2g.blueprint.render import CSV_COLUMNS, render, render_csv, render_html, render_markdown
from v2g.config import BLUEPRINTS_DIR


@pytest.fixture(scope="module")
def sweden() -> Blueprint:
    return load_blueprint(BLUEPRINTS_DIR / "sweden-private-ev.yaml")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.stage_headers: list[str] = []
        self.external: list[str] = []
        self.li_classes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "th" and a.get("data-stage"):
            self.stage_headers.append(str(a["data-stage"]))
        if tag in ("link", "script", "img") or (tag == "a" and str(a.get("href", "")).startswith("http")):
            self.external.append(tag)
        if tag == "li":
            self.li_classes.append(str(a.get("class")))


def test_html_is_a_standalone_swimlane(sweden: Blueprint) -> None:
    html = render_html(sweden)
    parser = _Collect()
    parser.feed(html)
    assert parser.stage_headers == [s.id for s in sweden.stages]
    assert "line-of-visibility" in parser.ids
    assert {item.id for _, item in sweden.items()} <= parser.ids  # every item is on the page
    assert parser.external == []  # inline CSS, no external assets
    assert "@media print" in html
    assert html.count('class="group ') == 5  # customer, frontstage, backstage, insights, gates
    assert {"automated", "manual", "informational"} <= {c.split()[0] for c in parser.li_classes}
    # the line of visibility lies between the last frontstage lane and the first backstage lane
    assert html.index('data-lane="front.insurance"') < html.index("line-of-visibility")
    assert html.index("line-of-visibility") < html.index('data-lane="back.ev_supplier"')


def test_html_escapes_text(sweden: Blueprint) -> None:
    html = render_html(sweden)
    assert "Inspect &amp; approve V2G wall box installation" in html
    assert "Grid operator&#39;s customer portal" in html


def test_markdown_has_every_stage_and_lane(sweden: Blueprint) -> None:
    md = render_markdown(sweden)
    header = next(line for line in md.splitlines() if line.startswith("| layer | lane |"))
    assert header.count("|") == len(sweden.stages) + 3
    for lane in sweden.lanes:
        assert f"| {lane.name} |" in md
    assert "**line of visibility**" in md
    assert "## Gates" in md
    assert "⚙ Generate Box Site ID" in md


def test_csv_has_one_row_per_item(sweden: Blueprint) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(sweden))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(sweden.items())
    by_id = {r["item_id"]: r for r in rows}
    inspect = by_id["installation_onboarding.back.dso.inspect_approve_installation"]
    assert inspect["mode"] == "manual"
    assert inspect["outcomes"] == "approved; rejected"
    assert inspect["actor"] == "dso"
    assert inspect["layer"] == "backstage"
    assert by_id["selection_request.touchpoint.websites"]["origin"] == "seed"


def test_unknown_format(sweden: Blueprint) -> None:
    with pytest.raises(ValueError, match="unknown format 'pdf'"):
        render(sweden, "pdf")
