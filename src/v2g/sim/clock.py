"""Simulated time for the digital twin: waiting moves time forward at once."""

from __future__ import annotations

import asyncio
from datetime import datetime

from v2g.units import ensure_utc


class SimulatedClock:
    """A clock that only moves when the runtime waits on it (discrete-event simulation)."""

    def __init__(self, start_at: datetime) -> None:
        self._now = ensure_utc(start_at, field="start_at")

    def now(self) -> datetime:
        return self._now

    def advance_to(self, at: datetime) -> None:
        """Move time forward to ``at`` (never backwards)."""
        at = ensure_utc(at, field="at")
        if at > self._now:
            self._now = at

    async def sleep_until(self, at: datetime) -> None:
        self.advance_to(at)
        await asyncio.sleep(0)  # let other tasks of the event loop run
