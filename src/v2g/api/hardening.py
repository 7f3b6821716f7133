"""What every HTTP answer and request goes through: size and nesting limits, security headers, and
422 answers that never echo large inputs.

* :class:`RequestLimits` reads a request body up to ``max_body_bytes`` before any route sees it: a
  larger one is refused with 413 (a declared ``Content-Length`` over the limit without reading it), a
  JSON body nested deeper than ``max_json_depth`` with 422. An evidence upload (multipart, to a
  task's ``/evidence``) may be as large as one evidence file (``evidence_max_bytes``) and its form.
* :class:`SecurityHeaders` wraps the whole application, so every answer (errors included) carries
  Content-Security-Policy, X-Content-Type-Options, X-Frame-Options and Referrer-Policy, and
  Strict-Transport-Security when the API is reached over HTTPS.
* :func:`validation_error` answers 422 naming each field, with each echoed input cut to
  ``error_echo_max_chars`` and always encodable as JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from v2g.config import Settings

DOCS_PATHS = ("/docs", "/redoc")
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
# evidence uploads (the API's and the portal's) may carry a file up to V2G_EVIDENCE_MAX_BYTES
EVIDENCE_UPLOAD = re.compile(r"^(/api/v1/tasks|/work/tasks)/[^/]+/evidence$")
UPLOAD_FORM_BYTES = 65_536  # the multipart headers and the other fields of the upload form
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in the JSON text ``body`` (0 for a scalar)."""
    brackets = _JSON_STRING.sub(b'""', body).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class RequestLimits:
    """Refuses request bodies over ``max_body_bytes`` (413) and JSON nested deeper than ``max_json_depth`` (422)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_json_depth: int, upload_bytes: int = 0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        self.upload_bytes = upload_bytes

    def limit_for(self, scope: Scope) -> int:
        """``max_body_bytes``, or room for one evidence file and the form around it on an evidence upload."""
        content_type = _header(scope, b"content-type") or ""
        if (
            scope.get("method") == "POST"
            and content_type.startswith("multipart/form-data")
            and EVIDENCE_UPLOAD.match(str(scope.get("path", "")))
        ):
            return max(self.max_body_bytes, self.upload_bytes + UPLOAD_FORM_BYTES)
        return self.max_body_bytes

    def _too_large(self, limit: int) -> JSONResponse:
        return JSONResponse({"detail": f"request body larger than {limit} bytes (V2G_MAX_BODY_BYTES)"}, status_code=413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await self._too_large(limit)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before the body was complete
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(limit)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and "json" in (_header(scope, b"content-type") or "") and json_depth(body) > self.max_json_depth:
            error = {
                "type": "json_too_deep",
                "loc": ["body"],
                "msg": f"JSON nested deeper than {self.max_json_depth} levels (V2G_MAX_JSON_DEPTH)",
            }
            await JSONResponse({"detail": [error]}, status_code=422)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SecurityHeaders:
    """Adds the platform's security headers to every HTTP answer (a header the route set is kept)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
        self._hsts = (b"strict-transport-security", f"max-age={settings.hsts_max_age_s}; includeSubDomains".encode())

    def headers_for(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        """The headers an answer to ``scope`` carries."""
        path = str(scope.get("path", ""))
        docs = any(path == p or path.startswith(p + "/") for p in DOCS_PATHS)
        csp = self.settings.docs_content_security_policy if docs else self.settings.content_security_policy
        headers = [(b"content-security-policy", csp.encode()), *self._common]
        if self.settings.https or scope.get("scheme") == "https":
            headers.append(self._hsts)
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers_for(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *((k, v) for k, v in extra if k not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# ------------------------------------------------------------------------------------ 422 answers
def _valid_text(text: str) -> str:
    """``text`` as valid UTF-8 (a lone surrogate becomes U+FFFD)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _cut(text: str, max_chars: int) -> str:
    text = _valid_text(text)
    return text if len(text) <= max_chars else f"{text[:max_chars]}... ({len(text)} characters)"


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return _valid_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_safe(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def short_echo(value: Any, max_chars: int) -> Any:
    """``value`` as echoed in a 422: unchanged when short, else its JSON text cut to ``max_chars``."""
    value = _safe(value)
    if isinstance(value, str):
        return _cut(value, max_chars)
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, default=str)
        return value if len(text) <= max_chars else _cut(text, max_chars)
    return value


def short_errors(errors: Any, max_chars: int) -> list[dict[str, Any]]:
    """Validation errors with each echoed input, location part and message bounded in size."""
    out = []
    for error in jsonable_encoder(errors):
        error = dict(error)
        if "input" in error:
            error["input"] = short_echo(error["input"], max_chars)
        error["loc"] = [_cut(p, max_chars) if isinstance(p, str) else p for p in error.get("loc", [])]
        error["msg"] = _cut(str(error.get("msg", "")), max(max_chars, 500))
        if "ctx" in error:
            error["ctx"] = {k: short_echo(v, max_chars) for k, v in _safe(error["ctx"]).items()}
        error.pop("url", None)
        out.append(error)
    return out


def install_hardening(app: FastAPI, settings: Settings) -> None:
    """Request limits, short 422 answers and (outermost, so on every answer) the security headers."""

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": short_errors(exc.errors(), settings.error_echo_max_chars)}, status_code=422)

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.max_body_bytes,
        max_json_depth=settings.max_json_depth,
        upload_bytes=settings.evidence_max_bytes,
    )
    build_stack = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return SecurityHeaders(build_stack(), settings)

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]
