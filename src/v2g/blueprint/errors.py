"""Problems found in a blueprint file, each naming the file, the item (or place) and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem: ``file`` (as given), ``where`` (an item/stage/lane/gate id or a path) and ``message``."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}"


class BlueprintError(Exception):
    """A blueprint file that cannot be used; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
