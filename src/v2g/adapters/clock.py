"""An accelerated real-time clock for the demo (the system clock is :class:`v2g.services.clock.SystemClock`)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from v2g.units import ensure_utc, utc_now


class AcceleratedClock:
    """Time that runs ``speed`` times faster than real time from ``start_at`` (``V2G_DEMO_SPEED``).

    ``now()`` is ``start_at + speed x (real time elapsed)``; waits are shortened by the same factor.
    """

    def __init__(self, speed: float, start_at: datetime | None = None) -> None:
        if not speed > 0:
            msg = f"speed: {speed} must be a positive factor"
            raise ValueError(msg)
        self.speed = float(speed)
        self.start_at = ensure_utc(start_at, field="start_at") if start_at is not None else utc_now()
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start_at + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    def real_seconds(self, simulated: timedelta) -> float:
        """How long ``simulated`` time takes in real seconds."""
        return simulated.total_seconds() / self.speed

    async def sleep_until(self, at: datetime) -> None:
        delay_s = (ensure_utc(at, field="at") - self.now()).total_seconds() / self.speed
        if delay_s > 0:
            await asyncio.sleep(delay_s)
