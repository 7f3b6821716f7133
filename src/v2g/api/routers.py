"""Every /api/v1 router, registered in one place."""

from __future__ import annotations

from fastapi import APIRouter


def register_routers(api: APIRouter) -> None:
    """Include each capability's router under /api/v1."""
    from v2g.api import (
        blueprints,
        devices,
        fleet,
        journeys,
        markets,
        operations,
        preferences,
        settlement,
        stakeholders,
    )

    api.include_router(fleet.router)
    api.include_router(journeys.router)
    api.include_router(stakeholders.router)
    api.include_router(blueprints.router)
    api.include_router(markets.router)
    api.include_router(devices.router)
    api.include_router(preferences.router)
    api.include_router(operations.router)
    api.include_router(settlement.router)
    from v2g.api import offers

    api.include_router(offers.router)
