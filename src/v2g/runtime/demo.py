"""`v2g demo`: simulated households on the real platform, at accelerated time.

Each demo household has a customer, a site, an EV and a simulated wallbox (80 % OCPP 2.1, 10 %
2.0.1, 10 % 1.6) that connects to the platform's CSMS over a real socket and reports meter values.
The V2X EVs join the BSP's bidding group of their price area, and the group runs the TSO's FCR
pre-qualification tests on the twin of its units (so the capacity it may bid is a measured one).
From then on everything is the platform's own operating day: planning cycles, market calendar,
frequency dispatch on a recorded day, housekeeping jobs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from v2g.adapters.db.provisioning import provision_simulated
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.bootstrap import Platform
from v2g.markets.rules import FCR_PRODUCTS, MarketRules, Product
from v2g.prequal.report import PrequalResult
from v2g.services.markets.bidding import record_prequal
from v2g.services.markets.groups import join_bidding_group, qualified_products
from v2g.services.prequal.runner import run_prequal
from v2g.sim.fleet import FleetRun, start_fleet
from v2g.sim.groups import build_twin_group

log = logging.getLogger("v2g.demo")

PROTOCOL_TAGS = {"2.1": "21", "2.0.1": "201", "1.6": "16"}


@dataclass
class DemoFleet:
    """The running simulated wallboxes, per protocol."""

    runs: dict[str, FleetRun]

    @property
    def connected(self) -> dict[str, int]:
        return {proto: len(run.chargers) for proto, run in self.runs.items()}

    @property
    def failed(self) -> int:
        return sum(len(run.failed) for run in self.runs.values())

    async def stop(self) -> None:
        await asyncio.gather(*(run.stop() for run in self.runs.values()), return_exceptions=True)


async def start_demo_fleet(
    platform: Platform,
    sites_by_protocol: dict[str, list[str]],
    ocpp_url: str,
    *,
    battery_by_site: dict[str, float] | None = None,
    meter_interval_s: float = 2.0,
) -> DemoFleet:
    """Provision each household's wallbox and connect it over its protocol, on the platform's clock."""
    runs: dict[str, FleetRun] = {}
    for protocol, site_ids in sites_by_protocol.items():
        if not site_ids:
            continue
        creds = await asyncio.to_thread(
            provision_simulated,
            platform.devices,
            len(site_ids),
            protocol,
            prefix="DEMO",
            site_ids=site_ids,
            hasher=Argon2Hasher(simulated=True),
            max_discharge_kw=0.0 if protocol == "1.6" else 11.0,
        )
        batteries = battery_by_site or {}
        creds = [replace(c, battery_kwh=batteries.get(site_ids[i % len(site_ids)])) for i, c in enumerate(creds)]
        runs[protocol] = await start_fleet(
            creds, ocpp_url, protocol, meter_interval_s=meter_interval_s, clock=platform.clock.now
        )
    return DemoFleet(runs)


async def qualify_bidding_groups(
    platform: Platform, echo: Callable[[str], None], *, unit_kw: float = 10.0, settle_s: float = 5.0
) -> None:
    """Put the plugged-in V2X EVs in the BSP's groups and run the FCR pre-qualification of each group."""
    settings = platform.settings
    await asyncio.sleep(settle_s)  # let every wallbox report its plug-in first
    now = platform.clock.now()
    evs = await asyncio.to_thread(platform.fleet_state.plugged_in)
    groups: dict[str, int] = {}
    with platform.market_tx() as store:
        for ev in evs:
            if ev.max_discharge_kw <= 0:
                continue
            group, _ = join_bidding_group(
                store,
                bsp_org_id=settings.bsp_org_id,
                price_area=ev.price_area,
                ev_id=ev.ev_id,
                charger_id=ev.charger_id,
                now=now,
            )
            groups[group.id] = groups.get(group.id, 0) + 1
    for group_id, units in sorted(groups.items()):
        with platform.market_tx() as store:
            done = qualified_products(store, group_id)
        for product in FCR_PRODUCTS:
            if product in done:
                continue
            result = await asyncio.to_thread(
                _prequal, group_id, product, units, unit_kw, platform.clock.now(), platform.market_rules
            )
            with platform.market_tx() as store:
                record_prequal(store, result)
            verdict = "passed" if result.passed else "FAILED"
            echo(
                f"pre-qualification {product.value} of {group_id} ({units} units): {verdict}, "
                f"{result.qualified_capacity_kw:.0f} kW qualified"
            )


def _prequal(
    group_id: str, product: Product, units: int, unit_kw: float, started_at: datetime, rules: MarketRules
) -> PrequalResult:
    twin = build_twin_group(group_id, units=units, unit_kw=unit_kw, start_at=started_at)
    return asyncio.run(
        run_prequal(
            product=product,
            group_id=group_id,
            units=twin.units,
            pool=twin.pool,
            gateway=twin.gateway,
            rig=twin.fleet,
            rules=rules,
            started_at=started_at,
            include_sine=False,
        )
    )
