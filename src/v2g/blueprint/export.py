"""The JSON export: the contract other tools and checks rely on.

Exactly ``{"stages":[{"id","name","timeline"}],"lanes":[{"id","name","layer"}],
"cells":[{"stage","lane","items":[{"id","text","mode"}]}]}``, stages and lanes in blueprint order,
cells ordered by lane, then stage.
"""

from __future__ import annotations

from typing import Any

from v2g.blueprint.model import Blueprint


def export_blueprint(blueprint: Blueprint) -> dict[str, Any]:
    """The export contract as a JSON-ready dict."""
    stage_pos = {s.id: i for i, s in enumerate(blueprint.stages)}
    lane_pos = {lane.id: i for i, lane in enumerate(blueprint.lanes)}
    cells = sorted(blueprint.cells, key=lambda c: (lane_pos.get(c.lane, 1 << 30), stage_pos.get(c.stage, 1 << 30)))
    return {
        "stages": [{"id": s.id, "name": s.name, "timeline": s.timeline} for s in blueprint.stages],
        "lanes": [{"id": lane.id, "name": lane.name, "layer": lane.layer.value} for lane in blueprint.lanes],
        "cells": [
            {
                "stage": cell.stage,
                "lane": cell.lane,
                "items": [{"id": item.id, "text": item.text, "mode": item.mode.value} for item in cell.items],
            }
            for cell in cells
        ],
    }
