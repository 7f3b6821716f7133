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


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def lone_surrogates(value: Any) -> Iterator[tuple[str | int, ...]]:
    """Locations of strings (keys included) in decoded JSON that are not valid Unicode (no recursion,
    so deep nesting cannot exhaust the stack)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, loc = stack.pop()
        if isinstance(item, str):
            if not _is_text(item):
                yield loc
        elif isinstance(item, dict):
            for key, child in item.items():
                if not _is_text(key):
                    yield (*loc, "<key>")
                    continue
                stack.append((child, (*loc, key)))
        elif isinstance(item, list):
            stack.extend((child, (*loc, i)) for i, child in enumerate(item))


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
