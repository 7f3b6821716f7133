"""`v2g blueprint validate|render|export`: exit codes, problem lines and outputs."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.unit.blueprint_helpers import base, write
from v2g.cli import app
from v2g.config import BLUEPRINTS_DIR

runner = CliRunner()


def test_help_on_every_command() -> None:
    for args in (["blueprint"], ["blueprint", "validate"], ["blueprint", "render"], ["blueprint", "export"]):
        result = runner.invoke(app, [*args, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


def test_validate_shipped_default_file() -> None:
    result = runner.invoke(app, ["blueprint", "validate"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("sweden-private-ev.yaml: valid: 9 stages, 25 lanes, 285 items, 7 gates")


def test_validate_second_blueprint() -> None:
    result = runner.invoke(app, ["blueprint", "validate", str(BLUEPRINTS_DIR / "sweden-fleet-depot.yaml")])
    assert result.exit_code == 0, result.output
    assert "valid: 9 stages, 14 lanes" in result.output


def test_validate_broken_file_exits_1_with_one_line_per_problem(tmp_path: Path) -> None:
    data = base()
    data["lanes"][1]["actor"] = "ghost"
    data["gates"][0]["requires"] = {"task": "usage.back.dso.ghost"}
    path = write(tmp_path / "broken.yaml", data)
    result = runner.invoke(app, ["blueprint", "validate", str(path)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert f"{path}: front.aggregator: lane names unknown actor 'ghost'" in lines
    assert f"{path}: usage_entry: gate names unknown task 'usage.back.dso.ghost'" in lines
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert result.stdout == ""


def test_validate_schema_error_and_missing_file(tmp_path: Path) -> None:
    data = base()
    data["cells"][0]["items"][0]["text"] = ""
    path = write(tmp_path / "empty.yaml", data)
    result = runner.invoke(app, ["blueprint", "validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}: selection_request.customer_action.request_quote: text: must not be empty" in result.stderr
    result = runner.invoke(app, ["blueprint", "validate", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 1
    assert "absent.yaml: file: no such file" in result.stderr


def test_render_each_format(tmp_path: Path) -> None:
    for fmt, marker in (("html", "<!DOCTYPE html>"), ("md", "| layer | lane |"), ("csv", "stage,lane,layer")):
        out = tmp_path / "sub" / f"blueprint.{fmt}"
        result = runner.invoke(app, ["blueprint", "render", "--format", fmt, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert marker in out.read_text(encoding="utf-8")
    assert not [p for p in (tmp_path / "sub").iterdir() if p.name.startswith(".")]  # no temporary files left


def test_render_bad_format_and_broken_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["blueprint", "render", "--format", "pdf"])
    assert result.exit_code == 2
    data = base()
    data["stages"][1]["timeline"] = ""
    path = write(tmp_path / "b.yaml", data)
    out = tmp_path / "out.html"
    result = runner.invoke(app, ["blueprint", "render", str(path), "--out", str(out)])
    assert result.exit_code == 1
    assert f"{path}: usage: stage has no timeline" in result.stderr
    assert not out.exists()


def test_export_json_to_stdout_and_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["blueprint", "export", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"stages", "lanes", "cells"}
    out = tmp_path / "bp.json"
    result = runner.invoke(
        app, ["blueprint", "export", str(BLUEPRINTS_DIR / "sweden-fleet-depot.yaml"), "-o", str(out)]
    )
    assert result.exit_code == 0
    assert len(json.loads(out.read_text(encoding="utf-8"))["lanes"]) == 14
