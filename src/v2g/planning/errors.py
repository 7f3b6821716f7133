"""Errors of the fleet planner."""

from __future__ import annotations


class PlanningInputError(ValueError):
    """Planner input is malformed or impossible; the message names the EV, site, area or interval and why."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)
