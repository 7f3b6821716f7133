"""Render a blueprint as a standalone HTML swimlane page, as Markdown or as CSV.

The HTML follows the layout of a service blueprint figure: stages as columns with their timeline,
lanes as rows grouped into the customer's rows, the frontstage, the line of visibility, the
backstage and the process insights at the bottom. It is one file with inline CSS and no external
assets, readable on a laptop screen and printable (landscape) through its print stylesheet.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import jinja2

from v2g.blueprint.model import AllOf, Blueprint, Condition, Gate, Item, Lane, Layer, Stage, TaskCondition

FORMATS = ("html", "md", "csv")

_LAYER_TITLES = {
    Layer.CUSTOMER: "Customer",
    Layer.FRONTSTAGE: "Frontstage",
    Layer.BACKSTAGE: "Backstage",
    Layer.INSIGHT: "Process insights",
}
_LINES = {
    Layer.FRONTSTAGE: "line of interaction",
    Layer.BACKSTAGE: "line of visibility",
    Layer.INSIGHT: "line of internal interaction",
}


@dataclass(frozen=True)
class _Group:
    layer: Layer
    title: str
    line_before: str | None
    lanes: tuple[Lane, ...]


def _groups(blueprint: Blueprint) -> list[_Group]:
    groups: list[_Group] = []
    for layer in Layer:
        lanes = tuple(lane for lane in blueprint.lanes if lane.layer is layer)
        if lanes:
            line = _LINES.get(layer) if groups else None
            groups.append(_Group(layer, _LAYER_TITLES[layer], line, lanes))
    return groups


def describe_condition(condition: Condition) -> str:
    """A condition as one line of text, e.g. ``a (approved) and (b or c)``."""
    if isinstance(condition, TaskCondition):
        return f"{condition.task} ({condition.outcome})" if condition.outcome else condition.task
    if isinstance(condition, AllOf):
        parts = [describe_condition(c) for c in condition.all]
        return parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"
    parts = [describe_condition(c) for c in condition.any]
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


def _detail(item: Item) -> str:
    if item.service:
        detail = f"service: {item.service}"
    elif item.evidence:
        detail = "evidence: " + ", ".join(name.replace("_", " ") for name in item.evidence)
    elif item.kpi:
        detail = f"KPI: {item.kpi}"
    else:
        detail = ""
    if item.outcomes:
        detail += (" · " if detail else "") + "outcomes: " + " / ".join(item.outcomes)
    return detail


def _cell_map(blueprint: Blueprint) -> dict[tuple[str, str], tuple[Item, ...]]:
    return {(cell.stage, cell.lane): cell.items for cell in blueprint.cells}


def _gates_by_stage(blueprint: Blueprint) -> dict[str, list[Gate]]:
    out: dict[str, list[Gate]] = {s.id: [] for s in blueprint.stages}
    for gate in blueprint.gates:
        out.setdefault(gate.stage, []).append(gate)
    return out


def _sla(stage: Stage) -> str:
    return f"{stage.sla.min_days}-{stage.sla.max_days} days" if stage.sla else "no SLA"


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.from_string(resources.files("v2g.blueprint").joinpath("templates/swimlane.html.j2").read_text("utf-8"))


def render_html(blueprint: Blueprint, stage_counts: Mapping[str, int] | None = None) -> str:
    """The standalone swimlane page; with ``stage_counts``, each stage header shows how many journeys are in it."""
    return _template().render(
        counts=stage_counts,
        bp=blueprint,
        groups=_groups(blueprint),
        cells=_cell_map(blueprint),
        gates=_gates_by_stage(blueprint),
        detail=_detail,
        describe=describe_condition,
        sla=_sla,
        n_items=len(blueprint.items()),
    )


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


_MODE_MARK = {"automated": "⚙", "manual": "✎", "informational": "·"}


def render_markdown(blueprint: Blueprint) -> str:
    """A Markdown document: stages, the swimlane table (lanes x stages) and the gates."""
    info = blueprint.blueprint
    cells = _cell_map(blueprint)
    out = [f"# {_md_escape(info.name)}", "", f"Source: {_md_escape(info.source)}", ""]
    if info.description:
        out += [_md_escape(info.description), ""]
    out += [
        "Modes: ⚙ automated (platform service), ✎ manual (an actor attaches evidence), · informational.",
        "",
        "## Stages",
        "",
        "| # | stage | timeline | SLA |",
        "| --- | --- | --- | --- |",
    ]
    for i, stage in enumerate(blueprint.stages, 1):
        out.append(f"| {i} | {_md_escape(stage.name)} (`{stage.id}`) | {_md_escape(stage.timeline)} | {_sla(stage)} |")
    if info.timeline_alignment:
        out += ["", f"Timeline alignment: {_md_escape(info.timeline_alignment)}"]
    out += ["", "## Blueprint", ""]
    out.append("| layer | lane | " + " | ".join(_md_escape(s.name) for s in blueprint.stages) + " |")
    out.append("| --- | --- | " + " | ".join("---" for _ in blueprint.stages) + " |")
    for group in _groups(blueprint):
        if group.line_before:
            out.append(f"| **{group.line_before}** | | " + " | ".join("" for _ in blueprint.stages) + " |")
        for lane in group.lanes:
            row = [group.title, _md_escape(lane.name)]
            for stage in blueprint.stages:
                items = cells.get((stage.id, lane.id), ())
                row.append("<br>".join(f"{_MODE_MARK[item.mode.value]} {_md_escape(item.text)}" for item in items))
            out.append("| " + " | ".join(row) + " |")
    if blueprint.gates:
        out += ["", "## Gates", "", "| gate | stage | on | requires | description |", "| --- | --- | --- | --- | --- |"]
        for gate in blueprint.gates:
            out.append(
                f"| `{gate.id}` | {gate.stage} | {gate.on} | {_md_escape(describe_condition(gate.requires))} "
                f"| {_md_escape(gate.description)} |"
            )
    return "\n".join(out) + "\n"


CSV_COLUMNS = (
    "stage",
    "lane",
    "layer",
    "actor",
    "item_id",
    "text",
    "mode",
    "service",
    "evidence",
    "outcomes",
    "kpi",
    "origin",
    "note",
)


def render_csv(blueprint: Blueprint) -> str:
    """One row per item (stage order, then lane order); list fields are joined with '; '."""
    lanes = {lane.id: lane for lane in blueprint.lanes}
    stage_pos = {s.id: i for i, s in enumerate(blueprint.stages)}
    lane_pos = {lane.id: i for i, lane in enumerate(blueprint.lanes)}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for cell in sorted(blueprint.cells, key=lambda c: (stage_pos.get(c.stage, 0), lane_pos.get(c.lane, 0))):
        lane = lanes.get(cell.lane)
        for item in cell.items:
            writer.writerow(
                (
                    cell.stage,
                    cell.lane,
                    lane.layer.value if lane else "",
                    (lane.actor or "") if lane else "",
                    item.id,
                    item.text,
                    item.mode.value,
                    item.service or "",
                    "; ".join(item.evidence),
                    "; ".join(item.outcomes),
                    item.kpi or "",
                    item.origin.value,
                    item.note,
                )
            )
    return buffer.getvalue()


def render(blueprint: Blueprint, fmt: str) -> str:
    """Render in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "html":
        return render_html(blueprint)
    if fmt == "md":
        return render_markdown(blueprint)
    if fmt == "csv":
        return render_csv(blueprint)
    msg = f"unknown format {fmt!r} (one of {', '.join(FORMATS)})"
    raise ValueError(msg)
