"""Load a blueprint YAML file into a :class:`~v2g.blueprint.model.Blueprint`.

The YAML is read with YAML 1.2 booleans (only ``true``/``false``), so a gate's ``on: entry`` is
never turned into a boolean, and duplicate mapping keys are refused instead of silently overwritten.
Schema errors are translated into :class:`~v2g.blueprint.errors.Problem` lines that name the file,
the nearest item (or stage, lane, gate) id and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from v2g.blueprint.errors import BlueprintError, Problem
from v2g.blueprint.model import Blueprint
from v2g.blueprint.validate import validate_blueprint

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """SafeLoader with YAML 1.2 booleans and duplicate-key detection."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            msg = f"duplicate key {key!r} (line {key_node.start_mark.line + 1})"
            raise yaml.constructor.ConstructorError(None, None, msg, key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, file: str) -> Any:
    """Parse YAML text; syntax errors become a :class:`BlueprintError` naming the file and line."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else "yaml"
        raise BlueprintError([Problem(file, where, f"invalid YAML: {exc.problem or exc}")]) from exc
    except yaml.YAMLError as exc:
        raise BlueprintError([Problem(file, "yaml", f"invalid YAML: {exc}")]) from exc


def blueprint_from_data(data: Any, file: str, *, validate: bool = True) -> Blueprint:
    """Build (and by default validate) a blueprint from parsed YAML data."""
    if not isinstance(data, dict):
        raise BlueprintError(
            [Problem(file, "blueprint", "the file must hold a mapping with 'blueprint', 'stages', ...")]
        )
    try:
        blueprint = Blueprint.model_validate(data)
    except ValidationError as exc:
        raise BlueprintError(_schema_problems(exc, data, file)) from exc
    if validate:
        problems = validate_blueprint(blueprint, file=file)
        if problems:
            raise BlueprintError(problems)
    return blueprint


def load_blueprint(path: Path | str, *, validate: bool = True) -> Blueprint:
    """Read a blueprint YAML file.

    Raises :class:`BlueprintError` listing every problem: unreadable file, YAML syntax, schema
    errors and (unless ``validate`` is off) the referential checks of :func:`validate_blueprint`.
    """
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise BlueprintError([Problem(file, "file", "no such file")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BlueprintError([Problem(file, "file", f"cannot read: {exc}")]) from exc
    return blueprint_from_data(parse_yaml(text, file), file, validate=validate)


def _schema_problems(exc: ValidationError, data: dict[str, Any], file: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors():
        loc = tuple(error["loc"])
        where, field = _locate(data, loc)
        message = _message(error)
        text = f"{field}: {message}" if field else message
        if (where, text) not in seen:
            seen.add((where, text))
            problems.append(Problem(file, where, text))
    return problems


def _locate(data: Any, loc: tuple[int | str, ...]) -> tuple[str, str]:
    """The nearest enclosing object's id (or the path to it) and the field path below it."""
    where = ".".join(str(part) for part in loc[:1]) or "blueprint"
    node: Any = data
    cut = 0
    for i, part in enumerate(loc):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and isinstance(node.get("id"), str) and node["id"].strip():
            where, cut = node["id"], i + 1
        elif isinstance(node, dict) and "stage" in node and "lane" in node and cut <= i:
            where, cut = f"cell {node.get('stage')} x {node.get('lane')}", i + 1
    if cut == 0:
        where = _path(loc[:2]) if len(loc) > 1 and isinstance(loc[1], int) else _path(loc[:1]) or "blueprint"
        cut = 2 if len(loc) > 1 and isinstance(loc[1], int) else 1
    field = _path(loc[cut:])
    return where, field


def _path(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Any) -> str:
    kind = error["type"]
    if kind in ("string_too_short", "too_short"):
        return "must not be empty"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_pattern_mismatch":
        return f"{error['input']!r} is not a lower-case dotted identifier (a-z, 0-9, _ and .)"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")
