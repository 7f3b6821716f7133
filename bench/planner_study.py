"""Year-long strategy study on SE3 2023: daily day-ahead re-plans of a representative fleet.

    python bench/planner_study.py [--evs 50] [--days 365] [--every 1]

Each day a fleet is drawn from the home-charging statistics (a new draw per day), planned from
12:00 UTC for 24 h with each strategy on that day's SE3 prices and FCR prices of the same
hour (Svenska kraftnät Mimer results 2023: FCR-N, FCR-D up and FCR-D down). Prints one JSON
line per strategy with the yearly figures per EV (EUR, costs positive, income negative in
``net_cost``), including what the 95 % bid confidence costs.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from v2g.adapters.feeds.mimer import read_fcr_hourly
from v2g.adapters.feeds.prices import read_day_ahead_hourly
from v2g.planning import PlannerOptions, Strategy, check_schedule, plan
from v2g.planning.synthetic import generate_problem, load_behaviour

DATA = Path(os.environ.get("V2G_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evs", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--every", type=int, default=1, help="plan every n-th day and scale up")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    behaviour, day_ahead, fcr = (
        load_behaviour(DATA),
        read_day_ahead_hourly(DATA / "prices" / "se_dayahead_hourly_2016_2023.csv"),
        read_fcr_hourly(DATA / "ancillary" / "svk_mimer_fcr_hourly_2022-01_2025-06.csv"),
    )
    totals = {
        s: {"energy": 0.0, "reserve": 0.0, "wear": 0.0, "confidence": 0.0, "rounding": 0.0, "violations": 0}
        for s in Strategy
    }
    first = datetime(2023, 1, 1, tzinfo=UTC)
    days = [first + timedelta(days=d) for d in range(0, min(args.days, 364), args.every)]
    started = time.perf_counter()
    for i, day in enumerate(days):
        problem = generate_problem(args.evs, behaviour, day_ahead, fcr, day=day, grid="typical", seed=i)
        for strategy in Strategy:
            result = plan(problem, strategy, PlannerOptions(workers=args.workers, keep_state=False))
            t = totals[strategy]
            t["energy"] += result.energy_cost_eur
            t["reserve"] += result.reserve_revenue_eur
            t["wear"] += result.wear_cost_eur
            t["confidence"] += result.confidence_cost.cost_eur
            t["rounding"] += result.confidence_cost.rounding_cost_eur
            t["violations"] += len(check_schedule(problem, result))
    scale = 365.0 / len(days) / args.evs
    base = totals[Strategy.UNCONTROLLED]
    base_net = (base["energy"] + base["wear"] - base["reserve"]) * scale
    for strategy, t in totals.items():
        net = (t["energy"] + t["wear"] - t["reserve"]) * scale
        print(
            json.dumps(
                {
                    "study": "SE3-2023 daily re-plans",
                    "strategy": strategy.value,
                    "evs": args.evs,
                    "days_planned": len(days),
                    "energy_cost_eur_per_ev_year": round(t["energy"] * scale, 2),
                    "reserve_revenue_eur_per_ev_year": round(t["reserve"] * scale, 2),
                    "wear_cost_eur_per_ev_year": round(t["wear"] * scale, 2),
                    "net_cost_eur_per_ev_year": round(net, 2),
                    "value_vs_uncontrolled_eur_per_ev_year": round(base_net - net, 2),
                    "confidence_cost_eur_per_ev_year": round(t["confidence"] * scale, 2),
                    "bid_rounding_cost_eur_per_ev_year": round(t["rounding"] * scale, 2),
                    "violations": t["violations"],
                    "wall_s": round(time.perf_counter() - started, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
