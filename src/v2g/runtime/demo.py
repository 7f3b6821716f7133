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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from v2g.adapters.db.provisioning import provision_simulated
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.bootstrap import Platform
from v2g.fleet.model import PriceArea
from v2g.markets.rules import FCR_PRODUCTS, MarketRules, Product
from v2g.prequal.report import PrequalResult
from v2g.services.markets.bidding import record_prequal
from v2g.services.markets.groups import join_bidding_group, qualified_products
from v2g.services.prequal.runner import CentralLoop, run_prequal
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
    plug_in: bool = True,
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
            creds, ocpp_url, protocol, meter_interval_s=meter_interval_s, clock=platform.clock.now, plug_in=plug_in
        )
    return DemoFleet(runs)


@dataclass(frozen=True, slots=True)
class GroupUnit:
    """An EV that may join its BSP's bidding group (V2X charger and car)."""

    ev_id: str
    charger_id: str
    price_area: PriceArea


async def qualify_bidding_groups(
    platform: Platform,
    echo: Callable[[str], None],
    *,
    units: Sequence[GroupUnit] | None = None,
    unit_kw: float = 10.0,
    settle_s: float = 5.0,
    max_test_units: int | None = None,
) -> dict[str, int]:
    """Put the V2X EVs in the BSP's groups and run the FCR pre-qualification of each group.

    Without ``units`` the plugged-in V2X EVs join (after ``settle_s`` for the wallboxes to report).
    The test sequence runs on the group's twin; with ``max_test_units`` a larger group is tested on
    that many identical units and qualified for all of its units at the tested capacity per unit
    (a simplification of the twin: every unit is of the tested type).
    """
    settings = platform.settings
    if units is None:
        await asyncio.sleep(settle_s)  # let every wallbox report its plug-in first
        evs = await asyncio.to_thread(platform.fleet_state.plugged_in)
        units = [GroupUnit(ev.ev_id, ev.charger_id, ev.price_area) for ev in evs if ev.max_discharge_kw > 0]
    now = platform.clock.now()
    groups: dict[str, int] = {}
    with platform.market_tx() as store:
        for unit in units:
            group, _ = join_bidding_group(
                store,
                bsp_org_id=settings.bsp_org_id,
                price_area=unit.price_area,
                ev_id=unit.ev_id,
                charger_id=unit.charger_id,
                now=now,
            )
            groups[group.id] = groups.get(group.id, 0) + 1
    for group_id, n_units in sorted(groups.items()):
        with platform.market_tx() as store:
            done = qualified_products(store, group_id)
        tested = min(n_units, max_test_units) if max_test_units else n_units
        for product in FCR_PRODUCTS:
            if product in done:
                continue
            started_at = platform.clock.now()
            result = await asyncio.to_thread(
                prequal_on_twin, group_id, product, tested, unit_kw, started_at, platform.market_rules
            )
            with platform.market_tx() as store:
                record_prequal(store, result)
                if result.passed and tested < n_units:
                    per_unit_kw = result.qualified_capacity_kw / tested
                    store.set_prequalified(group_id, product, round(per_unit_kw * n_units / 1000.0, 3))
            verdict = "passed" if result.passed else "FAILED"
            scope = f"{tested} of {n_units} units tested" if tested < n_units else f"{n_units} units"
            echo(
                f"pre-qualification {product.value} of {group_id} ({scope}): {verdict}, "
                f"{result.qualified_capacity_kw * n_units / tested:.0f} kW qualified"
            )
    return groups


def prequal_on_twin(
    group_id: str,
    product: Product,
    units: int,
    unit_kw: float,
    started_at: datetime,
    rules: MarketRules,
    *,
    ramp_kw_per_s: float = 20.0,
    delay_s: float = 0.3,
    include_sine: bool = False,
    setpoint_interval_s: float = 0.0,
    battery_kwh: float = 64.0,
) -> PrequalResult:
    """The TSO's pre-qualification test programme of ``product`` on a twin of ``units`` identical units,
    answered by the central dispatcher every ``setpoint_interval_s`` (0: every logged sample)."""
    twin = build_twin_group(
        group_id,
        units=units,
        unit_kw=unit_kw,
        ramp_kw_per_s=ramp_kw_per_s,
        delay_s=delay_s,
        battery_kwh=battery_kwh,
        start_at=started_at,
    )
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
            include_sine=include_sine,
            loop=CentralLoop(setpoint_interval_s),
        )
    )
