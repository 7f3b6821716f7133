"""The FastAPI application factory."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response

import v2g
from v2g.api.errors import install_error_handlers
from v2g.api.hardening import install_hardening
from v2g.api.routers import register_routers
from v2g.bootstrap import Platform

log = structlog.get_logger("v2g.api")


def create_app(platform: Platform) -> FastAPI:
    """Build the API app around an already bootstrapped platform (the portal is added by
    :func:`v2g.runtime.app.build_app`, which serves both)."""
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
