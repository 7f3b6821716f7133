"""Grid frequency behind one interface: CSV replay (1x to 1000x) and a live UDP input (up to 10 Hz).

Both yield :class:`FrequencySample` values from ``async for sample in source.samples()``.

* :class:`CsvFrequencyReplay` reads ``utc,f_hz`` (optionally gzip) at ``speed`` times real time;
  blank values are skipped and counted.
* :class:`UdpFrequencyInput` listens on a UDP port for datagrams ``<ISO time>,<f_hz>`` or JSON
  ``{"at": ..., "f_hz": ...}``; faster than ``max_rate_hz`` is thinned, malformed datagrams and
  implausible values (outside 45-55 Hz) are counted with the reason, never raised into the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from v2g.adapters.feeds.prices import FeedError
from v2g.units import parse_utc, utc_now

F_MIN_HZ, F_MAX_HZ = 45.0, 55.0


@dataclass(frozen=True, slots=True)
class FrequencySample:
    """One frequency reading."""

    at: datetime
    f_hz: float


class FrequencySource(Protocol):
    """A stream of frequency readings."""

    def samples(self) -> AsyncIterator[FrequencySample]: ...


@dataclass
class CsvFrequencyReplay:
    """Replays a recorded ``utc,f_hz`` series at ``speed`` x real time (1 to 1000)."""

    path: Path
    speed: float = 1.0
    limit: int | None = None
    skipped: int = 0

    def __post_init__(self) -> None:
        if not 1.0 <= self.speed <= 1000.0:
            msg = f"speed: {self.speed} must be between 1 and 1000"
            raise FeedError(msg)

    async def samples(self) -> AsyncIterator[FrequencySample]:
        opener = gzip.open if self.path.suffix == ".gz" else open
        started = time.monotonic()
        first: datetime | None = None
        count = 0
        with opener(self.path, "rt", encoding="utf-8") as fh:
            header = fh.readline().strip().lstrip("\ufeff")
            if header != "utc,f_hz":
                msg = f"{self.path.name}:1: header must be 'utc,f_hz', got {header!r}"
                raise FeedError(msg)
            for line_no, line in enumerate(fh, start=2):
                stamp, _, value = line.strip().partition(",")
                if not value.strip():
                    self.skipped += 1
                    continue
                try:
                    at = parse_utc(stamp, field="utc")
                    f_hz = float(value)
                except ValueError as exc:
                    msg = f"{self.path.name}:{line_no}: {exc}"
                    raise FeedError(msg) from exc
                first = first or at
                due = (at - first).total_seconds() / self.speed
                delay = due - (time.monotonic() - started)
                if delay > 0:
                    await asyncio.sleep(delay)
                yield FrequencySample(at, f_hz)
                count += 1
                if self.limit is not None and count >= self.limit:
                    return


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


@dataclass
class UdpFrequencyInput:
    """Live frequency over UDP on loopback or a measurement network."""

    host: str = "127.0.0.1"
    port: int = 0
    max_rate_hz: float = 10.0
    rejected: list[str] = field(default_factory=list)
    thinned: int = 0
    _last_accepted: float = 0.0
    _transport: asyncio.DatagramTransport | None = None
    _queue: asyncio.Queue[FrequencySample] | None = None

    @staticmethod
    def parse(data: bytes) -> FrequencySample:
        """``<ISO time>,<f_hz>`` or ``{"at": ..., "f_hz": ...}``; the time defaults to now."""
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            msg = "datagram: not UTF-8 text"
            raise FeedError(msg) from exc
        try:
            if text.startswith("{"):
                obj = json.loads(text)
                at = parse_utc(obj["at"], field="at") if obj.get("at") else utc_now()
                f_hz = float(obj["f_hz"])
            else:
                stamp, _, value = text.rpartition(",")
                at = parse_utc(stamp, field="at") if stamp else utc_now()
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
