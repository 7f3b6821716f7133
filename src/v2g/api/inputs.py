"""Input guards shared by every route: bounded UTC datetimes, finite numbers and JSON text that is
valid Unicode.

* :data:`UtcDatetime` accepts an ISO 8601 datetime with an offset, between 1970 and 2200, and hands
  the route an aware UTC datetime (no overflow at the edges of the datetime range).
* :class:`StrictModel` is the base of every request body: unknown fields and non-finite numbers
  (``NaN``, ``Infinity``) are refused with a 422 naming the field.
* :class:`CheckedJsonRoute` refuses a JSON body that holds a lone surrogate (``"\\ud800"``) with a 422
  naming where it is, before the route or the storage sees it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, ConfigDict

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _bounded(value: datetime) -> datetime:
    if not (datetime(1970, 1, 2) <= value.replace(tzinfo=None) < datetime(2199, 12, 31)):
        msg = f"must lie between {EARLIEST.date()} and {LATEST.date()}"
        raise ValueError(msg)
    return value if value.tzinfo is None or value.utcoffset() is None else value.astimezone(UTC)


def _bounded_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        msg = "needs a UTC offset (e.g. 2026-05-01T10:00:00+02:00)"
        raise ValueError(msg)
    return _bounded(value)


BoundedDatetime = Annotated[datetime, AfterValidator(_bounded)]
"""A datetime between 1970 and 2200 (aware ones converted to UTC; the domain refuses naive ones, naming
the record and field)."""

UtcDatetime = Annotated[datetime, AfterValidator(_bounded_utc)]
"""An aware datetime between 1970 and 2200, converted to UTC."""


class StrictModel(BaseModel):
    """A request body: unknown fields and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def lone_surrogates(value: Any, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Locations of strings (keys included) in decoded JSON that are not valid Unicode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            if any(True for _ in lone_surrogates(key)):
                yield (*loc, "<key>")
            yield from lone_surrogates(item, (*loc, str(key).encode("utf-8", "replace").decode()))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from lone_surrogates(item, (*loc, i))


class CheckedJsonRoute(APIRoute):
    """A route whose JSON body must be valid Unicode text."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH") and "json" in request.headers.get("content-type", ""):
                body = await request.body()
                try:
                    decoded = json.loads(body) if body else None
                except (ValueError, RecursionError):
                    decoded = None  # the route's own parsing answers malformed JSON
                bad = list(lone_surrogates(decoded))
                if bad:
                    raise RequestValidationError(
                        [
                            {
                                "type": "string_unicode",
                                "loc": ("body", *loc),
                                "msg": "must be valid Unicode text (a lone surrogate is not)",
                            }
                            for loc in bad[:10]
                        ]
                    )
            return await handler(request)

        return checked
