"""Grid frequency: the one reader of recorded frequency files, and a live UDP input (up to 10 Hz).

Both are :class:`~v2g.services.dispatch.ports.FrequencySource` values: ``async for sample in
source.samples()`` yields :class:`FrequencySample` values, ``step_s`` is the sampling step.

* :class:`FrequencyRecording` reads ``utc,f_hz`` (1 s, optionally gzip) from a start for a number of
  seconds, at once (:meth:`~FrequencyRecording.window`) or paced at ``speed`` times real time; blank
  or missing seconds hold the previous value and are counted.
* :class:`UdpFrequencyInput` listens on a UDP port for datagrams ``<ISO time>,<f_hz>`` or JSON
  ``{"at": ..., "f_hz": ...}``; faster than ``max_rate_hz`` is thinned, malformed datagrams and
  implausible values (outside 45-55 Hz) are counted with the reason, never raised into the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from v2g.adapters.feeds.prices import FeedError, shipped
from v2g.dispatch.pool import FloatArray
from v2g.services.clock import Clock
from v2g.services.dispatch.ports import FrequencySample, FrequencySource
from v2g.units import ensure_utc, parse_utc, utc_now

F_MIN_HZ, F_MAX_HZ = 45.0, 55.0
SECOND = timedelta(seconds=1)
SHIPPED_FREQUENCY = "nordic_frequency_1s_2015-01-01.csv.gz"

__all__ = ["FrequencyRecording", "FrequencySample", "FrequencySource", "FrequencyWindow", "UdpFrequencyInput"]


class FrequencyFileError(FeedError):
    """The frequency file is malformed; the message names the file, line and field."""


@dataclass(frozen=True, slots=True)
class FrequencyWindow:
    """A window of 1 s frequency samples read from a recording."""

    start_at: datetime
    f_hz: FloatArray
    filled: int  # blank or missing seconds that hold the previous value


@dataclass
class FrequencyRecording:
    """A recorded ``utc,f_hz`` series (1 s, plain or gzip), read from ``start_at`` for ``seconds``.

    Blank or missing seconds hold the previous value (counted in ``filled``). :meth:`window` reads it
    at once (studies, the twin); :meth:`samples` replays it at ``speed`` x real time (1 to 1000; 0 as
    fast as possible) as a :class:`~v2g.services.dispatch.ports.FrequencySource`.
    """

    path: Path
    start_at: datetime | None = None
    seconds: int | None = None
    speed: float = 0.0
    step_s: float = 1.0
    filled: int = 0

    def __post_init__(self) -> None:
        if self.speed != 0.0 and not 1.0 <= self.speed <= 1000.0:
            msg = f"speed: {self.speed} must be 0 (as fast as possible) or between 1 and 1000"
            raise FeedError(msg)
        if self.seconds is not None and self.seconds < 1:
            msg = f"seconds: {self.seconds} must be at least 1"
            raise FeedError(msg)
        if self.start_at is not None:
            self.start_at = ensure_utc(self.start_at, field="start_at")

    def _rows(self) -> Iterator[tuple[int, datetime, float | None]]:
        name = self.path.name
        opener = gzip.open if self.path.suffix == ".gz" else open
        with opener(self.path, "rt", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header or [h.strip().lstrip("\ufeff") for h in header[:2]] != ["utc", "f_hz"]:
                msg = f"{name} line 1: expected header 'utc,f_hz', got {header!r}"
                raise FrequencyFileError(msg)
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                try:
                    at = parse_utc(row[0], field=f"{name} line {line} utc")
                except ValueError as exc:
                    raise FrequencyFileError(str(exc)) from exc
                text = row[1].strip() if len(row) > 1 else ""
                if not text:
                    yield line, at, None
                    continue
                try:
                    f = float(text)
                except ValueError as exc:
                    msg = f"{name} line {line} f_hz: {text!r} is not a number"
                    raise FrequencyFileError(msg) from exc
                if not F_MIN_HZ <= f <= F_MAX_HZ:
                    msg = f"{name} line {line} f_hz: {f} is outside {F_MIN_HZ:g}-{F_MAX_HZ:g} Hz"
                    raise FrequencyFileError(msg)
                yield line, at, f

    def _seconds(self) -> Iterator[FrequencySample]:
        """Samples on the 1 s grid from the first one at or after ``start_at``; gaps hold the last value."""
        self.filled = 0
        last: float | None = None
        expected: datetime | None = None
        count = 0
        for _, at, f in self._rows():
            if self.start_at is not None and at < self.start_at:
                continue
            if expected is None:
                expected = at
            while expected < at:  # a gap: hold the last value
                yield FrequencySample(expected, last if last is not None else 50.0)
                self.filled += 1
                count += 1
                expected += SECOND
                if self.seconds is not None and count >= self.seconds:
                    return
            if f is None:
                f = last if last is not None else 50.0
                self.filled += 1
            last = f
            yield FrequencySample(at, f)
            count += 1
            expected = at + SECOND
            if self.seconds is not None and count >= self.seconds:
                return
        if expected is None:
            msg = f"{self.path.name}: no samples at or after {self.start_at}"
            raise FrequencyFileError(msg)

    def window(self) -> FrequencyWindow:
        """The whole window at once."""
        samples = list(self._seconds())
        return FrequencyWindow(samples[0].at, np.array([s.f_hz for s in samples]), self.filled)

    async def samples(self) -> AsyncIterator[FrequencySample]:
        """The window, paced at ``speed`` x real time (unpaced at speed 0)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        for k, sample in enumerate(self._seconds()):
            if self.speed > 0:
                delay = k * self.step_s / self.speed - (loop.time() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
            yield sample


@dataclass
class _Protocol(asyncio.DatagramProtocol):
    queue: asyncio.Queue[FrequencySample]
    owner: UdpFrequencyInput

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            sample = self.owner.parse(data)
        except FeedError as exc:
            self.owner.rejected.append(str(exc))
            return
        now = time.monotonic()
        if now - self.owner._last_accepted < 1.0 / self.owner.max_rate_hz:
            self.owner.thinned += 1
            return
        self.owner._last_accepted = now
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(sample)


class _UtcClock:
    """The wall clock, for a live input whose datagrams carry no time."""

    def now(self) -> datetime:
        return utc_now()


_UTC_CLOCK = _UtcClock()


@dataclass
class UdpFrequencyInput:
    """Live frequency over UDP on loopback or a measurement network."""

    host: str = "127.0.0.1"
    port: int = 0
    max_rate_hz: float = 10.0
    clock: Clock = field(default_factory=lambda: _UTC_CLOCK)  # stamps datagrams that carry no time
    rejected: list[str] = field(default_factory=list)
    thinned: int = 0
    _last_accepted: float = 0.0
    _transport: asyncio.DatagramTransport | None = None
    _queue: asyncio.Queue[FrequencySample] | None = None

    @property
    def step_s(self) -> float:
        """At most ``max_rate_hz`` samples per second."""
        return 1.0 / self.max_rate_hz

    def parse(self, data: bytes) -> FrequencySample:
        """``<ISO time>,<f_hz>`` or ``{"at": ..., "f_hz": ...}``; the time defaults to now."""
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            msg = "datagram: not UTF-8 text"
            raise FeedError(msg) from exc
        try:
            if text.startswith("{"):
                obj = json.loads(text)
                at = parse_utc(obj["at"], field="at") if obj.get("at") else self.clock.now()
                f_hz = float(obj["f_hz"])
            else:
                stamp, _, value = text.rpartition(",")
                at = parse_utc(stamp, field="at") if stamp else self.clock.now()
                f_hz = float(value)
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"datagram {text[:60]!r}: {exc}"
            raise FeedError(msg) from exc
        if not F_MIN_HZ <= f_hz <= F_MAX_HZ:
            msg = f"datagram {text[:60]!r}: f_hz {f_hz} outside {F_MIN_HZ}-{F_MAX_HZ} Hz"
            raise FeedError(msg)
        return FrequencySample(at, f_hz)

    async def start(self) -> int:
        """Bind; return the port (``port=0`` picks a free one)."""
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(maxsize=1000)
        queue = self._queue
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(queue, self), local_addr=(self.host, self.port)
        )
        self._transport = transport
        return int(transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def samples(self) -> AsyncIterator[FrequencySample]:
        if self._queue is None:
            await self.start()
        assert self._queue is not None
        while True:
            yield await self._queue.get()


class RecordedFrequencyDay:
    """A recorded frequency day replayed onto any date by time of day (a ``FrequencyFeed``).

    Second ``s`` after local midnight UTC of any day reads the recording's second ``s`` (wrapping
    around the recording's length), so a demo or a twin day always meets the same real frequency.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or shipped(SHIPPED_FREQUENCY)
        window = FrequencyRecording(self.path).window()
        self.recorded_start_at = window.start_at
        self.f_hz = window.f_hz
        self.filled = window.filled

    def f_hz_at(self, at: datetime) -> float:
        at = ensure_utc(at, field="at")
        second = int((at - at.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds())
        return float(self.f_hz[second % len(self.f_hz)])

    def describe(self) -> str:
        return f"{self.path.name} (recorded {self.recorded_start_at:%Y-%m-%d}), replayed by time of day"


class LiveFrequency:
    """The latest value of a live input (a ``FrequencyFeed``); 50 Hz until the first reading arrives."""

    def __init__(self, source: UdpFrequencyInput) -> None:
        self.source = source
        self.latest: FrequencySample | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        port = await self.source.start()
        self._task = asyncio.create_task(self._follow())
        return port

    async def _follow(self) -> None:
        async for sample in self.source.samples():
            self.latest = sample

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.source.close()

    def f_hz_at(self, at: datetime) -> float:
        return self.latest.f_hz if self.latest is not None else 50.0
