"""The operator's view of the operating day: plan, bids, commitments, delivery, dispatch, alerts.

Read-only and pure over its inputs: the API (``/api/v1/operations``) and the CLI (``v2g ops
status``) gather the inputs through the ports and render the same :class:`OperationsStatus`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from v2g.markets.bids import Bid, BidStatus
from v2g.markets.commitments import Commitment
from v2g.markets.rules import Product
from v2g.services.planning.ports import PluggedEv, StoredPlan
from v2g.units import HOUR

DT_H = 0.25


@dataclass(frozen=True, slots=True)
class DispatchSnapshot:
    """The last frequency sample the dispatcher answered."""

    at: datetime
    f_hz: float
    required_kw: dict[str, float]
    delivered_kw: float
    evs: int
    lost: int


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """Delivery of one product in one hour (from verification)."""

    group_id: str
    product: str
    hour_start_at: datetime
    committed_mw: float
    delivered_ratio: float
    repayment_eur: Decimal


@dataclass
class OperationsStatus:
    """Everything the operator looks at, at one moment."""

    at: datetime
    plan: dict[str, Any] | None
    hours: list[dict[str, Any]]
    evs: list[dict[str, Any]]
    bids: list[dict[str, Any]]
    commitments: list[dict[str, Any]]
    delivery: list[dict[str, Any]]
    last_dispatch: dict[str, Any] | None
    chargers_offline: list[str]
    departures_at_risk: list[dict[str, Any]]
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        """A short, readable status for the console."""
        lines = [f"operations at {self.at.isoformat(timespec='seconds')}"]
        if self.plan is None:
            lines.append("  plan: none yet")
        else:
            p = self.plan
            lines.append(
                f"  plan {p['id']} ({p['trigger']}): {p['n_evs']} EVs from {p['start_at']} for {p['hours']} h, "
                f"{p['status']}, objective {p['objective_eur']:.2f} EUR"
            )
        n_sub = sum(1 for b in self.bids if b["status"] == BidStatus.SUBMITTED.value)
        n_acc = sum(1 for b in self.bids if b["status"] == BidStatus.ACCEPTED.value)
        lines.append(
            f"  bids: {len(self.bids)} ({n_sub} submitted, {n_acc} accepted); commitments {len(self.commitments)}"
        )
        if self.delivery:
            worst = min(self.delivery, key=lambda d: d["delivered_ratio"])
            lines.append(
                f"  delivery: {len(self.delivery)} product-hours verified, lowest ratio {worst['delivered_ratio']:.3f}"
            )
        if self.last_dispatch is not None:
            d = self.last_dispatch
            lines.append(f"  dispatch: {d['f_hz']:.3f} Hz at {d['at']}, {d['delivered_kw']:.1f} kW from {d['evs']} EVs")
        lines.append(
            f"  chargers offline: {len(self.chargers_offline)}; departures at risk: {len(self.departures_at_risk)}"
        )
        lines.extend(f"  job {j['name']}: {j['last_status'] or '-'}" for j in self.jobs)
        return lines


def operations_status(
    *,
    now: datetime,
    plan: StoredPlan | None,
    plugged: Sequence[PluggedEv],
    bids: Iterable[Bid],
    commitments: Iterable[Commitment],
    delivery: Iterable[DeliveryRow],
    offline_chargers: Sequence[str],
    last_dispatch: DispatchSnapshot | None,
    jobs: Sequence[dict[str, Any]] = (),
    window: timedelta = timedelta(hours=36),
) -> OperationsStatus:
    """Assemble the operator's view from the latest plan, the market records and the fleet state."""
    bids = [b for b in bids if now - window <= b.delivery_start_at < now + window]
    commitments = [c for c in commitments if c.end_at > now - window and c.start_at < now + window]
    committed: dict[tuple[str, datetime], float] = defaultdict(float)
    for c in commitments:
        at = c.start_at
        while at < c.end_at:
            committed[(c.product.value, at)] += c.mw
            at += HOUR
    offered: dict[tuple[str, datetime], float] = defaultdict(float)
    for b in bids:
        if b.status in (BidStatus.SUBMITTED, BidStatus.ACCEPTED):
            offered[(b.product.value, b.delivery_start_at)] += abs(b.volume_mw)
    plan_view: dict[str, Any] | None = None
    hours: list[dict[str, Any]] = []
    evs: list[dict[str, Any]] = []
    at_risk: list[dict[str, Any]] = []
    if plan is not None:
        body = plan.plan
        n_hours = plan.n_intervals // 4
        plan_view = {
            "id": plan.id,
            "created_at": plan.created_at.isoformat(),
            "start_at": plan.start_at.isoformat(),
            "hours": n_hours,
            "strategy": plan.strategy,
            "status": plan.status,
            "trigger": plan.trigger,
            "n_evs": plan.n_evs,
            "objective_eur": plan.objective_eur,
            "energy_cost_eur": body.get("energy_cost_eur"),
            "reserve_revenue_eur": body.get("reserve_revenue_eur"),
        }
        import_kwh = [0.0] * n_hours
        export_kwh = [0.0] * n_hours
        reserve_kw: dict[str, list[float]] = {p.value: [0.0] * n_hours for p in Product if p is not Product.MFRR}
        shortfall = {s["ev_id"]: s for s in body.get("shortfalls", [])}
        for ev in body.get("evs", []):
            p_kw = [x if x is not None else 0.0 for x in ev["p_kw"]]
            ev_hours = []
            for h in range(n_hours):
                quarter = p_kw[4 * h : 4 * h + 4]
                imp = sum(max(x, 0.0) for x in quarter) * DT_H
                exp = sum(max(-x, 0.0) for x in quarter) * DT_H
                import_kwh[h] += imp
                export_kwh[h] += exp
                res = {k: (v[h] if h < len(v) and v[h] is not None else 0.0) for k, v in ev["reserve_kw"].items()}
                for k, v in res.items():
                    reserve_kw.setdefault(k, [0.0] * n_hours)[h] += v
                ev_hours.append(
                    {"hour": h, "import_kwh": round(imp, 3), "export_kwh": round(exp, 3), "reserve_kw": res}
                )
            soc = [x for x in ev["soc_kwh"] if x is not None]
            evs.append(
                {
                    "ev_id": ev["id"],
                    "charger_id": ev["charger_id"],
                    "planned_final_soc_kwh": soc[-1] if soc else None,
                    "energy_cost_eur": ev["energy_cost_eur"],
                    "reserve_revenue_eur": ev["reserve_revenue_eur"],
                    "sources": body.get("sources", {}).get(ev["id"], {}),
                    "hours": ev_hours,
                }
            )
            if ev["id"] in shortfall:
                s = shortfall[ev["id"]]
                at_risk.append(
                    {
                        "ev_id": ev["id"],
                        "reason": s["reason"],
                        "target_soc_kwh": s["target_soc_kwh"],
                        "planned_soc_kwh": s["planned_soc_kwh"],
                    }
                )
        for h in range(n_hours):
            hour_at = plan.start_at + h * HOUR
            hours.append(
                {
                    "hour_start_at": hour_at.isoformat(),
                    "import_kwh": round(import_kwh[h], 3),
                    "export_kwh": round(export_kwh[h], 3),
                    "planned_reserve_kw": {k: round(v[h], 3) for k, v in reserve_kw.items()},
                    "offered_mw": {k: offered.get((k, hour_at), 0.0) for k in reserve_kw},
                    "committed_mw": {k: committed.get((k, hour_at), 0.0) for k in reserve_kw},
                }
            )
    # an EV that cannot reach its target even charging flat out from now is at risk whatever the plan says
    for ev in plugged:
        needs = ev.needs
        if (
            ev.soc_percent is None
            or needs is None
            or needs.departure_at is None
            or ev.ev_id in {a["ev_id"] for a in at_risk}
        ):
            continue
        target_pct = needs.target_soc_percent
        if target_pct is None:
            continue
        hours_left = max(0.0, (needs.departure_at - now) / timedelta(hours=1))
        reachable = ev.soc_percent / 100 * ev.battery_kwh + ev.max_charge_kw * hours_left * 0.92
        if reachable + 1e-6 < target_pct / 100 * ev.battery_kwh:
            at_risk.append(
                {
                    "ev_id": ev.ev_id,
                    "reason": f"needs {target_pct:.0f} % by {needs.departure_at.isoformat()}, reaches at most "
                    f"{100 * reachable / ev.battery_kwh:.0f} % at full power",
                    "target_soc_kwh": target_pct / 100 * ev.battery_kwh,
                    "planned_soc_kwh": reachable,
                }
            )
    return OperationsStatus(
        at=now,
        plan=plan_view,
        hours=hours,
        evs=evs,
        bids=[
            {
                "id": b.id,
                "group_id": b.group_id,
                "product": b.product.value,
                "delivery_start_at": b.delivery_start_at.isoformat(),
                "volume_mw": b.volume_mw,
                "price_eur_per_mw_h": str(b.price_eur_per_mw_h),
                "status": b.status.value,
                "auction": b.auction,
            }
            for b in sorted(bids, key=lambda b: (b.delivery_start_at, b.product.value, b.id))
        ],
        commitments=[
            {
                "id": c.id,
                "group_id": c.group_id,
                "product": c.product.value,
                "start_at": c.start_at.isoformat(),
                "end_at": c.end_at.isoformat(),
                "mw": c.mw,
                "price_eur_per_mw_h": str(c.price_eur_per_mw_h),
            }
            for c in sorted(commitments, key=lambda c: (c.start_at, c.product.value))
        ],
        delivery=[
            {
                "group_id": d.group_id,
                "product": d.product,
                "hour_start_at": d.hour_start_at.isoformat(),
                "committed_mw": d.committed_mw,
                "delivered_ratio": d.delivered_ratio if math.isfinite(d.delivered_ratio) else None,
                "repayment_eur": str(d.repayment_eur),
            }
            for d in delivery
        ],
        last_dispatch=None
        if last_dispatch is None
        else {
            "at": last_dispatch.at.isoformat(),
            "f_hz": last_dispatch.f_hz,
            "required_kw": last_dispatch.required_kw,
            "delivered_kw": last_dispatch.delivered_kw,
            "evs": last_dispatch.evs,
            "lost": last_dispatch.lost,
        },
        chargers_offline=sorted(offline_chargers),
        departures_at_risk=at_risk,
        jobs=list(jobs),
    )
