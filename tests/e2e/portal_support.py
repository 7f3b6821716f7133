"""A platform with one owner signed up and one settled month, and a browser-like client of the portal."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.e2e.test_settlement_api import OCTOBER, _october
from tests.journey_support import PASSWORD, TEST_BLUEPRINT, World, seed_world, signup_body
from v2g.bootstrap import Platform, bootstrap
from v2g.config import Settings
from v2g.runtime.app import build_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Portal:
    world: World
    platform: Platform
    client: TestClient


def build_portal(engine: Engine, *, settle: bool = False) -> Portal:
    """c1 (served by the aggregator) and c2 (by aggregator2) signed up; with ``settle``, October settled for both."""
    world = seed_world(engine)
    settings = Settings(
        database_url=str(engine.url),
        blueprint_path=TEST_BLUEPRINT,
        settlement_dso_tariffs={"org-dso": "ellevio"},
        settlement_job=False,
    )
    platform = bootstrap(settings, engine=engine, clock=world.clock, journeys=world.service)
    client = TestClient(build_app(platform, demo_logins=[("owner-c1", PASSWORD, "owner")]))
    for cid, agg in (("c1", "aggregator"), ("c2", "aggregator2")):
        assert client.post("/api/v1/customers", headers=world.bearer(agg), json=signup_body(cid)).status_code == 201
    if settle:
        _october(world, platform)
    return Portal(world, platform, client)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html[:2000]
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the form; the session's CSRF token for the next forms."""
    client.cookies.clear()
    token = csrf_of(client.get("/").text)
    answer = client.post(
        "/login", data={"csrf_token": token, "username": username, "password": password}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    home = client.get("/")
    return csrf_of(home.text)


__all__ = ["OCTOBER", "PASSWORD", "Portal", "build_portal", "csrf_of", "sign_in"]
