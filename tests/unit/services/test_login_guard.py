"""Sign-in hardening in the service layer: throttling with backoff per account and per address, a
bounded number of password checks at once, and equal work for unknown users."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from argon2 import PasswordHasher

from v2g.services.actors import auth
from v2g.services.actors.auth import AuthenticationError
from v2g.services.actors.login_guard import LoginBusyError, LoginGuard, LoginLimits, LoginThrottledError
from v2g.services.actors.ports import User

NOW = datetime(2026, 11, 2, 9, tzinfo=UTC)


@dataclass
class FakeMonotonic:
    s: float = 1000.0

    def __call__(self) -> float:
        return self.s


def _wrong() -> str:
    raise AuthenticationError("unknown username or wrong password")


def _fail(guard: LoginGuard, username: str, address: str) -> None:
    with pytest.raises(AuthenticationError):
        guard.attempt(username, address, _wrong)


def test_an_account_is_throttled_with_a_doubling_wait_and_freed_by_time() -> None:
    clock = FakeMonotonic()
    guard = LoginGuard(LoginLimits(max_failures_per_account=3, backoff_base_s=2.0, backoff_max_s=8.0), monotonic=clock)
    for i in range(3):
        _fail(guard, "alice", f"10.0.0.{i}")  # from three addresses: the account counts them all
    with pytest.raises(LoginThrottledError) as exc:
        guard.attempt("alice", "10.0.0.9", lambda: "token")
    assert exc.value.retry_after_s == 2
    assert guard.retry_after_s("ALICE ", "10.0.0.9") == 2  # the same account however it is spelt
    assert guard.retry_after_s("bob", "10.0.0.9") == 0  # others are not affected
    clock.s += 2.0
    _fail(guard, "alice", "10.0.0.9")  # the wait is over; one more failure doubles it
    assert guard.retry_after_s("alice", "10.0.0.9") == 4
    clock.s += 4.0
    _fail(guard, "alice", "10.0.0.9")
    clock.s += 8.0
    _fail(guard, "alice", "10.0.0.9")
    assert guard.retry_after_s("alice", "10.0.0.9") == 8  # capped at backoff_max_s
    clock.s += 8.0
    assert guard.attempt("alice", "10.0.0.9", lambda: "token") == "token"
    assert guard.retry_after_s("alice", "10.0.0.9") == 0  # success clears the account


def test_while_throttled_no_password_is_checked() -> None:
    guard = LoginGuard(LoginLimits(max_failures_per_account=1), monotonic=FakeMonotonic())
    _fail(guard, "alice", "a")
    checked = []
    with pytest.raises(LoginThrottledError):
        guard.attempt("alice", "a", lambda: checked.append(1) or "token")
    assert checked == []


def test_an_address_guessing_many_accounts_is_throttled() -> None:
    clock = FakeMonotonic()
    guard = LoginGuard(LoginLimits(max_failures_per_account=100, max_failures_per_address=4), monotonic=clock)
    for i in range(4):
        _fail(guard, f"user{i}", "192.0.2.1")
    with pytest.raises(LoginThrottledError):
        guard.attempt("someone-else", "192.0.2.1", lambda: "token")
    assert guard.retry_after_s("someone-else", "192.0.2.2") == 0
    # a success with a valid account does not reset the address
    clock.s += 1.0
    assert guard.attempt("mallory", "192.0.2.1", lambda: "token") == "token"
    _fail(guard, "user9", "192.0.2.1")
    assert guard.retry_after_s("user10", "192.0.2.1") > 0


def test_failures_are_forgotten_after_the_window() -> None:
    clock = FakeMonotonic()
    guard = LoginGuard(LoginLimits(max_failures_per_account=2, failure_window_s=60.0), monotonic=clock)
    _fail(guard, "alice", "a")
    clock.s += 61.0
    _fail(guard, "alice", "a")
    assert guard.retry_after_s("alice", "a") == 0


def test_the_throttle_remembers_a_bounded_number_of_keys() -> None:
    guard = LoginGuard(LoginLimits(max_keys=100), monotonic=FakeMonotonic())
    for i in range(1000):
        _fail(guard, f"user{i}", f"10.1.{i // 256}.{i % 256}")
    assert guard.remembered() == (100, 100)


def test_password_checks_at_once_are_bounded() -> None:
    guard = LoginGuard(LoginLimits(max_concurrent=1, verification_wait_s=0.05))
    inside, release = threading.Event(), threading.Event()

    def slow_check() -> str:
        inside.set()
        release.wait(5)
        return "token"

    worker = threading.Thread(target=lambda: guard.attempt("alice", "a", slow_check))
    worker.start()
    try:
        assert inside.wait(5)
        with pytest.raises(LoginBusyError) as exc:
            guard.attempt("bob", "b", lambda: "token")
        assert exc.value.retry_after_s >= 1
    finally:
        release.set()
        worker.join(5)
    assert guard.attempt("bob", "b", lambda: "token") == "token"  # the slot is free again


class _Users:
    """Just enough of the actor repository for :func:`auth.login`."""

    def __init__(self, *users: User) -> None:
        self.users = {u.username: u for u in users}
        self.tokens: list[str] = []

    def user_by_username(self, username: str) -> User | None:
        return self.users.get(username)

    def add_token(self, token_hash: str, *_: object) -> None:
        self.tokens.append(token_hash)

    def audit(self, _entry: object) -> None:
        pass


def test_unknown_users_cost_one_argon2_check_like_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    real = auth.hash_password("correct horse battery")
    users = _Users(
        User("u1", "org", "alice", "Alice", NOW, password_hash=real),
        User("u2", "org", "gone", "Gone", NOW, password_hash=real, active=False),
        User("u3", "org", "nopw", "No password", NOW),
    )
    checks: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            checks.append(str(hash))
            return super().verify(hash, password)

    monkeypatch.setattr(auth, "_HASHER", CountingHasher())
    for username in ("alice", "nobody", "gone", "nopw"):
        checks.clear()
        with pytest.raises(AuthenticationError, match="unknown username or wrong password"):
            auth.login(users, username, "wrong password!", now=NOW)  # type: ignore[arg-type]
        assert len(checks) == 1, username
        assert checks[0].startswith("$argon2id$"), username
    assert users.tokens == []
    token = auth.login(users, "alice", "correct horse battery", now=NOW, ttl=timedelta(minutes=5))  # type: ignore[arg-type]
    assert token.startswith(auth.TOKEN_PREFIX)
