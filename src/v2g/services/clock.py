"""Where "now" comes from: every read of the time in the services goes through a :class:`Clock`."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from v2g.units import utc_now


class Clock(Protocol):
    """Where "now" comes from (a real clock, or a simulated one in the digital twin)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock (aware UTC)."""

    def now(self) -> datetime:
        return utc_now()
