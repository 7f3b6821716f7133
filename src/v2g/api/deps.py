"""What routes take from the platform: the ports built by the composition root, as dependencies.

Routes never open storage themselves; a port the platform was built without answers 503.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request, status

from v2g.bootstrap import Platform
from v2g.services.devices.ports import DeviceRecords
from v2g.services.fleet.ports import GridAreaReader
from v2g.services.markets.ports import MarketTx
from v2g.services.operations.view import OperationsView

T = TypeVar("T")


def platform_of(request: Request) -> Platform:
    """The running platform."""
    platform: Platform = request.app.state.platform
    return platform


def _wired(value: T | None, name: str) -> T:
    if value is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"the platform has no {name} (bootstrap builds it)")
    return value


def _devices(request: Request) -> DeviceRecords:
    return _wired(platform_of(request).devices, "device store")


def _grid_areas(request: Request) -> GridAreaReader:
    return _wired(platform_of(request).grid_areas, "grid area reader")


def _market_tx(request: Request) -> MarketTx:
    return _wired(platform_of(request).market_tx, "market store")


def _operations(request: Request) -> OperationsView:
    return _wired(platform_of(request).operations, "operations view")


Devices = Annotated[DeviceRecords, Depends(_devices)]
GridAreas = Annotated[GridAreaReader, Depends(_grid_areas)]
MarketUnit = Annotated[MarketTx, Depends(_market_tx)]
Operations = Annotated[OperationsView, Depends(_operations)]
