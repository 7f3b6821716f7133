"""/api/v1/blueprints: the list, the JSON export and the HTML page, loaded once per app."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from v2g.api import blueprints as blueprints_api
from v2g.api.app import create_app
from v2g.blueprint import export_blueprint, load_blueprint
from v2g.blueprint.catalogue import Catalogue
from v2g.bootstrap import bootstrap
from v2g.config import BLUEPRINTS_DIR, Settings


def _client(tmp_path: Path, folder: Path = BLUEPRINTS_DIR) -> TestClient:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}", blueprints_dir=folder)
    return TestClient(create_app(bootstrap(settings, check_schema=False)))


def test_list_export_and_render(tmp_path: Path) -> None:
    client = _client(tmp_path)
    listing = client.get("/api/v1/blueprints")
    assert listing.status_code == 200
    by_id = {b["id"]: b for b in listing.json()}
    assert set(by_id) == {"sweden_private_ev", "sweden_fleet_depot"}
    sweden = by_id["sweden_private_ev"]
    assert (sweden["stages"], sweden["lanes"], sweden["items"], sweden["gates"]) == (9, 25, 285, 7)
    assert sweden["export_url"] == "/api/v1/blueprints/sweden_private_ev"

    exported = client.get(sweden["export_url"])
    assert exported.status_code == 200
    assert exported.json() == export_blueprint(load_blueprint(BLUEPRINTS_DIR / "sweden-private-ev.yaml"))

    page = client.get(sweden["render_url"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="line-of-visibility"' in page.text

    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/api/v1/blueprints",
        "/api/v1/blueprints/{blueprint_id}",
        "/api/v1/blueprints/{blueprint_id}/render",
    } <= set(paths)


def test_unknown_blueprint_is_404_naming_it(tmp_path: Path) -> None:
    client = _client(tmp_path)
    for path in ("/api/v1/blueprints/atlantis", "/api/v1/blueprints/atlantis/render"):
        response = client.get(path)
        assert response.status_code == 404
        assert "unknown blueprint 'atlantis'" in response.json()["detail"]
        assert "sweden_private_ev" in response.json()["detail"]


def test_blueprints_load_once_and_broken_files_are_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "blueprints"
    folder.mkdir()
    shutil.copy(BLUEPRINTS_DIR / "sweden-fleet-depot.yaml", folder)
    (folder / "broken.yaml").write_text("blueprint: {id: broken}\n", encoding="utf-8")
    calls: list[Path] = []
    real = blueprints_api.load_catalogue

    def counting(path: Path) -> Catalogue:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(blueprints_api, "load_catalogue", counting)
    client = _client(tmp_path, folder)
    assert [b["id"] for b in client.get("/api/v1/blueprints").json()] == ["sweden_fleet_depot"]
    assert client.get("/api/v1/blueprints/sweden_fleet_depot").status_code == 200
    assert client.get("/api/v1/blueprints/sweden_fleet_depot/render").status_code == 200
    assert calls == [folder]
