"""Ports of the planning cycle: what it reads about the fleet, where plans and preferences live."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from v2g.devices.events import ChargingNeeds
from v2g.fleet.model import ChargerProtocol, PriceArea


@dataclass(frozen=True, slots=True)
class PluggedEv:
    """An EV plugged into one of the platform's chargers, with everything known about it now."""

    ev_id: str
    customer_id: str
    charger_id: str
    site_id: str
    grid_area_id: str
    price_area: PriceArea
    battery_kwh: float
    ev_max_charge_kw: float
    ev_max_discharge_kw: float
    charger_max_charge_kw: float
    charger_max_discharge_kw: float
    protocol: ChargerProtocol
    discharge_supported: bool
    v2g_capable: bool
    fuse_limit_kw: float
    household_peak_kw: float
    online: bool
    soc_percent: float | None = None
    soc_measured_at: datetime | None = None
    needs: ChargingNeeds | None = None
    plugged_in_at: datetime | None = None

    @property
    def max_charge_kw(self) -> float:
        """What the EV and the charger both allow."""
        return min(self.ev_max_charge_kw, self.charger_max_charge_kw)

    @property
    def max_discharge_kw(self) -> float:
        """What the EV and the charger both allow (0 where the charger cannot discharge)."""
        if not (self.discharge_supported and self.v2g_capable):
            return 0.0
        return min(self.ev_max_discharge_kw, self.charger_max_discharge_kw)


@dataclass(frozen=True, slots=True)
class AreaLimits:
    """A grid area's import and export limits as the DSO gave them (static record or a signal)."""

    area_id: str
    price_area: PriceArea
    import_limit_kw: float
    export_limit_kw: float


class FleetStateReader(Protocol):
    """The fleet as the device layer sees it."""

    def plugged_in(self) -> list[PluggedEv]:
        """Every EV now plugged into an active charger (online or not)."""
        ...

    def area_limits(self, area_ids: Sequence[str]) -> list[AreaLimits]:
        """The static limits of these grid areas."""
        ...


@dataclass(frozen=True, slots=True)
class StoredPlan:
    """A plan the planning cycle made and sent (its JSON form is the planner's file format)."""

    id: int
    created_at: datetime
    start_at: datetime
    n_intervals: int
    strategy: str
    status: str
    trigger: str
    n_evs: int
    objective_eur: float
    plan: dict[str, Any]


class PlanStore(Protocol):
    """Where the plans of the planning cycle are kept (the operator's view reads them)."""

    def save_plan(
        self,
        *,
        created_at: datetime,
        start_at: datetime,
        n_intervals: int,
        strategy: str,
        status: str,
        trigger: str,
        n_evs: int,
        objective_eur: float,
        plan: dict[str, Any],
    ) -> int: ...

    def latest_plan(self) -> StoredPlan | None: ...
