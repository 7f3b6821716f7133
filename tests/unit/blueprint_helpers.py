"""A small valid blueprint as data, for tests that break it one way at a time."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

BASE: dict[str, Any] = {
    "blueprint": {"id": "mini", "name": "Mini blueprint", "version": 1, "source": "test"},
    "actors": [
        {"id": "customer", "name": "Customer", "role": "owner"},
        {"id": "aggregator", "name": "Aggregator", "role": "aggregator_operator"},
        {"id": "dso", "name": "DSO", "role": "dso"},
    ],
    "stages": [
        {"id": "selection_request", "name": "Selection", "timeline": "1-2 weeks",
         "sla": {"min_days": 7, "max_days": 14}},
        {"id": "usage", "name": "Usage", "timeline": "daily"},
    ],
    "lanes": [
        {"id": "customer_action", "name": "Customer action", "layer": "customer", "actor": "customer"},
        {"id": "front.aggregator", "name": "Aggregator", "layer": "frontstage", "actor": "aggregator"},
        {"id": "back.dso", "name": "DSO", "layer": "backstage", "actor": "dso"},
        {"id": "insight.facts_metrics", "name": "Facts", "layer": "insight"},
    ],
    "cells": [
        {
            "stage": "selection_request",
            "lane": "customer_action",
            "items": [
                {"id": "selection_request.customer_action.request_quote", "text": "Request quote", "mode": "manual",
                 "evidence": ["quote_request"]},
            ],
        },
        {
            "stage": "selection_request",
            "lane": "back.dso",
            "items": [
                {"id": "selection_request.back.dso.feasibility", "text": "Evaluate feasibility", "mode": "automated",
                 "service": "dso_feasibility_indication", "outcomes": ["feasible", "not_feasible"]},
                {"id": "selection_request.back.dso.info", "text": "Grid info", "mode": "informational"},
            ],
        },
        {
            "stage": "usage",
            "lane": "insight.facts_metrics",
            "items": [
                {"id": "usage.insight.facts_metrics.churn", "text": "Churn", "kpi": "churn_rate"},
            ],
        },
    ],
    "gates": [
        {
            "id": "usage_entry",
            "stage": "usage",
            "on": "entry",
            "description": "Feasible and quoted.",
            "requires": {"all": [
                {"task": "selection_request.back.dso.feasibility", "outcome": "feasible"},
                {"task": "selection_request.customer_action.request_quote"},
            ]},
        },
    ],
}  # fmt: skip


def base() -> dict[str, Any]:
    """A fresh deep copy of the valid mini blueprint."""
    return copy.deepcopy(BASE)


def write(path: Path, data: Any) -> Path:
    """Write ``data`` as YAML to ``path``."""
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
