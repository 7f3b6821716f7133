"""Crash tests: the platform as a real child process on a real socket, killed with SIGKILL and restarted.

:class:`PlatformProcess` starts a command (the ``v2g`` command line, or :mod:`platform_main`), waits
until its OCPP port accepts connections, kills it with SIGKILL and starts it again on the same
database and port. :class:`RawCharger` is a minimal OCPP-J charger on a real WebSocket that knows
exactly which of its CALLs were answered (acknowledged) and answers the CSMS's own CALLs generically.
Every wait polls with a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

HOST = "127.0.0.1"
V2G = str(Path(sys.executable).parent / "v2g")
PLATFORM_MAIN = str(Path(__file__).with_name("platform_main.py"))


async def wait_until(predicate: Callable[[], bool], limit_s: float = 30.0, what: Callable[[], object] = str) -> None:
    """Poll ``predicate`` until true; fail after ``limit_s`` (a bound for a loaded machine, not a speed check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate():
        if loop.time() > deadline:
            msg = f"condition not met within {limit_s:g} s: {what()}"
            raise AssertionError(msg)
        await asyncio.sleep(0.02)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class PlatformProcess:
    """One platform command run as a child process, started, killed and restarted on the same port."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], ocpp_port: int, log_path: Path) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.ocpp_port = ocpp_port
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0
        self._log: IO[bytes] | None = None

    @property
    def ocpp_url(self) -> str:
        return f"ws://{HOST}:{self.ocpp_port}/ocpp"

    async def start(self, limit_s: float = 60.0) -> None:
        """Start the command and return once its OCPP port accepts connections."""
        assert self.proc is None or self.proc.returncode is not None, "already running"
        self._log = self.log_path.open("ab")
        self._log.write(f"---- start {self.starts + 1}: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, stdout=self._log, stderr=asyncio.subprocess.STDOUT
        )
        self.starts += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while True:
            if self.proc.returncode is not None:
                msg = f"the platform exited with {self.proc.returncode} while starting:\n{self.log_tail()}"
                raise AssertionError(msg)
            try:
                _, writer = await asyncio.open_connection(HOST, self.ocpp_port)
            except OSError:
                if loop.time() > deadline:
                    msg = (
                        f"the platform did not listen on port {self.ocpp_port} within {limit_s:g} s:\n{self.log_tail()}"
                    )
                    raise AssertionError(msg) from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, no goodbye to the chargers."""
        assert self.proc is not None, "never started"
        assert self.proc.returncode is None, "not running"
        os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        self._close_log()

    async def stop(self) -> None:
        """End the process if it still runs (SIGTERM, then SIGKILL after a bound)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no output)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _answer(action: str) -> dict[str, Any]:
    """A generic answer to a CALL of the CSMS (re-sync after the first message of a connection)."""
    if action == "GetVariables":
        result = {"attributeStatus": "Rejected", "component": {"name": "V2XChargingCtrlr"}, "variable": {"name": "x"}}
        return {"getVariableResult": [result]}
    if action == "GetConfiguration":
        return {"configurationKey": []}
    return {"status": "Accepted"}


class RawCharger:
    """An OCPP-J charger on a real WebSocket: sends CALLs one at a time and reports which were answered."""

    def __init__(self, base_url: str, charger_id: str, password: str, protocol: str) -> None:
        self.url = f"{base_url}/{charger_id}"
        self.charger_id = charger_id
        self.password = password
        self.protocol = protocol
        self.ws: ClientConnection | None = None
        self._pending: dict[str, asyncio.Future[list[Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        token = base64.b64encode(f"{self.charger_id}:{self.password}".encode()).decode()
        self.ws = await connect(
            self.url,
            subprotocols=[f"ocpp{self.protocol}"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {token}"},
            ping_interval=None,
        )
        self._reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame[0] == 2:
                    await ws.send(json.dumps([3, frame[1], _answer(frame[2])]))
                elif frame[0] in (3, 4):
                    waiter = self._pending.pop(frame[1], None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(frame)
        except ConnectionClosed:
            pass
        finally:
            for waiter in self._pending.values():
                if not waiter.done():
                    waiter.set_exception(ConnectionError("connection closed before the answer"))
            self._pending.clear()

    async def call(self, uid: str, action: str, payload: dict[str, Any], timeout_s: float = 15.0) -> list[Any]:
        """Send one CALL and return its answer; raises ``ConnectionError`` when the connection ends first."""
        assert self.ws is not None
        waiter: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[uid] = waiter
        try:
            await self.ws.send(json.dumps([2, uid, action, payload]))
        except ConnectionClosed as exc:
            self._pending.pop(uid, None)
            raise ConnectionError(str(exc)) from exc
        return await asyncio.wait_for(waiter, timeout_s)

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
