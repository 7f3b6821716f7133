"""The FastAPI application factory."""

from __future__ import annotations

import html
import time
from collections.abc import Awaitable, Callable

import structlog
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

import v2g
from v2g.api.errors import install_error_handlers
from v2g.api.hardening import install_hardening
from v2g.api.routers import register_routers
from v2g.bootstrap import Platform

log = structlog.get_logger("v2g.api")

LANDING_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>V2G service platform</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
a{color:#0b5cad}code{background:#f2f2f2;padding:0 .25rem}</style></head>
<body><main>
<h1>V2G service platform</h1>
<p>Version {version}. Vehicle-to-grid services for private EV owners: the service blueprint as code, chargers over
OCPP, fleet planning with Nordic reserves, market operations and the operating day.</p>
<ul>
<li><a href="/docs">API documentation</a> (OpenAPI: <a href="/openapi.json">/openapi.json</a>)</li>
<li><a href="/api/v1/blueprints/sweden_private_ev/render">The V2G service blueprint</a> (swimlane)</li>
<li><a href="/api/v1/operations">Operations</a> (sign in first: <code>POST /api/v1/auth/login</code>)</li>
<li><a href="/health">Health</a></li>
</ul>
</main></body></html>
"""


def create_app(platform: Platform) -> FastAPI:
    """Build the app around an already bootstrapped platform."""
    app = FastAPI(
        title="V2G service platform",
        version=v2g.__version__,
        description=(
            "The V2G service blueprint run for real: customer journeys, fleet planning with Nordic "
            "reserves, chargers over OCPP, settlement and portals."
        ),
    )
    app.state.platform = platform
    install_error_handlers(app)
    install_hardening(app, platform.settings)

    @app.middleware("http")
    async def access_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        log.info(
            "http_request",
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return response

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def landing() -> str:
        """The platform's front page: where the API, its documentation and the blueprint are."""
        return LANDING_HTML.replace("{version}", html.escape(v2g.__version__))

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness and database reachability."""
        if platform.health is None:
            raise HTTPException(503, "the platform has no health check (bootstrap builds it)")
        return {"status": "ok", "version": v2g.__version__, "database": platform.health()}

    api = APIRouter(prefix="/api/v1")
    register_routers(api)
    app.include_router(api)
    return app
