"""The portal: server-rendered pages for EV owners, aggregator operators and the stakeholders serving
them (DSOs, installers, insurers...) over the platform's services.

Pages are Jinja2 templates rendered on the server (see docs/portal.md for why); the small script in
``static/portal.js`` only adds conveniences to pages that work without it. The routes hold no
business rules: every figure and every change comes from the same use cases the API calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from v2g.web.base import PortalError, SignInRequiredError, redirect, render, viewer_or_none
from v2g.web.security import CsrfError


def install_portal(app: FastAPI, demo_logins: Sequence[tuple[str, str, str]] = ()) -> None:
    """Mount the portal's pages at ``/``, ``/owner``, ``/operator`` and ``/work`` (the stakeholders') and
    its files at ``/static``.

    ``demo_logins`` ((username, password, role) of the demo database) are shown on the sign-in page.
    """
    from v2g.web import auth, dso, operator, owner, stakeholder
    from v2g.web import offers as owner_offers

    app.state.demo_logins = tuple(demo_logins)
    static = resources.files("v2g.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.include_router(auth.router)
    app.include_router(owner.router)
    app.include_router(operator.router)
    app.include_router(dso.router)
    app.include_router(stakeholder.router)
    app.include_router(owner_offers.router)

    async def portal_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PortalError)
        return render(
            request,
            "error.html.j2",
            who=viewer_or_none(request),
            status=exc.status,
            title_key=exc.title_key,
            message=exc.message,
        )

    async def csrf_error(request: Request, exc: Exception) -> Response:
        return render(
            request,
            "error.html.j2",
            who=viewer_or_none(request),
            status=403,
            title_key="csrf_title",
            message=None,
            detail=str(exc),
        )

    async def sign_in(_request: Request, _exc: Exception) -> Response:
        return redirect("/")

    app.add_exception_handler(PortalError, portal_error)
    app.add_exception_handler(CsrfError, csrf_error)
    app.add_exception_handler(SignInRequiredError, sign_in)
