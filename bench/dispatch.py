"""Real-time dispatch benchmark: frequency sample -> every charger acknowledged its new setpoint.

    python bench/dispatch.py [--chargers 5000] [--samples 30] [--gateway ocpp|twin] [--replay-evs 1000]

``--gateway ocpp`` (default) runs the platform's OCPP CSMS and one simulated OCPP 2.1 wallbox per
charger over real WebSockets on 127.0.0.1 (one process, one event loop: CSMS and simulators share
the CPU). Each sample of the recorded Nordic frequency goes through the central dispatcher
(allocation across the EVs holding FCR-N and FCR-D up) and out as one setpoint per charger; the
latency is measured until the last acknowledgement. ``--gateway twin`` does the same through the
in-process digital-twin gateway (no sockets). ``--replay-evs N`` also replays the whole recorded
day for N EVs on the twin and reports delivered vs required energy.

Prints one JSON line per run. Credentials use cheap argon2 parameters for the simulated fleet only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from argon2 import PasswordHasher

from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.engine import make_engine
from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.migrate import upgrade
from v2g.adapters.feeds.frequency import FrequencyRecording
from v2g.adapters.ocpp.gateway import OcppChargerGateway
from v2g.adapters.ocpp.server import CsmsConfig, CsmsServer
from v2g.dispatch.pool import ReservePool
from v2g.fleet.model import ChargerProtocol, Customer, GridArea, PriceArea, Site
from v2g.markets.rules import Product, default_rules
from v2g.services.devices.installation import register_charger
from v2g.services.devices.ports import ChargerGateway
from v2g.services.dispatch.central import CentralDispatcher
from v2g.sim.battery import Battery, BatterySpec
from v2g.sim.ocpp_client import SimCharger
from v2g.sim.replay import make_fleet, replay
from v2g.sim.twin import TwinFleet, TwinGateway, UnitSpec
from v2g.sim.wallbox import Wallbox

DATA = Path(os.environ.get("V2G_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
FREQUENCY = DATA / "frequency" / "nordic_frequency_1s_2015-01-01_05.csv.gz"
RULES = default_rules()


class FleetHasher:
    """argon2id with minimal cost: only for the simulated bench fleet's generated passwords."""

    def __init__(self) -> None:
        self._h = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

    def hash(self, password: str) -> str:
        return str(self._h.hash(password))

    def verify(self, password_hash: str, password: str) -> bool:
        return bool(self._h.verify(password_hash, password))


def pool_for(charger_ids: list[str]) -> ReservePool:
    n = len(charger_ids)
    return ReservePool.build(
        [f"ev-{c}" for c in charger_ids],
        charger_ids,
        {Product.FCR_N: [6.0] * n, Product.FCR_D_UP: [2.0] * n},
        [2.0] * n,
        [-11.0] * n,
        [11.0] * n,
    )


async def measure(gateway: ChargerGateway, pool: ReservePool, samples: np.ndarray) -> dict[str, object]:
    n = len(pool)
    committed = {Product.FCR_N: 6.0 * n * 0.9, Product.FCR_D_UP: 2.0 * n * 0.9}
    valid_until = datetime.now(UTC) + timedelta(hours=1)  # the delivery hour: later samples update the setpoint
    dispatcher = CentralDispatcher(pool, committed, gateway, RULES, valid_until=valid_until)
    latencies, failures = [], 0
    for f in samples:
        start = time.perf_counter()
        result = await dispatcher.on_frequency(float(f))
        latencies.append(time.perf_counter() - start)
        failures += sum(1 for a in result.acks if a.status.value != "accepted")
    latencies.sort()
    return {
        "p50_s": round(statistics.median(latencies), 4),
        "p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 4),
        "max_s": round(latencies[-1], 4),
        "not_accepted": failures,
    }


