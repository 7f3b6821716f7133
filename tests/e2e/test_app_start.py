"""The app serves health and OpenAPI, and refuses to start on an unmigrated database."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from v2g.adapters.db.demo_seed import seed_demo
from v2g.api.app import create_app
from v2g.bootstrap import bootstrap
from v2g.cli import app as cli_app
from v2g.config import Settings
from v2g.runtime.app import build_app


def test_health_openapi_and_grid_areas(engine: Engine) -> None:
    seed_demo(engine)
    assert seed_demo(engine) == 0  # idempotent
    platform = bootstrap(Settings(database_url=engine.url.render_as_string(hide_password=False)))
    client = TestClient(create_app(platform))
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["database"] == engine.dialect.name
    assert "/api/v1/grid-areas" in client.get("/openapi.json").json()["paths"]
    assert client.get("/api/v1/grid-areas").status_code == 401  # signed-in actors only by default
    public = Settings(database_url=engine.url.render_as_string(hide_password=False), grid_areas_public=True)
    areas = TestClient(create_app(bootstrap(public))).get("/api/v1/grid-areas").json()
    assert [a["price_area"] for a in areas] == ["SE3", "SE3", "SE4"]


def test_serve_refuses_unmigrated_database(tmp_path: Path, monkeypatch: object) -> None:
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    result = runner.invoke(cli_app, ["serve"], env={"V2G_DATABASE_URL": url})
    assert result.exit_code == 2
    assert "run `v2g db upgrade`" in result.output


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"V2G_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    assert runner.invoke(cli_app, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(cli_app, ["db", "current"], env=env)
    assert result.exit_code == 0
    assert "up to date" in result.output


def test_front_page_links_to_the_api_docs_and_the_blueprint(engine: Engine) -> None:
    platform = bootstrap(Settings(database_url=engine.url.render_as_string(hide_password=False)))
    client = TestClient(build_app(platform))
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # the portal's sign-in page, with the links for developers
    for link in ('action="/login"', 'href="/docs"', 'href="/api/v1/blueprints/sweden_private_ev/render"'):
        assert link in page.text
    blueprint = client.get("/api/v1/blueprints/sweden_private_ev/render")
    assert blueprint.status_code == 200


def test_a_platform_built_without_its_ports_answers_503_naming_the_port(engine: Engine) -> None:
    platform = bootstrap(Settings(database_url=engine.url.render_as_string(hide_password=False)), engine=engine)
    platform.health = None
    platform.grid_areas = None
    client = TestClient(create_app(platform))
    health = client.get("/health")
    assert health.status_code == 503
    assert "health check" in health.json()["detail"]
    areas = client.get("/api/v1/grid-areas")
    assert areas.status_code == 503
    assert "grid area reader" in areas.json()["detail"]
