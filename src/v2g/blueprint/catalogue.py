"""A folder of blueprint files: every ``*.yaml`` in it, keyed by blueprint id."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from v2g.blueprint.errors import BlueprintError, Problem
from v2g.blueprint.loader import load_blueprint
from v2g.blueprint.model import Blueprint


@dataclass(frozen=True)
class CatalogueEntry:
    """A loaded, valid blueprint and the file it came from."""

    blueprint: Blueprint
    path: Path


@dataclass(frozen=True)
class Catalogue:
    """The valid blueprints of a folder, and the problems of the files that were left out."""

    entries: dict[str, CatalogueEntry] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def get(self, blueprint_id: str) -> Blueprint:
        """The blueprint with this id (KeyError if unknown)."""
        return self.entries[blueprint_id].blueprint


def load_catalogue(folder: Path) -> Catalogue:
    """Load every ``*.yaml``/``*.yml`` file of ``folder`` (sorted by name).

    A file that fails to load or validate is left out and its problems are reported; so is a file
    whose blueprint id an earlier file already uses.
    """
    entries: dict[str, CatalogueEntry] = {}
    problems: list[Problem] = []
    if not folder.is_dir():
        return Catalogue({}, (Problem(str(folder), "folder", "no such folder"),))
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            blueprint = load_blueprint(path)
        except BlueprintError as exc:
            problems.extend(exc.problems)
            continue
        bp_id = blueprint.blueprint.id
        if bp_id in entries:
            problems.append(Problem(str(path), bp_id, f"blueprint id already used by {entries[bp_id].path.name}"))
            continue
        entries[bp_id] = CatalogueEntry(blueprint, path)
    return Catalogue(entries, tuple(problems))
