"""Power schedules: what the planner decides and the device layer sends to chargers.

Sign convention everywhere in the platform: ``p_kw > 0`` charges the EV (import from the grid),
``p_kw < 0`` discharges it (export to the grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from v2g.units import QUARTER, ensure_utc


@dataclass(frozen=True, slots=True)
class PowerSchedule:
    """Setpoints for one EV at one charger on a regular grid starting at ``start_at``."""

    ev_id: str
    start_at: datetime
    p_kw: tuple[float, ...]
    step: timedelta = QUARTER
    charger_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_at", ensure_utc(self.start_at, field=f"schedule[{self.ev_id}].start_at"))
        if self.step <= timedelta(0):
            msg = f"schedule[{self.ev_id}].step: must be positive"
            raise ValueError(msg)

    @property
    def end_at(self) -> datetime:
        """End of the last interval."""
        return self.start_at + self.step * len(self.p_kw)

    def at(self, when: datetime) -> float:
        """Setpoint in force at ``when`` (0 outside the schedule)."""
        offset = ensure_utc(when) - self.start_at
        index = int(offset // self.step)
        return self.p_kw[index] if 0 <= index < len(self.p_kw) else 0.0

    def next_change_after(self, when: datetime) -> datetime | None:
        """The next interval boundary after ``when`` (None past the schedule's end)."""
        offset = ensure_utc(when) - self.start_at
        if offset < timedelta(0):
            return self.start_at
        index = int(offset // self.step) + 1
        return self.start_at + self.step * index if index <= len(self.p_kw) else None
