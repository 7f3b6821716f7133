"""Error answers that can always be encoded: the 422 echo of invalid input is made safe for JSON."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def _safe(value: Any) -> Any:
    """``value`` with every string made valid UTF-8 (lone surrogates become U+FFFD) and non-finite
    numbers as text, so the answer is always valid JSON."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(value) else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_safe(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 with the errors of the request, each naming its field."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": _safe(jsonable_encoder(exc.errors()))})


def install_error_handlers(app: FastAPI) -> None:
    """Register the platform's error answers on ``app``."""
    app.add_exception_handler(RequestValidationError, validation_error)
