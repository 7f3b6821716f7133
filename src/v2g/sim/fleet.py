"""Run many simulated wallboxes in one event loop (``v2g sim chargers``, ``v2g demo``, the benchmark).

Each wallbox gets an EV session drawn from the shipped ElaadNL behaviour statistics, shifted so
that the EV is plugged in now; it connects, boots, sends its needs and then meter values every
``meter_interval_s`` while obeying whatever profiles the CSMS installs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from v2g.sim.ocpp_client import Faults, SimCharger, connect_with_retry
from v2g.sim.wallbox import EvBehaviour, Wallbox
from v2g.units import utc_now

log = logging.getLogger("v2g.sim")


@dataclass(frozen=True, slots=True)
class SimCredential:
    """Who a simulated wallbox is: its id and basic-auth password, and what it can do."""

    charger_id: str
    password: str
    max_charge_kw: float = 11.0
    max_discharge_kw: float = 11.0
    battery_kwh: float | None = None  # the EV's battery as the platform has it on record (None: from behaviour)


@dataclass
class FleetRun:
    """A running simulated fleet."""

    chargers: list[SimCharger] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "connected": sum(1 for c in self.chargers if c.connected.is_set()),
            "failed": len(self.failed),
            "profiles_received": sum(c.stats.profiles_received for c in self.chargers),
            "meter_values_sent": sum(c.stats.meter_values_sent for c in self.chargers),
            "discharging": sum(1 for c in self.chargers if c.wallbox.p_kw < -0.01),
            "fleet_p_kw": round(sum(c.wallbox.p_kw for c in self.chargers), 2),
        }

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(*(c.stop() for c in self.chargers), return_exceptions=True)


def raise_open_file_limit(wanted: int) -> int:
    """Raise the soft limit of open files (one socket per charger) as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


async def start_fleet(
    credentials: Sequence[SimCredential],
    url: str,
    protocol: str,
    *,
    seed: int = 0,
    meter_interval_s: float = 10.0,
    plug_in: bool = True,
    meter_loop: bool = True,
    validate: bool = True,
    concurrency: int = 200,
    faults: Faults | None = None,
    ssl_context: Any = None,
    clock: Callable[[], datetime] = utc_now,
) -> FleetRun:
    """Connect every wallbox (at most ``concurrency`` handshakes at a time) and start its loops."""
    raise_open_file_limit(len(credentials) + 256)
    behaviour = EvBehaviour(seed)
    run = FleetRun()
    gate = asyncio.Semaphore(concurrency)
    now = clock()

    async def one(cred: SimCredential) -> None:
        wallbox = Wallbox(cred.charger_id, cred.max_charge_kw, cred.max_discharge_kw)
        sim = SimCharger(
            cred.charger_id,
            cred.password,
            url,
            protocol,
            wallbox,
            faults=faults,
            meter_interval_s=meter_interval_s,
            validate=validate,
            ssl_context=ssl_context,
            clock=clock,
        )
        async with gate:
            try:
                await connect_with_retry(sim)
            except Exception as exc:
                run.failed.append((cred.charger_id, f"{type(exc).__name__}: {exc}"))
                return
        run.chargers.append(sim)
        if plug_in:
            session = behaviour.session(now)
            if cred.battery_kwh is not None:
                session = session.with_battery(cred.battery_kwh)
            stay = session.departure_at - session.arrival_at
            try:
                await sim.plug_in(session.battery(), session.target_soc_kwh, now + max(stay, timedelta(hours=1)))
            except Exception as exc:
                log.warning("charger[%s]: plug-in failed: %s", cred.charger_id, exc)
        if meter_loop:
            run.tasks.append(asyncio.create_task(sim.run_meter_loop()))

    await asyncio.gather(*(one(c) for c in credentials))
    return run
