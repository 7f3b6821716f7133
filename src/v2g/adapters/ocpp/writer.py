"""Group commit of telemetry: many chargers' messages, one database transaction, then all replies.

A MeterValues or TransactionEvent handler awaits :meth:`TelemetryWriter.submit`; it returns once
the batch that holds its rows is committed. A crash before the commit means no reply was sent, so
the charger re-sends (same message or, after reconnect, a new one): nothing is lost, and the
natural keys make sure nothing is counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from v2g.devices import MeterSample, TelemetryBatchResult, TransactionEventIn
from v2g.services.clock import Clock, SystemClock
from v2g.services.devices.ports import TelemetryStore

log = logging.getLogger("v2g.ocpp.writer")


@dataclass
class _Pending:
    samples: list[MeterSample] = field(default_factory=list)
    events: list[TransactionEventIn] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class TelemetryWriter:
    """Batches rows from many sessions; flushes every ``max_delay_s`` or at ``max_rows``."""

    def __init__(
        self, store: TelemetryStore, *, max_rows: int = 2000, max_delay_s: float = 0.05, clock: Clock | None = None
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.max_rows = max_rows
        self.max_delay_s = max_delay_s
        self._pending = _Pending()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.totals = {"samples_stored": 0, "samples_duplicate": 0, "events_stored": 0, "events_duplicate": 0}
        self.batches = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="telemetry-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._flush()

    async def submit(self, samples: Sequence[MeterSample], events: Sequence[TransactionEventIn] = ()) -> None:
        """Queue rows and wait until they are committed (raises if the commit failed)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.samples.extend(samples)
        self._pending.events.extend(events)
        self._pending.waiters.append(future)
        if len(self._pending.samples) + len(self._pending.events) >= self.max_rows or self._task is None:
            self._wakeup.set()
        if self._task is None:
            await self._flush()
        await future

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.max_delay_s)
            self._wakeup.clear()
            await self._flush()

    async def _flush(self) -> None:
        pending, self._pending = self._pending, _Pending()
        if not pending.waiters:
            return
        try:
            result: TelemetryBatchResult = await asyncio.to_thread(
                self.store.write_batch, pending.samples, pending.events, self.clock.now()
            )
        except Exception as exc:
            log.exception("telemetry batch of %d rows failed", len(pending.samples) + len(pending.events))
            for waiter in pending.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        self.batches += 1
        for key in self.totals:
            self.totals[key] += getattr(result, key)
        for waiter in pending.waiters:
            if not waiter.done():
                waiter.set_result(None)
