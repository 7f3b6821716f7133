"""Workaround for the ``ocpp`` 2.1.0 key-case bug (OCPP 2.1 only), and memoised key conversion.

The library turns ``setpoint_l2`` into ``setpointL2``, but the 2.1 schemas say ``setpoint_L2``
(likewise ``maxChargePower_L2``, ``fixedPFAbsorb``, ``priceScheduleID`` ...). With
``additionalProperties: false`` such payloads fail validation before they are sent. This module
builds an exact rename table from the JSON schemas shipped with the library and wraps
``ocpp.charge_point.snake_to_camel_case`` with it. Decoding incoming keys already works.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import ocpp.charge_point as _cp

_original = _cp.snake_to_camel_case
_original_snake = _cp.camel_to_snake_case
_patched = False


def _property_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            yield from props
        for value in node.values():
            yield from _property_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _property_names(value)


def _schema_names(version: str) -> set[str]:
    names: set[str] = set()
    folder = resources.files("ocpp") / version / "schemas"
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            names.update(_property_names(json.loads(entry.read_text(encoding="utf-8"))))
    return names


def rename_table() -> dict[str, str]:
    """Library camelCase key -> schema key, for every 2.1 name the library gets wrong."""
    table: dict[str, str] = {}
    correct_elsewhere = _schema_names("v201")
    v21_names = _schema_names("v21")
    for name in v21_names:
        snake = next(iter(_cp.camel_to_snake_case({name: None})))
        produced = next(iter(_original({snake: None})))
        if produced != name and produced not in correct_elsewhere and produced not in v21_names:
            table[produced] = name
    return table


def install() -> None:
    """Patch the library once (idempotent)."""
    global _patched
    if _patched:
        return
    table = rename_table()

    @functools.lru_cache(maxsize=4096)
    def key(snake: str) -> str:
        produced = str(next(iter(_original({snake: None}))))
        return table.get(produced, produced)

    def fixed(data: Any) -> Any:
        if isinstance(data, dict):
            return {key(k): fixed(v) for k, v in data.items()}
        if isinstance(data, list):
            return [fixed(v) for v in data]
        return data

    @functools.lru_cache(maxsize=4096)
    def snake_key(camel: str) -> str:
        return str(next(iter(_original_snake({camel: None}))))

    def fast_snake(data: Any) -> Any:
        if isinstance(data, dict):
            return {snake_key(k): fast_snake(v) for k, v in data.items()}
        if isinstance(data, list):
            return [fast_snake(v) for v in data]
        return data

    _cp.snake_to_camel_case = fixed
    _cp.camel_to_snake_case = fast_snake  # same conversion, memoised per key (it was regex work per key)
    _patched = True
