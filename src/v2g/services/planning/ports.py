"""Ports of the planning cycle: what it reads about the fleet, where plans and owner preferences live."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from v2g.devices.events import ChargingNeeds
from v2g.fleet.model import ChargerProtocol, PriceArea
from v2g.fleet.preferences import OwnerPreferences
from v2g.services.actors.ports import AuditEntry


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
    # a limit the charger applies on its own (OCPP NotifyChargingLimit); ``charger_max_charge_kw``
    # already includes it
    charging_limit_kw: float | None = None

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


class PreferencesConflictError(RuntimeError):
    """The stored preferences are not at the version the writer read (someone changed them in between)."""

    def __init__(self, ev_id: str, expected_version: int | None, stored_version: int | None) -> None:
        self.ev_id = ev_id
        self.expected_version = expected_version
        self.stored_version = stored_version
        sent = "none" if expected_version is None else str(expected_version)
        stored = "none stored" if stored_version is None else f"stored version {stored_version}"
        super().__init__(
            f"version: the preferences of EV {ev_id!r} changed in between ({stored}, request based on version "
            f"{sent}); read them again and repeat the change"
        )


@dataclass(frozen=True, slots=True)
class StoredPreferences:
    """An owner's preferences as stored, with the version a writer must name to change them."""

    preferences: OwnerPreferences
    version: int
    updated_at: datetime
    updated_by: str


class PreferencesStore(Protocol):
    """Where the owners' charging preferences are kept (one record per EV, optimistic locking)."""

    def get(self, ev_id: str) -> StoredPreferences | None:
        """The stored preferences of ``ev_id`` (None when the owner never set any)."""
        ...

    def get_many(self, ev_ids: Iterable[str]) -> dict[str, OwnerPreferences]:
        """The stored preferences of those EVs that have any (for the planning cycle)."""
        ...

    def save(self, prefs: OwnerPreferences, *, by: str, at: datetime, expected_version: int | None) -> int:
        """Store ``prefs``; returns the new version.

        ``expected_version`` is the version the change is based on (None: nothing stored yet). A
        mismatch raises :class:`PreferencesConflictError`; an unknown EV raises a not-found error.
        """
        ...


@dataclass(frozen=True, slots=True)
class EvOwnership:
    """Whose an EV is: the customer, and the customer's journey (where changes are audited)."""

    ev_id: str
    customer_id: str
    journey_id: str | None = None


class EvAccess(Protocol):
    """What deciding who may see an EV needs: its owner, and which organisations serve that owner."""

    def owner_of(self, ev_id: str) -> EvOwnership | None:
        """None for an unknown EV."""
        ...

    def serves(self, organisation_id: str, customer_id: str) -> bool: ...


class AuditLog(Protocol):
    """The append-only audit log."""

    def audit(self, entry: AuditEntry) -> None: ...
