"""A pure EV battery model for the digital twin: no sockets, no clock, no randomness.

Sign convention of the platform: ``p_kw > 0`` charges the EV (import at the grid side), ``p_kw < 0``
discharges it (export). Powers are measured **at the grid side of the charger** (what a meter in the
wallbox sees); the battery receives ``p_kw * charge_efficiency`` when charging and gives
``-p_kw / discharge_efficiency`` when discharging.

:meth:`Battery.step` applies a requested power for ``dt_h`` hours, honouring in this order: the
ramp rate from the previous power, the charge / discharge power limits, and the energy room up to
``soc_max_kwh`` / down to ``soc_min_kwh``. It returns what actually happened, so a caller can meter it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


class BatteryValueError(ValueError):
    """A battery was built or driven with an impossible value; the message names the field."""


def _require(condition: bool, obj: str, field_name: str, reason: str) -> None:
    if not condition:
        msg = f"{obj}.{field_name}: {reason}"
        raise BatteryValueError(msg)


@dataclass(frozen=True, slots=True)
class BatterySpec:
    """What a vehicle's battery and on-board power electronics allow (grid-side powers)."""

    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float = 0.92
    discharge_efficiency: float = 0.92
    ramp_kw_per_s: float = math.inf
    soc_min_kwh: float = 0.0
    soc_max_kwh: float | None = None
    name: str = "battery"

    def __post_init__(self) -> None:
        obj = f"battery_spec[{self.name}]"
        _require(self.capacity_kwh > 0, obj, "capacity_kwh", "must be > 0")
        _require(self.max_charge_kw >= 0, obj, "max_charge_kw", "must be >= 0")
        _require(self.max_discharge_kw >= 0, obj, "max_discharge_kw", "must be >= 0")
        for name in ("charge_efficiency", "discharge_efficiency"):
            value = getattr(self, name)
            _require(0 < value <= 1, obj, name, f"{value} must be in (0, 1]")
        _require(self.ramp_kw_per_s > 0, obj, "ramp_kw_per_s", "must be > 0")
        _require(0 <= self.soc_min_kwh < self.capacity_kwh, obj, "soc_min_kwh", "must be in [0, capacity_kwh)")
        upper = self.capacity_kwh if self.soc_max_kwh is None else self.soc_max_kwh
        _require(
            self.soc_min_kwh < upper <= self.capacity_kwh, obj, "soc_max_kwh", "must be in (soc_min_kwh, capacity]"
        )
        object.__setattr__(self, "soc_max_kwh", upper)

    @property
    def upper_kwh(self) -> float:
        """The highest energy the battery may hold."""
        return self.capacity_kwh if self.soc_max_kwh is None else self.soc_max_kwh

    @property
    def bidirectional(self) -> bool:
        """Whether the vehicle can discharge at all."""
        return self.max_discharge_kw > 0


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step did: the grid-side power actually applied and the energies it moved."""

    p_kw: float
    requested_p_kw: float
    dt_h: float
    soc_kwh: float
    import_kwh: float
    export_kwh: float
    limited_by: str

    @property
    def battery_delta_kwh(self) -> float:
        """Change of stored energy (after losses)."""
        return self.import_kwh - self.export_kwh


@dataclass(frozen=True, slots=True)
class Battery:
    """The state of one battery: energy stored and the power it ran at last."""

    spec: BatterySpec
    soc_kwh: float
    p_kw: float = 0.0

    def __post_init__(self) -> None:
        obj = f"battery[{self.spec.name}]"
        _require(
            -1e-9 <= self.soc_kwh <= self.spec.capacity_kwh + 1e-9,
            obj,
            "soc_kwh",
            f"{self.soc_kwh} outside [0, {self.spec.capacity_kwh}]",
        )

    @property
    def soc_fraction(self) -> float:
        """State of charge as a fraction of capacity."""
        return self.soc_kwh / self.spec.capacity_kwh

    @property
    def soc_percent(self) -> float:
        """State of charge in percent of capacity."""
        return 100.0 * self.soc_fraction

    def max_charge_now_kw(self, dt_h: float) -> float:
        """The highest grid-side charging power that fits the energy room within ``dt_h``."""
        room_kwh = max(0.0, self.spec.upper_kwh - self.soc_kwh)
        return min(self.spec.max_charge_kw, room_kwh / (self.spec.charge_efficiency * dt_h))

    def max_discharge_now_kw(self, dt_h: float) -> float:
        """The highest grid-side discharging power (positive number) that stays above ``soc_min_kwh``."""
        avail_kwh = max(0.0, self.soc_kwh - self.spec.soc_min_kwh)
        return min(self.spec.max_discharge_kw, avail_kwh * self.spec.discharge_efficiency / dt_h)

    def step(self, requested_p_kw: float, dt_h: float) -> tuple[Battery, StepResult]:
        """Apply ``requested_p_kw`` for ``dt_h`` hours; return the new state and what happened."""
        obj = f"battery[{self.spec.name}]"
        _require(dt_h > 0 and math.isfinite(dt_h), obj, "dt_h", f"{dt_h} must be a positive finite duration")
        _require(math.isfinite(requested_p_kw), obj, "requested_p_kw", f"{requested_p_kw} is not finite")
        limited_by = "none"
        p_kw = requested_p_kw
        max_delta = self.spec.ramp_kw_per_s * dt_h * 3600.0
        if abs(p_kw - self.p_kw) > max_delta:
            p_kw = self.p_kw + math.copysign(max_delta, p_kw - self.p_kw)
            limited_by = "ramp"
        if p_kw > 0:
            cap = self.max_charge_now_kw(dt_h)
            if p_kw > cap:
                limited_by = "max_charge_kw" if cap >= self.spec.max_charge_kw else "soc_max_kwh"
                p_kw = cap
        elif p_kw < 0:
            cap = self.max_discharge_now_kw(dt_h)
            if -p_kw > cap:
                limited_by = "max_discharge_kw" if cap >= self.spec.max_discharge_kw else "soc_min_kwh"
                p_kw = -cap
        import_kwh = max(p_kw, 0.0) * dt_h * self.spec.charge_efficiency
        export_kwh = max(-p_kw, 0.0) * dt_h / self.spec.discharge_efficiency
        soc = min(self.spec.capacity_kwh, max(0.0, self.soc_kwh + import_kwh - export_kwh))
        result = StepResult(
            p_kw=p_kw,
            requested_p_kw=requested_p_kw,
            dt_h=dt_h,
            soc_kwh=soc,
            import_kwh=max(p_kw, 0.0) * dt_h,
            export_kwh=max(-p_kw, 0.0) * dt_h,
            limited_by=limited_by,
        )
        return replace(self, soc_kwh=soc, p_kw=p_kw), result

    def energy_to_target_kwh(self, target_soc_kwh: float) -> float:
        """Grid-side energy needed to reach ``target_soc_kwh`` (0 if already there)."""
        return max(0.0, target_soc_kwh - self.soc_kwh) / self.spec.charge_efficiency

    def hours_to_target(self, target_soc_kwh: float) -> float:
        """Hours of full-power charging needed to reach ``target_soc_kwh``."""
        if self.spec.max_charge_kw == 0:
            return 0.0 if target_soc_kwh <= self.soc_kwh else math.inf
        return self.energy_to_target_kwh(target_soc_kwh) / self.spec.max_charge_kw


def safe_fallback_p_kw(battery: Battery, target_soc_kwh: float, hours_left: float, dt_h: float) -> float:
    """Power a charger should run on its own (platform lost): never discharge, and reach the target.

    Charges at the lowest constant power that still reaches ``target_soc_kwh`` by departure (full
    power once the deadline is tight), and never returns a negative value.
    """
    need_kwh = battery.energy_to_target_kwh(target_soc_kwh)
    if need_kwh <= 0:
        return 0.0
    return min(battery.max_charge_now_kw(dt_h), need_kwh / max(hours_left, dt_h))
