"""What every portal page shares: the caller, the language, the page template and the error pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from v2g.bootstrap import Platform
from v2g.services.actors.auth import AuthenticationError, principal_for_token
from v2g.services.actors.ports import ForbiddenError, GoneError, NotFoundError, Principal
from v2g.units import to_local
from v2g.web.i18n import Translator, pick_language
from v2g.web.security import CSRF_FIELD, LANG_COOKIE, SESSION_COOKIE, CsrfError, check_csrf, session_csrf

T = TypeVar("T")

# the portal's own pages: scripts and styles from the portal's static files only, nothing inline
PORTAL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class PortalError(Exception):
    """An answer shown as an error page: the status, a title key of the catalogue, and the message."""

    def __init__(self, status: int, title_key: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title_key = title_key
        self.message = message


class SignInRequiredError(Exception):
    """No valid session: the page sends the browser to the sign-in page."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in caller of a page, with the session's CSRF token."""

    principal: Principal
    csrf: str


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def language(request: Request) -> str:
    return pick_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def viewer_or_none(request: Request) -> Viewer | None:
    """The caller of the session cookie, or None (no cookie, or a token that ended)."""
    token = request.cookies.get(SESSION_COOKIE)
    journeys = platform_of(request).journeys
    if not token or journeys is None:
        return None
    try:
        with journeys.uow() as repo:
            who = principal_for_token(repo, token, now=journeys.clock.now())
    except AuthenticationError:
        return None
    return Viewer(who, session_csrf(token))


def viewer(request: Request) -> Viewer:
    """The signed-in caller (a FastAPI dependency); without a session the page redirects to sign-in."""
    found = viewer_or_none(request)
    if found is None:
        raise SignInRequiredError
    return found


def require_role(who: Viewer, *roles: str) -> None:
    """A page for ``roles`` only: other roles get 403 naming the roles allowed."""
    if who.principal.role not in roles:
        msg = f"role {who.principal.role!r} may not open this page (allowed: {', '.join(roles)})"
        raise PortalError(403, "forbidden_title", msg)


async def checked_form(request: Request, who: Viewer) -> dict[str, Any]:
    """The POSTed form after its CSRF token was checked against the session's (403 otherwise)."""
    form = await request.form()
    try:
        check_csrf(who.csrf, form.get(CSRF_FIELD))
    except CsrfError:
        await form.close()  # uploaded files are not read
        raise
    data: dict[str, Any] = {}
    for key in form:
        values = form.getlist(key)
        data[key] = values if len(values) > 1 else values[0]
    return data


@contextmanager
def service_errors() -> Iterator[None]:
    """The use cases' refusals as error pages: 403 for a role, 404 for what the caller may not see."""
    try:
        yield
    except ForbiddenError as exc:
        raise PortalError(403, "forbidden_title", str(exc)) from exc
    except (NotFoundError, GoneError) as exc:
        raise PortalError(404, "not_found_title", str(exc)) from exc


def call(fn: Callable[[], T]) -> T:
    with service_errors():
        return fn()


# ------------------------------------------------------------------------------------ rendering
def _money(value: Decimal | float | int) -> str:
    """Swedish kronor with a thin space between thousands: 12 345."""
    return f"{Decimal(value):,.0f}".replace(",", "\u202f")


def _money2(value: Decimal | float | int) -> str:
    return f"{Decimal(value):,.2f}".replace(",", "\u202f")


def _local(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "-"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return to_local(at).strftime(fmt)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("v2g.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = _money
    env.filters["money2"] = _money2
    env.filters["local"] = _local
    env.filters["urlquote"] = lambda s: quote(str(s), safe="")
    return env


def render(request: Request, template: str, *, who: Viewer | None, status: int = 200, **context: Any) -> HTMLResponse:
    """A portal page in the caller's language, with the portal's CSP."""
    lang = language(request)
    html = (
        environment()
        .get_template(template)
        .render(
            t=Translator(lang),
            lang=lang,
            who=who,
            path=request.url.path,
            csrf_field=CSRF_FIELD,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = PORTAL_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(url: str) -> Response:
    """After a POST: see the page again (303), so a reload does not send the form twice."""
    return RedirectResponse(url, status_code=303)
