"""One simulated operating day of the whole platform in process: N twin households (default 1,000),
planning cycles every 15 minutes with re-plans on change, the market calendar and the FCR auctions,
frequency dispatch at 1 s in committed hours on the recorded frequency day. Prints one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from v2g.cli.twin import run_twin
from v2g.sim.scenario import parse_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2026-11-16T12:00:00Z")
    parser.add_argument("--replan-check-s", type=int, default=60, help="re-plan check period (production: 60 s)")
    parser.add_argument(
        "--evs-per-area",
        type=int,
        default=50,
        help="households per grid area (a 10/0.4 kV area; 0: all in the demo's three areas, a worst case)",
    )
    args = parser.parse_args()
    scenario = parse_scenario(
        {
            "households": args.households,
            "days": args.days,
            "seed": args.seed,
            "start": args.start,
            "replan_check_s": args.replan_check_s,
            "evs_per_area": args.evs_per_area,
        }
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="v2g-bench-") as tmp:
        figures = asyncio.run(run_twin(scenario, f"sqlite:///{Path(tmp) / 'bench.db'}"))
    figures["evs_per_area"] = args.evs_per_area or "demo areas"
    figures["total_wall_s"] = round(time.perf_counter() - started, 2)
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    figures["python"] = sys.version.split()[0]
    figures.pop("failed_jobs", None)
    print(json.dumps({"bench": "operating_day", **figures}, default=str))


if __name__ == "__main__":
    main()
