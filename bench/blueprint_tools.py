"""Blueprint tools: load+validate, export and render times for the shipped blueprint and a large synthetic one.

Prints one JSON line of figures (milliseconds, medians over repeats).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from v2g.blueprint import export_blueprint, load_blueprint, validate_blueprint
from v2g.blueprint.loader import blueprint_from_data, parse_yaml
from v2g.blueprint.render import render_csv, render_html, render_markdown

ROOT = Path(__file__).resolve().parents[1]
SWEDEN = ROOT / "blueprints" / "sweden-private-ev.yaml"


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def _synthetic(items_per_cell: int) -> dict[str, Any]:
    """The Swedish blueprint with every cell grown to ``items_per_cell`` items."""
    data: dict[str, Any] = parse_yaml(SWEDEN.read_text(encoding="utf-8"), str(SWEDEN))
    for cell in data["cells"]:
        first = cell["items"][0]
        extra = [
            {**first, "id": f"{cell['stage']}.{cell['lane']}.synthetic_{k}", "text": f"{first['text']} {k}"}
            for k in range(items_per_cell - len(cell["items"]))
        ]
        cell["items"] = cell["items"] + extra
    return data


def main() -> None:
    repeats = 15
    sweden = load_blueprint(SWEDEN)
    big_data = _synthetic(20)
    big = blueprint_from_data(big_data, "synthetic")
    figures = {
        "bench": "blueprint_tools",
        "items": len(sweden.items()),
        "load_validate_ms": _median_ms(lambda: load_blueprint(SWEDEN), repeats),
        "validate_only_ms": _median_ms(lambda: validate_blueprint(sweden), repeats),
        "export_json_ms": _median_ms(lambda: json.dumps(export_blueprint(sweden)), repeats),
        "render_html_ms": _median_ms(lambda: render_html(sweden), repeats),
        "render_md_ms": _median_ms(lambda: render_markdown(sweden), repeats),
        "render_csv_ms": _median_ms(lambda: render_csv(sweden), repeats),
        "html_bytes": len(render_html(sweden).encode()),
        "synthetic_items": len(big.items()),
        "synthetic_build_validate_ms": _median_ms(lambda: blueprint_from_data(big_data, "synthetic"), 5),
        "synthetic_render_html_ms": _median_ms(lambda: render_html(big), 5),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
