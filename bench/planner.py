"""Fleet planner benchmark: one JSON line per fleet size.

    python bench/planner.py [--evs 100 1000 10000 100000] [--grid typical|congested] [--compare-monolithic]

Fleets are generated from the reference data beside the repository (``../shared/data``, or
``V2G_SHARED_DATA``): ElaadNL home-charging statistics, V2G-capable EV specs, SE3 day-ahead prices
and Svk Mimer FCR prices of the same hour. Wall time includes the model build.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from datetime import UTC, datetime
from pathlib import Path

from v2g.adapters.feeds.mimer import read_fcr_hourly
from v2g.adapters.feeds.prices import read_day_ahead_hourly
from v2g.planning import PlannerOptions, Strategy, check_schedule, plan
from v2g.planning.planner import solve_monolithic
from v2g.planning.synthetic import generate_problem, load_behaviour

DATA = Path(os.environ.get("V2G_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round((own + children) / 1024.0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evs", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--grid", choices=["typical", "congested"], default="typical")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--day", default="2023-03-15")
    parser.add_argument("--compare-monolithic", action="store_true", help="also solve 1,000 EVs as one LP")
    parser.add_argument("--no-check", action="store_true", help="skip check_schedule on the result")
    args = parser.parse_args()
    behaviour, day_ahead, fcr = (
        load_behaviour(DATA),
        read_day_ahead_hourly(DATA / "prices" / "se_dayahead_hourly_2016_2023.csv"),
        read_fcr_hourly(DATA / "ancillary" / "svk_mimer_fcr_hourly_2022-01_2025-06.csv"),
    )
    day = datetime.fromisoformat(args.day).replace(tzinfo=UTC)
    for n in args.evs:
        problem = generate_problem(n, behaviour, day_ahead, fcr, day=day, grid=args.grid, seed=0)
        started = time.perf_counter()
        result = plan(problem, Strategy.V2G_RESERVES, PlannerOptions(workers=args.workers, keep_state=False))
        wall = time.perf_counter() - started
        methods: dict[str, int] = {}
        for a in result.area_stats:
            methods[a.method] = methods.get(a.method, 0) + 1
        line = {
            "evs": n,
            "intervals": problem.n_intervals,
            "products": 4,
            "grid": args.grid,
            "wall_s": round(wall, 3),
            "peak_rss_mb": peak_rss_mb(),
            "objective_eur": round(result.lp_objective_eur, 6),
            "objective_after_bid_rules_eur": round(result.objective_eur, 6),
            "status": result.status,
            "area_methods": methods,
            "bids": len(result.bids),
        }
        if not args.no_check:
            line["violations"] = len(check_schedule(problem, result))
        print(json.dumps(line), flush=True)
    if args.compare_monolithic:
        problem = generate_problem(1000, behaviour, day_ahead, fcr, day=day, grid=args.grid, seed=0)
        started = time.perf_counter()
        decomposed = plan(problem, Strategy.V2G_RESERVES, PlannerOptions(workers=args.workers, keep_state=False))
        wall_dec = time.perf_counter() - started
        started = time.perf_counter()
        mono, status = solve_monolithic(problem)
        wall_mono = time.perf_counter() - started
        area_sum = sum(a.objective_eur for a in decomposed.area_stats)
        print(
            json.dumps(
                {
                    "comparison": "monolithic-vs-decomposed",
                    "evs": 1000,
                    "grid": args.grid,
                    "monolithic_objective_eur": mono,
                    "monolithic_status": status,
                    "monolithic_wall_s": round(wall_mono, 3),
                    "decomposed_objective_eur": decomposed.lp_objective_eur,
                    "sum_of_area_optima_eur": area_sum,
                    "decomposed_wall_s": round(wall_dec, 3),
                    "relative_gap": abs(mono - decomposed.lp_objective_eur) / max(1.0, abs(mono)),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
