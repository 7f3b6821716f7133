"""Charger passwords (OCPP security profiles 1 and 2): argon2id hashes, never the password itself."""

from __future__ import annotations

import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2Hasher:
    """argon2id: library defaults; ``light`` uses OWASP's minimum (19 MiB, t=2).

    ``simulated=True`` (1 MiB, t=1) is for simulated fleets and benchmarks only, where thousands of
    throw-away credentials are made at once; real chargers never get it.
    """

    def __init__(self, *, light: bool = False, simulated: bool = False) -> None:
        if simulated:
            self._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        elif light:
            self._hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
        else:
            self._hasher = PasswordHasher()

    def hash(self, password: str) -> str:
        return str(self._hasher.hash(password))

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(password_hash, password))
        except (VerificationError, InvalidHashError):
            return False


class PasswordVerifier:
    """Checks basic-auth passwords against stored hashes; remembers a success (by digest) in memory.

    A reconnecting charger then costs one SHA-256 instead of one argon2 run; a changed stored hash
    or password invalidates the memory.
    """

    def __init__(self) -> None:
        self._hasher = Argon2Hasher()
        self._ok: dict[str, tuple[str, str]] = {}

    def verify(self, charger_id: str, password_hash: str, password: str) -> bool:
        digest = hashlib.sha256(password.encode()).hexdigest()
        if self._ok.get(charger_id) == (password_hash, digest):
            return True
        if not self._hasher.verify(password_hash, password):
            return False
        self._ok[charger_id] = (password_hash, digest)
        return True
