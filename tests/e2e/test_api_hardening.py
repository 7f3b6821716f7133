"""The HTTP API's protections: sign-in throttling (429 with Retry-After), bounded password checks,
request size and nesting limits, short 422 answers, logout and token revocation, token lifetimes
from the settings, security headers on every answer, and grid areas for signed-in actors only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.journey_support import PASSWORD, TEST_BLUEPRINT, World, seed_world
from v2g.bootstrap import bootstrap
from v2g.config import Settings
from v2g.runtime.app import build_app

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def world(engine: Engine) -> World:
    return seed_world(engine)


def _client(world: World, **settings: Any) -> TestClient:
    config = Settings(database_url=str(world.engine.url), blueprint_path=TEST_BLUEPRINT, **settings)
    platform = bootstrap(config, engine=world.engine, clock=world.clock, journeys=world.service)
    return TestClient(build_app(platform), raise_server_exceptions=False)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with _client(world, login_max_failures_per_account=3, login_max_failures_per_address=6) as test_client:
        yield test_client


def _login(
    client: TestClient, username: str = "aggregator", password: str = PASSWORD, address: str | None = None
) -> Any:
    if address is not None:
        client._transport.client = (address, 50000)  # type: ignore[attr-defined]  # the peer address the app sees
    return client.post(LOGIN, json={"username": username, "password": password})


# ------------------------------------------------------------------------------------ item 11: sign-in
def test_failed_sign_ins_are_throttled_per_account_with_retry_after(client: TestClient) -> None:
    for i in range(3):
        assert _login(client, "aggregator", "wrong password", address=f"10.0.0.{i}").status_code == 401
    throttled = _login(client, "aggregator", PASSWORD, address="10.0.0.9")  # even the right password waits
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    assert "too many failed sign-ins" in throttled.json()["detail"]
    assert _login(client, "dso", PASSWORD, address="10.0.0.9").status_code == 200  # others sign in


def test_unknown_usernames_are_throttled_like_known_ones(client: TestClient) -> None:
    known = [_login(client, "aggregator", "wrong password", address="10.0.1.1") for _ in range(4)]
    unknown = [_login(client, "no-such-user", "wrong password", address="10.0.1.2") for _ in range(4)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401, 401, 401, 429]
    assert known[0].json() == unknown[0].json()


def test_failed_sign_ins_are_throttled_per_address(client: TestClient) -> None:
    for i in range(6):
        assert _login(client, f"guess{i}", "wrong password", address="192.0.2.7").status_code == 401
    assert _login(client, "dso", PASSWORD, address="192.0.2.7").status_code == 429
    assert _login(client, "dso", PASSWORD, address="192.0.2.8").status_code == 200


def test_passwords_over_the_limit_are_refused_before_any_check(world: World) -> None:
    with _client(world, password_max_chars=64) as client:
        response = _login(client, "aggregator", "x" * 65)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "password"]
        assert _login(client, "aggregator", "x" * 5000).status_code == 422
        assert _login(client, "aggregator").status_code == 200


def test_password_checks_at_once_are_bounded_with_503(world: World) -> None:
    with _client(world, login_max_concurrent_verifications=1, login_verification_wait_s=0.0) as client:
        guard = client.app.state.platform.login_guard  # type: ignore[attr-defined]
        held, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=lambda: guard.attempt("x", "y", lambda: (held.set(), release.wait(10))))
        holder.start()
        try:
            assert held.wait(10)
            busy = _login(client, "aggregator")
            assert busy.status_code == 503
            assert busy.headers["Retry-After"] == "1"
        finally:
            release.set()
            holder.join(10)
        assert _login(client, "aggregator").status_code == 200


# ------------------------------------------------------------------------------------ item 12: tokens
def test_logout_revokes_the_bearer_token(client: TestClient) -> None:
    token = _login(client, "aggregator").json()["token"]
    other = _login(client, "aggregator").json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=bearer).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=bearer).status_code == 204
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    assert client.post("/api/v1/auth/logout", headers=bearer).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    assert client.post("/api/v1/auth/logout").status_code == 401


def test_token_lifetimes_come_from_the_settings(world: World) -> None:
    with _client(world, login_token_ttl_min=30, api_token_ttl_days=2) as client:
        session = {"Authorization": f"Bearer {_login(client).json()['token']}"}
        api = client.post("/api/v1/auth/tokens", headers=session, json={"label": "script"})
        assert api.status_code == 201
        api_bearer = {"Authorization": f"Bearer {api.json()['token']}"}
        world.clock.advance(minutes=29)
        assert client.get("/api/v1/me", headers=session).status_code == 200
        world.clock.advance(minutes=2)
        assert client.get("/api/v1/me", headers=session).status_code == 401
        assert client.get("/api/v1/me", headers=api_bearer).status_code == 200
        world.clock.advance(days=2)
        assert client.get("/api/v1/me", headers=api_bearer).status_code == 401


# ------------------------------------------------------------------------------------ item 12: requests
def test_request_bodies_over_the_limit_get_413(world: World) -> None:
    with _client(world, max_body_bytes=4096) as client:
        big = {"username": "aggregator", "password": PASSWORD, "pad": "x" * 5000}
        response = client.post(LOGIN, json=big)
        assert response.status_code == 413
        assert "larger than 4096 bytes" in response.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it arrives
            yield b'{"username": "aggregator", "pad": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}'

        streamed = client.post(LOGIN, content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        assert _login(client).status_code == 200


def test_deeply_nested_json_gets_422_naming_the_limit(client: TestClient) -> None:
    for body in (b"[" * 100_000, b'{"a":' * 40 + b"1" + b"}" * 40):
        response = client.post(LOGIN, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert "nested deeper than 32 levels" in response.json()["detail"][0]["msg"]
    # brackets inside strings are text, not nesting
    text = {"username": "[" * 100, "password": "{" * 100}
    assert client.post(LOGIN, json=text).status_code == 401


def test_422_answers_do_not_echo_large_inputs(client: TestClient) -> None:
    huge = "y" * 200_000
    response = client.post(LOGIN, json={"username": huge, "password": "p"})
    assert response.status_code == 422
    assert len(response.content) < 2000
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "username"]
    assert error["input"].startswith("yyyy")
    assert "200000 characters" in error["input"]
    extra = client.post(LOGIN, json={"username": "a", "password": "b", "k" * 50_000: list(range(20_000))})
    assert extra.status_code == 422
    assert len(extra.content) < 2000


# ------------------------------------------------------------------------------------ item 12: headers
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy")


def test_every_answer_carries_the_security_headers(world: World) -> None:
    with _client(world) as client:
        client.app.add_api_route("/boom", lambda: 1 / 0)  # type: ignore[attr-defined]
        client.app.add_api_route("/teapot", _teapot)  # type: ignore[attr-defined]
        answers = [
            client.get("/"),
            client.get("/health"),
            client.get("/api/v1/me"),
            client.get("/no-such-page"),
            client.post(LOGIN, json={}),
            client.get("/boom"),
            client.get("/teapot"),
        ]
        assert [a.status_code for a in answers] == [200, 200, 401, 404, 422, 500, 418]
        for answer in answers:
            assert all(h in answer.headers for h in SECURITY_HEADERS), (answer.request.url, answer.headers)
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == ("SAMEORIGIN" if answer.status_code == 418 else "DENY")
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
            assert "strict-transport-security" not in answer.headers
        # the portal's front page runs its own script file only: nothing inline, nothing from elsewhere
        portal_csp = dict(d.strip().split(" ", 1) for d in answers[0].headers["content-security-policy"].split(";"))
        assert portal_csp["script-src"] == "'self'"
        assert "script-src" not in answers[1].headers["content-security-policy"]
        docs = client.get("/docs")
        assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]


def _teapot() -> None:
    """A route that sets one of the headers itself: its own value is kept."""
    raise HTTPException(418, "short and stout", headers={"X-Frame-Options": "SAMEORIGIN"})


def test_hsts_only_when_served_over_https(world: World) -> None:
    with _client(world, https=True, hsts_max_age_s=600) as client:
        assert client.get("/health").headers["strict-transport-security"] == "max-age=600; includeSubDomains"
    with TestClient(_client(world).app, base_url="https://platform.example") as client:
        assert "max-age=" in client.get("/health").headers["strict-transport-security"]


# ------------------------------------------------------------------------------------ item 12: grid areas
def test_grid_areas_need_a_sign_in_unless_configured_public(world: World) -> None:
    with _client(world) as client:
        assert client.get("/api/v1/grid-areas").status_code == 401
        assert client.get("/api/v1/grid-areas", headers={"Authorization": "Bearer nope"}).status_code == 401
        signed_in = client.get("/api/v1/grid-areas", headers=world.bearer("installer"))
        assert [a["id"] for a in signed_in.json()] == ["GA-1", "GA-2"]
    with _client(world, grid_areas_public=True) as client:
        assert [a["id"] for a in client.get("/api/v1/grid-areas").json()] == ["GA-1", "GA-2"]


def test_settings_describe_every_limit() -> None:
    fields = Settings.model_fields
    for name in (
        "login_token_ttl_min",
        "api_token_ttl_days",
        "login_max_failures_per_account",
        "login_max_failures_per_address",
        "login_max_concurrent_verifications",
        "password_max_chars",
        "max_body_bytes",
        "max_json_depth",
        "error_echo_max_chars",
        "grid_areas_public",
        "https",
    ):
        assert fields[name].description, name
    assert timedelta(minutes=Settings().login_token_ttl_min) == timedelta(hours=12)
