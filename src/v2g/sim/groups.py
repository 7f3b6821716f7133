"""Simulated providing groups for pre-qualification runs and studies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from v2g.dispatch.pool import ReservePool
from v2g.markets.rules import Product
from v2g.prequal.groups import GroupUnit
from v2g.sim.twin import TwinFleet, TwinGateway, UnitSpec


@dataclass
class TwinGroup:
    """A group of identical simulated chargers with EVs, ready for a test run."""

    units: list[GroupUnit]
    pool: ReservePool
    fleet: TwinFleet
    gateway: TwinGateway


def build_twin_group(
    group_id: str,
    *,
    units: int,
    unit_kw: float = 10.0,
    charger_kw: float = 11.0,
    battery_kwh: float = 64.0,
    ramp_kw_per_s: float = 20.0,
    delay_s: float = 0.3,
    unit_type: str = "twin-dc-v2g-11kw",
    start_at: datetime,
) -> TwinGroup:
    """``units`` identical chargers at 50 % SoC, each offering ``unit_kw`` around a zero baseline."""
    if units <= 0:
        msg = f"units: {units} must be > 0"
        raise ValueError(msg)
    specs = [
        UnitSpec(
            charger_id=f"{group_id}-cp{i:04d}",
            ev_id=f"{group_id}-ev{i:04d}",
            battery_kwh=battery_kwh,
            soc_kwh=battery_kwh * 0.5,
            soc_min_kwh=battery_kwh * 0.1,
            p_max_kw=charger_kw,
            p_min_kw=-charger_kw,
            ramp_kw_per_s=ramp_kw_per_s,
            delay_s=delay_s,
        )
        for i in range(units)
    ]
    fleet = TwinFleet(specs, now=start_at)
    pool = ReservePool.build(
        [s.ev_id for s in specs],
        [s.charger_id for s in specs],
        {p: [0.0] * units for p in (Product.FCR_N, Product.FCR_D_UP, Product.FCR_D_DOWN)},
        [0.0] * units,
        [-charger_kw] * units,
        [charger_kw] * units,
    )
    group_units = [GroupUnit(s.charger_id, s.ev_id, unit_type, unit_kw) for s in specs]
    return TwinGroup(group_units, pool, fleet, TwinGateway(fleet))