async def run_ocpp(n: int, samples: np.ndarray, sim_procs: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        upgrade(engine)
        with engine.begin() as conn:
            repo = SqlFleetRepository(conn)
            repo.add_grid_area(GridArea("GA-B", "Bench", None, PriceArea.SE3, 1e6, 1e6, 1e6))
            repo.add_customer(Customer("cust-b", "Bench Owner", "bench@example.se", datetime(2026, 1, 1, tzinfo=UTC)))
            repo.add_site(Site("site-b", "cust-b", "Benchgatan 1", PriceArea.SE3, "GA-B", main_fuse_a=25))
        store = SqlDeviceStore(engine)
        hasher = FleetHasher()
        regs = [
            register_charger(
                store,
                hasher,
                site_id="site-b",
                vendor="V2G-Sim",
                model="BiDi-11",
                protocol=ChargerProtocol.OCPP21,
                max_charge_kw=11.0,
                max_discharge_kw=11.0,
                charger_id=f"CP-B{i:05d}",
                security_profile=1,
            )
            for i in range(n)
        ]
        config = CsmsConfig(heartbeat_interval_s=3600, response_timeout_s=30.0, profile_validity=timedelta(minutes=30))
        server = CsmsServer(store, config)
        port = await server.start("127.0.0.1", 0)
        creds = [(r.charger.id, r.password) for r in regs]
        url = f"ws://127.0.0.1:{port}/ocpp"
        began = time.perf_counter()
        procs = []
        try:
            # the simulated chargers run in their own processes, as real chargers are separate devices
            shares = [creds[k::sim_procs] for k in range(sim_procs)]
            for share in shares:
                spec = Path(tmp) / f"sims-{len(procs)}.json"
                spec.write_text(json.dumps({"url": url, "chargers": share}), encoding="utf-8")
                procs.append(await asyncio.create_subprocess_exec(sys.executable, __file__, "--run-sims", str(spec)))
            for _ in range(6000):  # at most 10 minutes
                if len(server.sessions) >= n and all(s.discharge_supported for s in server.sessions.values()):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(3.0)  # let the boot re-sync and the plug-ins finish
            setup_s = time.perf_counter() - began
            figures = await measure(OcppChargerGateway(server), pool_for([r.charger.id for r in regs]), samples)
            figures["setup_s"] = round(setup_s, 1)
            return figures
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                await proc.wait()
            await server.stop()
            engine.dispose()


async def run_sims(spec_path: Path) -> None:
    """Child process: connect the simulated wallboxes, plug an EV into each, then serve until killed."""
    spec = json.loads(await asyncio.to_thread(spec_path.read_text, encoding="utf-8"))
    sims = [
        SimCharger(
            cid, password, spec["url"], "2.1", Wallbox(cid, 11.0, 11.0), meter_interval_s=3600, response_timeout_s=60.0
        )
        for cid, password in spec["chargers"]
    ]
    departure = datetime.now(UTC) + timedelta(hours=8)
    for k in range(0, len(sims), 100):
        await asyncio.gather(*(s.start() for s in sims[k : k + 100]))
    for k in range(0, len(sims), 100):
        await asyncio.gather(
            *(
                s.plug_in(
                    Battery(BatterySpec(60.0, 11.0, 11.0, soc_min_kwh=6.0, name=s.charger_id), soc_kwh=30.0),
                    45.0,
                    departure,
                )
                for s in sims[k : k + 100]
            )
        )
    await asyncio.Event().wait()


async def run_twin(n: int, samples: np.ndarray) -> dict[str, object]:
    ids = [f"CP-T{i:05d}" for i in range(n)]
    specs = [UnitSpec(c, f"ev-{c}", 60.0, 30.0, 6.0, 11.0, -11.0) for c in ids]
    fleet = TwinFleet(specs, now=datetime.now(UTC))
    return await measure(TwinGateway(fleet), pool_for(ids), samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--gateway", choices=["ocpp", "twin"], default="ocpp")
    parser.add_argument("--replay-evs", type=int, default=0, help="also replay the recorded day for N EVs")
    parser.add_argument("--replay-hours", type=float, default=24.0)
    parser.add_argument("--sim-procs", type=int, default=1, help="processes running the simulated chargers")
    parser.add_argument("--run-sims", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_sims:
        asyncio.run(run_sims(args.run_sims))
        return
    f_hz = FrequencyRecording(FREQUENCY, None, 4 * 3600).window().f_hz
    # the samples with the largest deviations: every charger gets a new setpoint
    samples = f_hz[np.argsort(np.abs(f_hz - 50.0))[-args.samples :]]
    if args.gateway == "ocpp":
        figures = asyncio.run(run_ocpp(args.chargers, samples, args.sim_procs))
    else:
        figures = asyncio.run(run_twin(args.chargers, samples))
    line: dict[str, object] = {
        "bench": "dispatch",
        "gateway": "ocpp2.1-websocket-loopback" if args.gateway == "ocpp" else "twin-in-process",
        "mode": "central",
        "chargers": args.chargers,
        "samples": args.samples,
        **figures,
        "cpus": os.cpu_count(),
    }
    if args.replay_evs:
        recording = FrequencyRecording(FREQUENCY, None, round(args.replay_hours * 3600))
        window = recording.window()
        start, day, filled = window.start_at, window.f_hz, window.filled
        began = time.perf_counter()
        summary = asyncio.run(replay(recording, start, len(day), make_fleet(args.replay_evs, len(day)), RULES))
        line["replay"] = {
            "evs": args.replay_evs,
            "seconds": len(day),
            "filled_samples": filled,
            "required_mwh": round(summary.required_mwh, 4),
            "delivered_mwh": round(summary.delivered_mwh, 4),
            "delivered_vs_required": round(summary.delivered_ratio, 6),
            "departures": summary.departures,
            "charger_failures": summary.failures,
            "telemetry_messages": len(summary.telemetry),
            "telemetry_gaps": summary.telemetry_gaps,
            "telemetry_nem_active": sum(t.nem_active for t in summary.telemetry),
            "telemetry_aem_active": sum(t.aem_active for t in summary.telemetry),
            "missed_departure_targets": len(summary.missed_targets),
            "evs_below_min_soc": len(summary.below_min_soc),
            "wall_s": round(time.perf_counter() - began, 1),
        }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
