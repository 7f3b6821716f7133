"""Households for the crash tests: the demo's seeded customers, sites, EVs and wallboxes, and their simulators.

The platform runs in a child process on a shifted clock (:mod:`platform_main`); the simulated
wallboxes run in the test's event loop on the same shifted clock, connect over real sockets and
keep the profiles they were sent, so a test can compare what each charger holds with what the
platform has on record.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from tests.integration.crash.support import PLATFORM_MAIN, PlatformProcess
from v2g.adapters.db.demo_seed import demo_batteries, seed_demo, seed_demo_households
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.provisioning import provision_simulated
from v2g.adapters.db.tables.fleet import chargers, sites, vehicles
from v2g.adapters.db.tables.operations import operating_plans
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.fleet.model import PriceArea
from v2g.runtime.workers import free_port
from v2g.sim.battery import Battery, BatterySpec
from v2g.sim.ocpp_client import SimCharger
from v2g.sim.wallbox import SimProfile, Wallbox
from v2g.units import HOUR, QUARTER, floor_hour, parse_utc, utc_now

MINUTE_OF_HOUR = timedelta(minutes=20)  # where every test starts: 10 min before the next planning run


@dataclass(frozen=True)
class Household:
    """One seeded household: its wallbox's credentials, its EV and where it is connected."""

    charger_id: str
    password: str
    protocol: str
    ev_id: str
    battery_kwh: float
    max_discharge_kw: float
    price_area: PriceArea


def seed_households(engine: Engine, n: int) -> list[Household]:
    """The demo's households (OCPP 2.1, 2.0.1 and 1.6 wallboxes) with fresh credentials."""
    seed_demo(engine)
    by_protocol = seed_demo_households(engine, n)
    batteries = demo_batteries(engine)
    store = SqlDeviceStore(engine)
    out: list[Household] = []
    for protocol, site_ids in by_protocol.items():
        if not site_ids:
            continue
        max_discharge_kw = 0.0 if protocol == "1.6" else 11.0
        creds = provision_simulated(
            store,
            len(site_ids),
            protocol,
            prefix="DEMO",
            site_ids=site_ids,
            hasher=Argon2Hasher(simulated=True),
            max_discharge_kw=max_discharge_kw,
        )
        with engine.connect() as conn:
            rows = conn.execute(
                select(chargers.c.id, vehicles.c.id.label("ev_id"), vehicles.c.site_id, sites.c.price_area)
                .join(vehicles, vehicles.c.site_id == chargers.c.site_id)
                .join(sites, sites.c.id == chargers.c.site_id)
                .where(chargers.c.id.in_([c.charger_id for c in creds]))
            ).all()
        where = {r.id: r for r in rows}
        for cred in creds:
            row = where[cred.charger_id]
            out.append(
                Household(
                    cred.charger_id,
                    cred.password,
                    protocol,
                    row.ev_id,
                    batteries[row.site_id],
                    max_discharge_kw,
                    PriceArea(row.price_area),
                )
            )
    return out


class ShiftedClock:
    """Real time shifted so that the test starts at :data:`MINUTE_OF_HOUR` past an hour."""

    def __init__(self) -> None:
        wall = utc_now()
        self.offset = floor_hour(wall) + MINUTE_OF_HOUR - wall

    def now(self) -> datetime:
        return utc_now() + self.offset

    @property
    def hour_start_at(self) -> datetime:
        return floor_hour(self.now())


def platform_process(engine: Engine, clock: ShiftedClock, tmp_path: Path, **settings: str) -> PlatformProcess:
    """``v2g serve``'s platform on the test's database, free ports and the shifted clock."""
    ocpp_port, http_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    env = {
        **os.environ,
        "V2G_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "V2G_HOST": "127.0.0.1",
        "V2G_PORT": str(http_port),
        "V2G_OCPP_PORT": str(ocpp_port),
        "V2G_LOG_LEVEL": "WARNING",
        "CRASH_CLOCK_OFFSET_S": repr(clock.offset.total_seconds()),
        **{f"V2G_{k.upper()}": v for k, v in settings.items()},
    }
    return PlatformProcess([sys.executable, PLATFORM_MAIN], env, ocpp_port, tmp_path / "platform.log")


def simulators(homes: Sequence[Household], url: str, clock: Callable[[], datetime]) -> list[SimCharger]:
    return [
        SimCharger(
            h.charger_id,
            h.password,
            url,
            h.protocol,
            Wallbox(h.charger_id, 11.0, h.max_discharge_kw),
            clock=clock,
            response_timeout_s=30.0,
        )
        for h in homes
    ]


async def plug_in(sim: SimCharger, home: Household, now: datetime) -> None:
    """An EV at 40 % that wants 80 % in ten hours."""
    spec = BatterySpec(
        capacity_kwh=home.battery_kwh,
        max_charge_kw=11.0,
        max_discharge_kw=11.0,
        soc_min_kwh=0.1 * home.battery_kwh,
        name=home.ev_id,
    )
    await sim.plug_in(Battery(spec, soc_kwh=0.4 * home.battery_kwh), 0.8 * home.battery_kwh, now + 10 * HOUR)


def stored_plans(engine: Engine) -> list[dict[str, Any]]:
    """Every plan on record, oldest first, read whole (a half-written row fails here)."""
    out = []
    with engine.connect() as conn:
        for row in conn.execute(select(operating_plans).order_by(operating_plans.c.id)):
            body = json.loads(row.plan_json)
            assert row.n_evs == len(body["evs"]), f"plan {row.id}: {row.n_evs} EVs on the row, {len(body['evs'])} in it"
            assert parse_utc(body["start_at"]) == row.start_at, f"plan {row.id}: start differs from its row"
            assert all(len(e["p_kw"]) == row.n_intervals for e in body["evs"]), f"plan {row.id}: short EV plan"
            out.append({"id": row.id, **body})
    return out


def follows(profile: SimProfile, plan: dict[str, Any], charger_id: str, max_kw: float = 11.0) -> bool:
    """Whether a charger's plan profile is the stored plan's schedule for it (discharge may be clamped to 0)."""
    ev = next((e for e in plan["evs"] if e["charger_id"] == charger_id), None)
    if ev is None or not profile.periods:
        return False
    start_at = parse_utc(plan["start_at"])
    ends_s = [p.start_s for p in profile.periods[1:]]
    last_s = (profile.valid_to - profile.start_at).total_seconds() if profile.valid_to else profile.periods[-1].start_s
    for period, end_s in zip(profile.periods, [*ends_s, last_s], strict=True):
        # the middle of the period: offsets are whole seconds, so a period may start up to 1 s early
        at = profile.start_at + timedelta(seconds=(period.start_s + max(end_s, period.start_s)) / 2)
        k = int((at - start_at) / QUARTER)
        if not 0 <= k < len(ev["p_kw"]) or ev["p_kw"][k] is None:
            return False
        want = min(max(float(ev["p_kw"][k]), -max_kw), max_kw)
        got = period.setpoint_kw if period.setpoint_kw is not None else period.limit_kw
        if got is None or not math.isfinite(got):
            return False
        if abs(got - want) > 0.01 and not (want < 0 and abs(got) <= 0.01):
            return False
    return True


async def reconnect_all(sims: Sequence[SimCharger]) -> None:
    """The chargers notice the lost connection and come back (no new boot, as real chargers do)."""
    await asyncio.gather(*(sim.reconnect() for sim in sims))
