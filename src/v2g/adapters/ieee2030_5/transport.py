"""HTTPS with a client certificate to a 2030.5 server, and the server's answers checked against the schema.

Every answer that is not what IEEE 2030.5 prescribes raises :class:`ServerAnswerError` naming the
resource, the element and why (a wrong status, a document that is not XML, a missing or malformed
element); a server that cannot be reached, or answers 5xx, raises :class:`ServerUnavailableError`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
from lxml import etree
from pydantic import ValidationError
from pydantic_xml import BaseXmlModel

SEP_XML = "application/sep+xml"
M = TypeVar("M", bound=BaseXmlModel)


class ServerUnavailableError(Exception):
    """The server cannot be reached or says it cannot serve now (5xx): try again later."""


class ServerAnswerError(Exception):
    """The server answered, but not as the standard says: ``resource``, ``element`` and ``reason`` tell how."""

    def __init__(self, resource: str, element: str, reason: str) -> None:
        self.resource = resource
        self.element = element
        self.reason = reason
        super().__init__(f"{resource}: {element}: {reason}")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    ca_file: Path | None = None  # None: the system's trust store

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        try:
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as exc:
            msg = f"ieee2030_5_cert_file/ieee2030_5_key_file: cannot load {self.cert_file} with {self.key_file}: {exc}"
            raise ValueError(msg) from exc
        return ctx


def _element(err: ValidationError, root: str) -> tuple[str, str]:
    first = err.errors()[0]
    path = "/".join(str(p) for p in first.get("loc", ()) if not isinstance(p, int))
    return f"{root}/{path}" if path else root, str(first.get("msg", "invalid"))


class Sep2Http:
    """One HTTPS connection pool to the server (``base_url``), with the client certificate."""

    def __init__(self, base_url: str, tls: TlsFiles, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            verify=tls.context(),
            timeout=timeout_s,
            headers={"Accept": SEP_XML},
            trust_env=False,
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def _request(self, method: str, href: str, body: str | None = None) -> httpx.Response:
        headers = {"Content-Type": SEP_XML} if body is not None else None
        try:
            response = await self.client.request(method, href, content=body, headers=headers)
        except httpx.TransportError as exc:
            msg = f"{method} {self.base_url}{href}: {type(exc).__name__}: {exc}"
            raise ServerUnavailableError(msg) from exc
        if response.status_code >= 500:
            msg = f"{method} {href}: HTTP {response.status_code}"
            raise ServerUnavailableError(msg)
        return response

    async def get(self, href: str, model: type[M], *, missing_ok: bool = False) -> M | None:
        """GET ``href`` as ``model``; None for a 404 when ``missing_ok``."""
        response = await self._request("GET", href)
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code != 200:
            raise ServerAnswerError(href, "status", f"HTTP {response.status_code} to GET: {_reason(response)}")
        return parse(href, response.content, model)

    async def send(self, method: str, href: str, body: str) -> str | None:
        """POST or PUT ``body``; the ``Location`` of a created resource (or None)."""
        response = await self._request(method, href, body)
        if response.status_code not in (200, 201, 204):
            raise ServerAnswerError(href, "status", f"HTTP {response.status_code} to {method}: {_reason(response)}")
        location: str | None = response.headers.get("Location")
        if location and location.startswith(self.base_url):
            location = location[len(self.base_url) :]
        return location


def _reason(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:300] or response.reason_phrase


def parse(href: str, content: bytes, model: type[M]) -> M:
    """``content`` as ``model``, or :class:`ServerAnswerError` naming the element at fault."""
    root = model.__xml_tag__ or model.__name__
    try:
        doc = etree.fromstring(content)
    except etree.XMLSyntaxError as exc:
        raise ServerAnswerError(href, root, f"not an XML document ({exc})") from exc
    local = etree.QName(doc).localname
    if local != root:
        raise ServerAnswerError(href, root, f"the document is a {local}, not a {root}")
    try:
        return model.from_xml_tree(doc)
    except ValidationError as exc:
        element, why = _element(exc, root)
        raise ServerAnswerError(href, element, why) from exc
