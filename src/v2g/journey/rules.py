"""Journey rules read from ``data/rules.yaml`` (numbers with their sources live there, not in code)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class RetentionOffer:
    """An offer made to an owner who wants to leave."""

    id: str
    text: str


@dataclass(frozen=True, slots=True)
class JourneyRules:
    """Configuration of the journey engine."""

    fuse_safety_margin: float
    min_charge_current_a: float
    dso_min_lead_days: int
    dso_max_lead_days: int
    dso_days_per_queue_position: int
    dso_conditional_ratio: float
    go_live_stage: str
    termination_stage: str
    pausable_stages: tuple[str, ...]
    steady_stages: tuple[str, ...]
    retention_offers: tuple[RetentionOffer, ...]
    exit_reasons: tuple[str, ...]


def _data(name: str) -> str:
    return resources.files("v2g.journey").joinpath("data", name).read_text(encoding="utf-8")


@cache
def load_rules() -> JourneyRules:
    """The shipped rules."""
    raw: dict[str, Any] = yaml.safe_load(_data("rules.yaml"))
    return JourneyRules(
        fuse_safety_margin=float(raw["fuse"]["safety_margin"]),
        min_charge_current_a=float(raw["fuse"]["min_charge_current_a"]),
        dso_min_lead_days=int(raw["dso"]["min_lead_days"]),
        dso_max_lead_days=int(raw["dso"]["max_lead_days"]),
        dso_days_per_queue_position=int(raw["dso"]["days_per_queue_position"]),
        dso_conditional_ratio=float(raw["dso"]["conditional_ratio"]),
        go_live_stage=str(raw["stages"]["go_live"]),
        termination_stage=str(raw["stages"]["termination"]),
        pausable_stages=tuple(raw["stages"]["pausable"]),
        steady_stages=tuple(raw["stages"].get("steady", ())),
        retention_offers=tuple(RetentionOffer(str(o["id"]), str(o["text"])) for o in raw["retention_offers"]),
        exit_reasons=tuple(str(r) for r in raw["exit_reasons"]),
    )


def load_json(name: str) -> dict[str, Any]:
    """A JSON data file shipped in ``v2g/journey/data``."""
    data: dict[str, Any] = json.loads(_data(name))
    return data
