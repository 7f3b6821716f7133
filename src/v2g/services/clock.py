"""Where "now" comes from: every read of the time in the services goes through a :class:`Clock`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol

from v2g.units import ensure_utc, utc_now


class Clock(Protocol):
    """Where "now" comes from (a real clock, or a simulated one in the digital twin)."""

    def now(self) -> datetime: ...


class RuntimeClock(Clock, Protocol):
    """A clock the runtime can also wait on (real, accelerated or simulated time)."""

    async def sleep_until(self, at: datetime) -> None:
        """Return once ``now() >= at`` (at once if that is already so)."""
        ...


class SystemClock:
    """The real clock (aware UTC)."""

    def now(self) -> datetime:
        return utc_now()

    async def sleep_until(self, at: datetime) -> None:
        delay_s = (ensure_utc(at, field="at") - utc_now()).total_seconds()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
