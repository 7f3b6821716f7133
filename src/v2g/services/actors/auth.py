"""Authentication: argon2 password hashes, bearer API tokens stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from v2g.services.actors.ports import AuditEntry, AuthRepository, Organisation, Principal, User

_HASHER = PasswordHasher()
TOKEN_PREFIX = "v2g_"


class AuthenticationError(PermissionError):
    """Missing, unknown or expired credentials (HTTP 401)."""


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    if len(password) < 8:
        msg = "password: must be at least 8 characters"
        raise ValueError(msg)
    return str(_HASHER.hash(password))


@cache
def _dummy_hash() -> str:
    """A hash with the same cost as real ones, checked when there is no real one (equal timing)."""
    return str(_HASHER.hash(secrets.token_urlsafe(24)))


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return bool(_HASHER.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    """What is stored for a token: its SHA-256 (tokens are random, so no salt or slow hash is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(repo: AuthRepository, user: User, *, label: str, now: datetime, ttl: timedelta | None = None) -> str:
    """A new bearer token for ``user``; only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + ttl if ttl else None
    repo.add_token(hash_token(token), user.id, label, now, expires_at)
    repo.audit(
        AuditEntry(
            at=now,
            user_id=user.id,
            organisation_id=user.organisation_id,
            action="token_issued",
            entity="user",
            entity_id=user.id,
            after={"label": label, "expires_at": expires_at.isoformat() if expires_at else None},
        )
    )
    return token


def login(
    repo: AuthRepository, username: str, password: str, *, now: datetime, ttl: timedelta = timedelta(hours=12)
) -> str:
    """Check username and password; return a new token valid for ``ttl``.

    An unknown, inactive or password-less user costs one argon2 check like any other, so the answer's
    timing does not tell which usernames exist.
    """
    user = repo.user_by_username(username)
    real_hash = user.password_hash if user is not None and user.active else None
    matches = verify_password(real_hash or _dummy_hash(), password)
    if user is None or not real_hash or not matches:
        msg = "unknown username or wrong password"
        raise AuthenticationError(msg)
    return issue_token(repo, user, label="login", now=now, ttl=ttl)


def revoke_token(repo: AuthRepository, token: str, principal: Principal, *, now: datetime) -> None:
    """End the bearer token ``token`` of ``principal`` now (it answers 401 from then on)."""
    if not repo.revoke_token(hash_token(token), now):
        msg = "invalid or expired token"
        raise AuthenticationError(msg)
    repo.audit(
        AuditEntry(
            at=now,
            user_id=principal.user_id,
            organisation_id=principal.organisation_id,
            action="token_revoked",
            entity="user",
            entity_id=principal.user_id,
        )
    )


def principal_for_token(repo: AuthRepository, token: str, *, now: datetime) -> Principal:
    """The principal a bearer token stands for."""
    user = repo.user_by_token(hash_token(token), now)
    if user is None or not user.active:
        msg = "invalid or expired token"
        raise AuthenticationError(msg)
    org = repo.organisation(user.organisation_id)
    if org is None:  # pragma: no cover - foreign key
        msg = "user without organisation"
        raise AuthenticationError(msg)
    return Principal(user.id, org.id, org.role, user.customer_id, user.display_name)


def ensure_organisation_user(
    repo: AuthRepository,
    *,
    organisation_id: str,
    organisation_name: str,
    role: str,
    username: str,
    password: str | None = None,
    now: datetime,
    customer_id: str | None = None,
    password_hash: str | None = None,
) -> User:
    """Create the organisation and its user unless they exist (idempotent; for set-up and demos).

    Give ``password`` or an already computed ``password_hash`` (many users sharing one demo password).
    """
    if (password is None) == (password_hash is None):
        msg = "password: give either password or password_hash"
        raise ValueError(msg)
    if repo.organisation(organisation_id) is None:
        repo.add_organisation(Organisation(organisation_id, organisation_name, role))
    user = repo.user_by_username(username)
    if user is None:
        user = User(
            id=f"user-{username}",
            organisation_id=organisation_id,
            username=username,
            display_name=username,
            created_at=now,
            password_hash=password_hash or hash_password(password or ""),
            customer_id=customer_id,
        )
        repo.add_user(user)
        repo.audit(
            AuditEntry(
                at=now,
                user_id=None,
                organisation_id=organisation_id,
                action="user_created",
                entity="user",
                entity_id=user.id,
                after={"username": username, "role": role, "customer_id": customer_id},
            )
        )
    return user
