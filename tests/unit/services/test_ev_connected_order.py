"""A charger's plug-in reports are stored in the order it sent them, however slow a write is."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any

from v2g.adapters.ocpp.session import CsmsSession


class SlowFirstStore:
    """The first write takes longer than the second (a loaded database)."""

    def __init__(self) -> None:
        self.writes: list[bool] = []
        self.state: bool | None = None
        self._lock = threading.Lock()

    def set_ev_connected(self, charger_id: str, connected: bool) -> None:
        if not self.writes:
            self.writes.append(connected)
            time.sleep(0.2)
        else:
            self.writes.append(connected)
        with self._lock:
            self.state = connected


async def test_a_late_available_never_overwrites_a_newer_occupied() -> None:
    store = SlowFirstStore()
    tasks: list[asyncio.Task[Any]] = []
    server = SimpleNamespace(store=store, spawn=lambda coro: tasks.append(asyncio.ensure_future(coro)))
    session: Any = SimpleNamespace(id="CP-1", server=server, _ev_connected_write=None)
    CsmsSession.record_ev_connected(session, False)  # "Available" at boot
    CsmsSession.record_ev_connected(session, True)  # "Occupied" when the EV is plugged in
    await asyncio.gather(*tasks)
    assert store.writes == [False, True]
    assert store.state is True
