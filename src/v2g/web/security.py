"""Portal sessions and CSRF protection.

A session is the same login token the API issues (``services.actors.auth.login``: argon2 check,
stored only as a hash, ends after ``V2G_LOGIN_TOKEN_TTL_MIN``), kept in an HttpOnly, SameSite=Lax
cookie that is Secure when the portal is served over TLS. Every request resolves it with
``principal_for_token``, so the portal's caller is exactly the API's. Signing out revokes it.

Every form POST carries a CSRF token: for a signed-in session an HMAC of the session token (so it
is per session and needs no storage), before sign-in a random value also set as a cookie (double
submit). A missing or wrong token is refused with 403.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

SESSION_COOKIE = "v2g_session"
LOGIN_CSRF_COOKIE = "v2g_login_csrf"
LANG_COOKIE = "v2g_lang"
CSRF_FIELD = "csrf_token"


class CsrfError(PermissionError):
    """A form POST without the right CSRF token."""


def session_csrf(session_token: str) -> str:
    """The CSRF token of a session: an HMAC keyed by the session token."""
    return hmac.new(session_token.encode(), b"v2g-portal-csrf", hashlib.sha256).hexdigest()


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def check_csrf(expected: str | None, given: object) -> None:
    """Refuse unless ``given`` equals ``expected`` (compared in constant time)."""
    if not expected or not isinstance(given, str) or not given:
        msg = "missing CSRF token"
        raise CsrfError(msg)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        msg = "wrong CSRF token"
        raise CsrfError(msg)


def served_over_tls(request: Request, https_setting: bool) -> bool:
    """Whether the portal is reached over TLS (directly, or behind a proxy the settings declare)."""
    return https_setting or request.url.scheme == "https"


def set_cookie(response: Response, name: str, value: str, *, secure: bool, max_age_s: int | None = None) -> None:
    """A cookie scripts cannot read, sent on same-site navigation only (SameSite=Lax)."""
    response.set_cookie(name, value, max_age=max_age_s, path="/", httponly=True, samesite="lax", secure=secure)


def clear_cookie(response: Response, name: str, *, secure: bool) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=secure)
