"""A small OpenADR 3.0.1 VTN stand-in for the VEN's tests, run as its own process on loopback.

Not a VTN product and no claim of conformance: it keeps programs, events, VENs, reports and
subscriptions in a JSON file (so a restart keeps them, as a VTN with a database would), issues bearer
tokens for client credentials (``bl``/``bl-secret`` may write programs and events, ``ven``/``ven-secret``
reports, VENs and subscriptions), checks the fields the 3.0.1 schema requires of a report and a
subscription (answering 400 with problem details naming the field), pages with ``skip``/``limit``,
filters events by ``programID`` and posts notifications to subscribers' webhooks.
The tests run the same scenarios against a real VTN when one is configured (see ``test_ven3.py``).

Usage: ``python vtn3_double.py PORT STATE_FILE``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn

CLIENTS = {"bl": ("bl-secret", "BL"), "ven": ("ven-secret", "VEN")}
KINDS = {"programs": "PROGRAM", "events": "EVENT", "vens": "VEN", "reports": "REPORT", "subscriptions": "SUBSCRIPTION"}
WRITERS = {"programs": "BL", "events": "BL", "reports": "VEN", "vens": "ANY", "subscriptions": "ANY"}
REQUIRED = {
    "programs": ("programName",),
    "events": ("programID", "intervals"),
    "vens": ("venName",),
    "reports": ("programID", "eventID", "clientName", "resources"),
    "subscriptions": ("clientName", "programID", "objectOperations"),
}


class Vtn:
    def __init__(self, state_file: Path) -> None:
        self.file = state_file
        self.state: dict[str, Any] = (
            json.loads(state_file.read_text()) if state_file.exists() else {k: {} for k in KINDS} | {"next": 1}
        )
        self.tokens: dict[str, str] = {}

    def save(self) -> None:
        self.file.write_text(json.dumps(self.state))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status, answer = await self.handle(scope, body)
        data = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    async def handle(self, scope: dict[str, Any], body: bytes) -> tuple[int, Any]:
        method, parts = scope["method"], [p for p in scope["path"].split("/") if p]
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        if parts == ["auth", "token"] and method == "POST":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            secret, role = CLIENTS.get(form.get("client_id", ""), ("", ""))
            if not secret or form.get("client_secret") != secret:
                return 401, {"error": "invalid_client"}
            token = f"{role.lower()}-{len(self.tokens) + 1}"
            self.tokens[token] = role
            return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        role = self.tokens.get(auth.removeprefix("Bearer "))
        if role is None:
            return 401, problem(401, "Unauthorized", "a bearer token from /auth/token is required")
        if not parts or parts[0] not in KINDS or len(parts) > 2:
            return 404, problem(404, "Not Found", scope["path"])
        kind = parts[0]
        table: dict[str, Any] = self.state[kind]
        if method == "GET" and len(parts) == 1:
            rows = [
                r
                for r in table.values()
                if all(str(r.get(k)) == v for k, v in query.items() if k not in ("skip", "limit"))
            ]
            skip, limit = int(query.get("skip", 0)), int(query.get("limit", 50))
            return 200, rows[skip : skip + limit]
        if method in ("POST", "PUT") and WRITERS[kind] not in ("ANY", role):
            return 403, problem(403, "Forbidden", f"{role} may not write {kind}")
        if method == "POST" and len(parts) == 1:
            try:
                obj = json.loads(body)
            except ValueError:
                return 400, problem(400, "Bad Request", "body: not JSON")
            missing = [f for f in REQUIRED[kind] if obj.get(f) in (None, "", [])]
            if missing:
                return 400, problem(400, "Bad Request", f"{KINDS[kind].lower()}.{missing[0]}: required")
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            obj |= {"id": str(self.state["next"]), "createdDateTime": now, "modificationDateTime": now}
            obj["objectType"] = KINDS[kind]
            self.state["next"] += 1
            table[obj["id"]] = obj
            self.save()
            await self.notify(kind, "POST", obj)
            return 201, obj
        if len(parts) == 2 and parts[1] not in table:
            return 404, problem(404, "Not Found", f"{kind}/{parts[1]}")
        if method == "GET":
            return 200, table[parts[1]]
        if method == "PUT":
            obj = json.loads(body) | {"id": parts[1]}
            obj["modificationDateTime"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            table[parts[1]] = obj
            self.save()
            await self.notify(kind, "PUT", obj)
            return 200, obj
        if method == "DELETE":
            obj = table.pop(parts[1])
            self.save()
            await self.notify(kind, "DELETE", obj)
            return 200, obj
        return 405, problem(405, "Method Not Allowed", method)

    async def notify(self, kind: str, operation: str, obj: dict[str, Any]) -> None:
        for sub in list(self.state["subscriptions"].values()):
            for op in sub.get("objectOperations", []):
                if KINDS[kind] in op.get("objects", []) and operation in op.get("operations", []):
                    note = {"objectType": KINDS[kind], "operation": operation, "object": obj}
                    headers = {"Authorization": f"Bearer {op.get('bearerToken', '')}"}
                    try:
                        async with httpx.AsyncClient(timeout=2) as client:
                            await client.post(op["callbackUrl"], json=note, headers=headers)
                    except httpx.HTTPError:
                        pass


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"type": "about:blank", "status": status, "title": title, "detail": detail}


def main() -> None:
    port, state = int(sys.argv[1]), Path(sys.argv[2])
    config = uvicorn.Config(Vtn(state), host="127.0.0.1", port=port, log_level="warning")
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
