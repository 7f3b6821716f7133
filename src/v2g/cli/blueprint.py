"""`v2g blueprint ...`: validate, render and export service blueprint files."""

from __future__ import annotations

import json
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from v2g.blueprint.errors import BlueprintError, Problem
from v2g.blueprint.export import export_blueprint
from v2g.blueprint.loader import load_blueprint
from v2g.blueprint.model import Blueprint
from v2g.blueprint.render import render
from v2g.blueprint.validate import validate_blueprint
from v2g.config import Settings

app = typer.Typer(
    help="Service blueprints as data: validate, render (HTML, Markdown, CSV) and export (JSON).",
    no_args_is_help=True,
)

FileArg = Annotated[
    Path | None,
    typer.Argument(help="Blueprint YAML file (default: the shipped Swedish blueprint, or V2G_BLUEPRINT_PATH)."),
]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output file (default: standard output).")]


class RenderFormat(StrEnum):
    """Formats of `render`."""

    HTML = "html"
    MD = "md"
    CSV = "csv"


class ExportFormat(StrEnum):
    """Formats of `export`."""

    JSON = "json"


def _file(file: Path | None) -> Path:
    return file if file is not None else Settings().blueprint_path


def _fail(problems: list[Problem]) -> typer.Exit:
    for problem in problems:
        typer.echo(str(problem), err=True)
    return typer.Exit(code=1)


def _load(path: Path) -> Blueprint:
    try:
        return load_blueprint(path)
    except BlueprintError as exc:
        raise _fail(exc.problems) from exc


def _write(text: str, out: Path | None) -> None:
    """Write to ``out`` atomically (a crash never leaves half a file), or to stdout."""
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    out = out.resolve()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            Path(tmp).replace(out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        typer.echo(f"{out}: out: cannot write: {exc.strerror or exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"wrote {out}", err=True)


@app.command()
def validate(file: FileArg = None) -> None:
    """Check the schema and every reference; print one line per problem (exit 1) or a summary (exit 0)."""
    path = _file(file)
    try:
        blueprint = load_blueprint(path, validate=False)
    except BlueprintError as exc:
        raise _fail(exc.problems) from exc
    problems = validate_blueprint(blueprint, file=str(path))
    if problems:
        raise _fail(problems)
    typer.echo(
        f"{path}: valid: {len(blueprint.stages)} stages, {len(blueprint.lanes)} lanes, "
        f"{len(blueprint.items())} items, {len(blueprint.gates)} gates"
    )


@app.command("render")
def render_cmd(
    file: FileArg = None,
    fmt: Annotated[RenderFormat, typer.Option("--format", "-f", help="Output format.")] = RenderFormat.HTML,
    out: OutOpt = None,
) -> None:
    """Render the blueprint: a standalone HTML swimlane page, Markdown, or CSV (one row per item)."""
    _write(render(_load(_file(file)), fmt.value), out)


@app.command()
def export(
    file: FileArg = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="Export format.")] = ExportFormat.JSON,
    out: OutOpt = None,
) -> None:
    """Export the blueprint as the JSON contract: stages, lanes and cells with their items."""
    data = export_blueprint(_load(_file(file)))
    _write(json.dumps(data, ensure_ascii=False, indent=2) + "\n", out)
