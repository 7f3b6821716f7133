"""Domain objects of the fleet, as frozen values validated on construction.

Every check names the field and the reason, so an API or file loader can pass the message on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from v2g.units import ensure_utc


class PriceArea(StrEnum):
    """Swedish bidding zones."""

    SE1 = "SE1"
    SE2 = "SE2"
    SE3 = "SE3"
    SE4 = "SE4"


class ChargerProtocol(StrEnum):
    """OCPP versions a charger may speak."""

    OCPP16 = "ocpp1.6"
    OCPP201 = "ocpp2.0.1"
    OCPP21 = "ocpp2.1"


class FleetValueError(ValueError):
    """A fleet object was built with an impossible value; the message names the field."""


def _require(condition: bool, obj: str, field_name: str, reason: str) -> None:
    if not condition:
        msg = f"{obj}.{field_name}: {reason}"
        raise FleetValueError(msg)


@dataclass(frozen=True, slots=True)
class GridArea:
    """A DSO grid area (a secondary substation or feeder) whose limits couple the EVs behind it."""

    id: str
    name: str
    dso_org_id: str | None
    price_area: PriceArea
    import_limit_kw: float
    export_limit_kw: float
    hosting_capacity_kw: float
    connection_queue_length: int = 0

    def __post_init__(self) -> None:
        name = f"grid_area[{self.id}]"
        _require(bool(self.id), name, "id", "must not be empty")
        _require(self.import_limit_kw >= 0, name, "import_limit_kw", "must be >= 0")
        _require(self.export_limit_kw >= 0, name, "export_limit_kw", "must be >= 0")
        _require(self.hosting_capacity_kw >= 0, name, "hosting_capacity_kw", "must be >= 0")
        _require(self.connection_queue_length >= 0, name, "connection_queue_length", "must be >= 0")


@dataclass(frozen=True, slots=True)
class Customer:
    """A private EV owner."""

    id: str
    name: str
    email: str
    created_at: datetime
    phone: str | None = None

    def __post_init__(self) -> None:
        name = f"customer[{self.id}]"
        _require(bool(self.name.strip()), name, "name", "must not be empty")
        _require("@" in self.email, name, "email", f"{self.email!r} is not an e-mail address")
        object.__setattr__(self, "created_at", ensure_utc(self.created_at, field=f"{name}.created_at"))


@dataclass(frozen=True, slots=True)
class Site:
    """A customer's home connection point: price area, grid area, main fuse and what is behind it."""

    id: str
    customer_id: str
    address: str
    price_area: PriceArea
    grid_area_id: str
    main_fuse_a: int
    phases: int = 3
    voltage_v: float = 230.0
    household_peak_kw: float = 0.0
    pv_kw: float = 0.0
    has_bess: bool = False

    def __post_init__(self) -> None:
        name = f"site[{self.id}]"
        _require(self.main_fuse_a > 0, name, "main_fuse_a", "must be > 0")
        _require(self.phases in (1, 3), name, "phases", "must be 1 or 3")
        _require(self.voltage_v > 0, name, "voltage_v", "must be > 0")
        _require(self.household_peak_kw >= 0, name, "household_peak_kw", "must be >= 0")
        _require(self.pv_kw >= 0, name, "pv_kw", "must be >= 0")

    @property
    def fuse_limit_kw(self) -> float:
        """Apparent power the main fuse allows at unity power factor, all phases."""
        return self.main_fuse_a * self.voltage_v * self.phases / 1000.0


@dataclass(frozen=True, slots=True)
class Vehicle:
    """An EV: its battery and what it accepts at the plug."""

    id: str
    customer_id: str
    make: str
    model: str
    battery_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    v2g_capable: bool = True
    site_id: str | None = None

    def __post_init__(self) -> None:
        name = f"vehicle[{self.id}]"
        _require(self.battery_kwh > 0, name, "battery_kwh", "must be > 0")
        _require(self.max_charge_kw >= 0, name, "max_charge_kw", "must be >= 0")
        _require(self.max_discharge_kw >= 0, name, "max_discharge_kw", "must be >= 0")
        _require(
            self.v2g_capable or self.max_discharge_kw == 0,
            name,
            "max_discharge_kw",
            "must be 0 for a vehicle that is not V2G-capable",
        )


@dataclass(frozen=True, slots=True)
class Charger:
    """A (bidirectional) wallbox at a site."""

    id: str
    site_id: str
    vendor: str
    model: str
    protocol: ChargerProtocol
    max_charge_kw: float
    max_discharge_kw: float
    v2g_site_id: str | None = None
    active: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        name = f"charger[{self.id}]"
        _require(bool(self.id), name, "id", "must not be empty")
        _require(self.max_charge_kw >= 0, name, "max_charge_kw", "must be >= 0")
        _require(self.max_discharge_kw >= 0, name, "max_discharge_kw", "must be >= 0")

    @property
    def bidirectional(self) -> bool:
        """Whether the wallbox can discharge at all."""
        return self.max_discharge_kw > 0
