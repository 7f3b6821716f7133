"""The landing page, sign-in, sign-out and the language switch."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from v2g.services.actors.auth import AuthenticationError, login, revoke_token
from v2g.services.actors.login_guard import LoginBusyError, LoginThrottledError
from v2g.web.base import checked_form, language, platform_of, redirect, render, viewer, viewer_or_none
from v2g.web.i18n import LANGUAGES, Translator
from v2g.web.security import (
    CSRF_FIELD,
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    clear_cookie,
    new_login_csrf,
    served_over_tls,
    set_cookie,
)
from v2g.web.stakeholder import STAKEHOLDER_ROLES

router = APIRouter(include_in_schema=False)
HOME_BY_ROLE = {"owner": "/owner", "aggregator_operator": "/operator"} | dict.fromkeys(STAKEHOLDER_ROLES, "/work")


def _secure(request: Request) -> bool:
    return served_over_tls(request, platform_of(request).settings.https)


def _login_page(request: Request, *, error: str | None = None, username: str = "", status: int = 200) -> Response:
    token = new_login_csrf()
    demo = getattr(request.app.state, "demo_logins", ())
    response = render(
        request,
        "landing.html.j2",
        who=None,
        status=status,
        login_csrf=token,
        error=error,
        username=username,
        demo_logins=demo,
    )
    set_cookie(response, LOGIN_CSRF_COOKIE, token, secure=_secure(request), max_age_s=3600)
    return response


@router.get("/")
def landing(request: Request) -> Response:
    """Signed in: the page of the caller's role; otherwise the sign-in page (with the demo logins in the demo)."""
    who = viewer_or_none(request)
    if who is None:
        return _login_page(request)
    home = HOME_BY_ROLE.get(who.principal.role)
    if home is not None:
        return redirect(home)
    return render(request, "other_role.html.j2", who=who)


@router.post("/login")
async def post_login(request: Request) -> Response:
    form = await request.form()
    check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), form.get(CSRF_FIELD))
    username, password = str(form.get("username") or ""), str(form.get("password") or "")
    t = Translator(language(request))
    platform = platform_of(request)
    journeys = platform.journeys
    if journeys is None or not username or not password or len(password) > platform.settings.password_max_chars:
        return _login_page(request, error=t("login_failed"), username=username, status=401)
    address = request.client.host if request.client else "unknown"
    ttl = timedelta(minutes=platform.settings.login_token_ttl_min)

    def check() -> str:
        with journeys.uow() as repo:
            return login(repo, username, password, now=journeys.clock.now(), ttl=ttl)

    try:
        token = platform.login_guard.attempt(username, address, check)
    except AuthenticationError:
        return _login_page(request, error=t("login_failed"), username=username, status=401)
    except LoginThrottledError as exc:
        page = _login_page(
            request, error=t("login_throttled", seconds=exc.retry_after_s), username=username, status=429
        )
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    except LoginBusyError as exc:
        page = _login_page(request, error=t("login_busy", seconds=exc.retry_after_s), username=username, status=503)
        page.headers["Retry-After"] = str(exc.retry_after_s)
        return page
    response = redirect("/")
    set_cookie(response, SESSION_COOKIE, token, secure=_secure(request), max_age_s=int(ttl.total_seconds()))
    clear_cookie(response, LOGIN_CSRF_COOKIE, secure=_secure(request))
    return response


@router.post("/logout")
async def post_logout(request: Request) -> Response:
    who = viewer(request)
    await checked_form(request, who)
    journeys = platform_of(request).journeys
    token = request.cookies.get(SESSION_COOKIE, "")
    if journeys is not None:
        with journeys.uow() as repo:
            revoke_token(repo, token, who.principal, now=journeys.clock.now())
    response = redirect("/")
    clear_cookie(response, SESSION_COOKIE, secure=_secure(request))
    return response


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str = "/") -> Response:
    """Set the page language and go back (only to a path of this site)."""
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = redirect(target)
    if code in LANGUAGES:
        set_cookie(response, LANG_COOKIE, code, secure=_secure(request), max_age_s=365 * 86400)
    return response
