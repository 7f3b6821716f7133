"""KPIs of the blueprint's facts/metrics row, measured from journeys (pure computation)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from v2g.blueprint.model import Blueprint
from v2g.journey.model import Journey, JourneyStatus, StageVisit

KPI_IDS = (
    "funnel_by_stage",
    "time_in_stage_vs_sla",
    "onboarding_completion_rate",
    "first_week_activity_rate",
    "pause_rate",
    "churn_rate",
    "churn_reasons",
)


@dataclass(frozen=True, slots=True)
class KpiInput:
    """What the KPIs are measured from."""

    journeys: Sequence[Journey]
    visits: Sequence[StageVisit]
    exit_reasons: Sequence[str]
    paused_journey_ids: frozenset[str]
    active_in_first_week: frozenset[str]


def compute_kpis(blueprint: Blueprint, data: KpiInput, now: datetime, go_live_stage: str) -> dict[str, Any]:
    """Every KPI this platform measures, keyed by the contract KPI id."""
    stage_ids = [s.id for s in blueprint.stages]
    total = len(data.journeys)
    funnel_now = Counter(j.stage_id for j in data.journeys)
    reached = Counter(v.stage_id for v in data.visits)
    funnel = [{"stage_id": sid, "current": funnel_now.get(sid, 0), "reached": reached.get(sid, 0)} for sid in stage_ids]

    sla_rows = []
    for stage in blueprint.stages:
        durations = [
            ((v.left_at or now) - v.entered_at).total_seconds() / 86400 for v in data.visits if v.stage_id == stage.id
        ]
        max_days = stage.sla.max_days if stage.sla else None
        breached = sum(1 for d in durations if max_days is not None and d > max_days)
        sla_rows.append(
            {
                "stage_id": stage.id,
                "visits": len(durations),
                "mean_days": round(sum(durations) / len(durations), 2) if durations else None,
                "max_days_sla": max_days,
                "breached": breached,
                "breach_rate": round(breached / len(durations), 4) if durations and max_days is not None else None,
            }
        )

    live_idx = stage_ids.index(go_live_stage) if go_live_stage in stage_ids else len(stage_ids)
    onboarded = {v.journey_id for v in data.visits if v.stage_id in stage_ids[live_idx : live_idx + 1]}
    terminated = [j for j in data.journeys if j.status in (JourneyStatus.TERMINATING, JourneyStatus.TERMINATED)]
    week_eligible = [
        j for j in data.journeys if j.first_active_at is not None and now - j.first_active_at >= timedelta(days=7)
    ]

    def rate(n: int, d: int) -> float | None:
        return round(n / d, 4) if d else None

    return {
        "funnel_by_stage": {"journeys": total, "stages": funnel},
        "time_in_stage_vs_sla": sla_rows,
        "onboarding_completion_rate": {
            "onboarded": len(onboarded),
            "journeys": total,
            "rate": rate(len(onboarded), total),
        },
        "first_week_activity_rate": {
            "active_in_first_week": sum(1 for j in week_eligible if j.id in data.active_in_first_week),
            "live_for_a_week": len(week_eligible),
            "rate": rate(sum(1 for j in week_eligible if j.id in data.active_in_first_week), len(week_eligible)),
        },
        "pause_rate": {
            "ever_paused": len(data.paused_journey_ids),
            "onboarded": len(onboarded),
            "currently_paused": sum(1 for j in data.journeys if j.status is JourneyStatus.PAUSED),
            "rate": rate(len(data.paused_journey_ids), len(onboarded)),
        },
        "churn_rate": {"terminated": len(terminated), "journeys": total, "rate": rate(len(terminated), total)},
        "churn_reasons": dict(Counter(data.exit_reasons).most_common()),
    }
