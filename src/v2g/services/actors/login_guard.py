"""Sign-in throttling and bounded password checking.

Failed sign-ins are counted per account (the username as given, known or not, so the answer never
tells whether an account exists) and per client address. Once either passes its limit, further
attempts wait: the first wait is ``backoff_base_s`` and it doubles with each further failure, up to
``backoff_max_s``. While an account or address waits, no password is checked at all and the caller
is told how long to wait. A successful sign-in clears its account's count (not the address's, so one
valid account cannot be used to reset an address that guesses others' passwords).

Argon2 checks are memory- and CPU-hard on purpose, so at most ``max_concurrent`` run at once; a
caller that finds no free slot within ``verification_wait_s`` is told to come back later.

The counts live in this process's memory and are bounded (``max_keys``; the oldest are forgotten).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from v2g.services.actors.auth import AuthenticationError

T = TypeVar("T")


class LoginThrottledError(PermissionError):
    """Too many failed sign-ins for this account or address (HTTP 429 with Retry-After)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class LoginBusyError(RuntimeError):
    """Every password check slot is busy (HTTP 503 with Retry-After)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many sign-ins at once; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """The throttle's limits (from the ``login_*`` settings)."""

    max_failures_per_account: int = 5
    max_failures_per_address: int = 20
    failure_window_s: float = 900.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 900.0
    max_keys: int = 100_000
    max_concurrent: int = 4
    verification_wait_s: float = 2.0


@dataclass(slots=True)
class _Failures:
    count: int
    last_s: float


class _FailureBook:
    """Failure counts of one kind of key (accounts or addresses), bounded in size."""

    def __init__(self, max_failures: int, limits: LoginLimits) -> None:
        self._max = max_failures
        self._limits = limits
        self._rows: OrderedDict[str, _Failures] = OrderedDict()

    def _current(self, key: str, now_s: float) -> _Failures | None:
        row = self._rows.get(key)
        if row is not None and now_s - row.last_s > self._limits.failure_window_s + self._wait_s(row.count):
            del self._rows[key]
            return None
        return row

    def _wait_s(self, count: int) -> float:
        over = count - self._max
        if over < 0:
            return 0.0
        return min(self._limits.backoff_max_s, self._limits.backoff_base_s * 2.0 ** min(over, 64))

    def retry_after_s(self, key: str, now_s: float) -> float:
        row = self._current(key, now_s)
        if row is None:
            return 0.0
        return max(0.0, row.last_s + self._wait_s(row.count) - now_s)

    def fail(self, key: str, now_s: float) -> None:
        row = self._current(key, now_s)
        if row is None:
            self._rows[key] = _Failures(1, now_s)
        else:
            row.count += 1
            row.last_s = now_s
            self._rows.move_to_end(key)
        while len(self._rows) > self._limits.max_keys:
            self._rows.popitem(last=False)

    def clear(self, key: str) -> None:
        self._rows.pop(key, None)

    def __len__(self) -> int:
        return len(self._rows)


class LoginGuard:
    """Throttles failed sign-ins and bounds the password checks running at once."""

    def __init__(self, limits: LoginLimits | None = None, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or LoginLimits()
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._accounts = _FailureBook(self.limits.max_failures_per_account, self.limits)
        self._addresses = _FailureBook(self.limits.max_failures_per_address, self.limits)
        self._slots = threading.BoundedSemaphore(self.limits.max_concurrent)

    @staticmethod
    def _account_key(username: str) -> str:
        return username.strip().casefold()

    def retry_after_s(self, username: str, address: str) -> int:
        """Whole seconds to wait before this account may try from this address (0: go ahead)."""
        now_s = self._monotonic()
        with self._lock:
            wait = max(
                self._accounts.retry_after_s(self._account_key(username), now_s),
                self._addresses.retry_after_s(address, now_s),
            )
        return math.ceil(wait)

    def attempt(self, username: str, address: str, check: Callable[[], T]) -> T:
        """Run ``check`` (which raises :class:`AuthenticationError` on bad credentials) unless throttled.

        Raises :class:`LoginThrottledError` while the account or address waits, and
        :class:`LoginBusyError` when no password check slot frees up in time.
        """
        wait = self.retry_after_s(username, address)
        if wait > 0:
            raise LoginThrottledError(wait)
        if not self._slots.acquire(timeout=self.limits.verification_wait_s):
            raise LoginBusyError(max(1, math.ceil(self.limits.verification_wait_s)))
        try:
            result = check()
        except AuthenticationError:
            now_s = self._monotonic()
            with self._lock:
                self._accounts.fail(self._account_key(username), now_s)
                self._addresses.fail(address, now_s)
            raise
        finally:
            self._slots.release()
        with self._lock:
            self._accounts.clear(self._account_key(username))
        return result

    def remembered(self) -> tuple[int, int]:
        """How many accounts and addresses the throttle currently remembers."""
        with self._lock:
            return len(self._accounts), len(self._addresses)
