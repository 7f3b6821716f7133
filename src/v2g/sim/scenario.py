"""Twin scenarios: how many households, how many days, from when, with which behaviour.

A scenario file (YAML) names what a study varies; everything else comes from the platform's own
configuration. Households get their EV and charger from the platform's records; their plug-in
behaviour (arrival, stay, energy) is drawn from the ElaadNL home-charging statistics shipped with
the simulator, deterministically from the seed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from v2g.services.planning.ports import AreaLimits
from v2g.sim.operating_twin import OperatingTwin, PlugSession, TwinEv
from v2g.sim.wallbox import EvBehaviour

STRATEGIES = ("uncontrolled", "smart", "v2g-spot", "v2g-reserves")


class ScenarioError(ValueError):
    """A scenario file is wrong; the message names the field."""


@dataclass(frozen=True, slots=True)
class TwinScenario:
    """What one twin run simulates."""

    households: int = 20
    days: int = 3
    start: datetime = datetime(2026, 11, 16, 12, 0, tzinfo=UTC)  # a Monday, 13:00 Swedish time
    seed: int = 0
    strategy: str = "v2g-reserves"
    plug_in_probability: float = 0.9  # share of evenings an EV comes home and plugs in
    frequency: bool = True  # run frequency dispatch on the recorded day in committed hours
    step_minutes: int = 1  # how far the world moves between two looks at the job schedule
    replan_check_s: int = 60  # how often changes (plug-ins, departures, SoC deviations) are re-planned
    evs_per_area: int = 0  # households per generated grid area (0: the demo's three areas)

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.households <= 100_000:
            problems.append(f"households: {self.households} must be between 1 and 100000")
        if not 1 <= self.days <= 366:
            problems.append(f"days: {self.days} must be between 1 and 366")
        if self.start.tzinfo is None:
            problems.append("start: must carry a UTC offset, e.g. 2026-11-16T12:00:00Z")
        elif self.start.minute or self.start.second or self.start.microsecond:
            problems.append(f"start: {self.start.isoformat()} must be on a clock hour")
        if self.strategy not in STRATEGIES:
            problems.append(f"strategy: {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        if not 0.0 <= self.plug_in_probability <= 1.0:
            problems.append(f"plug_in_probability: {self.plug_in_probability} must be between 0 and 1")
        if not 5 <= self.replan_check_s <= 3600:
            problems.append(f"replan_check_s: {self.replan_check_s} must be between 5 and 3600")
        if not 0 <= self.evs_per_area <= 100_000:
            problems.append(f"evs_per_area: {self.evs_per_area} must be between 0 and 100000")
        if not 1 <= self.step_minutes <= 15:
            problems.append(f"step_minutes: {self.step_minutes} must be between 1 and 15")
        if problems:
            raise ScenarioError("; ".join(problems))

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


def parse_scenario(data: Mapping[str, Any]) -> TwinScenario:
    """A scenario from a mapping (unknown keys are refused by name)."""
    known = {f.name for f in fields(TwinScenario)}
    unknown = sorted(set(data) - known)
    if unknown:
        msg = f"{', '.join(unknown)}: unknown field(s); known: {', '.join(sorted(known))}"
        raise ScenarioError(msg)
    values = dict(data)
    if isinstance(values.get("start"), str):
        try:
            values["start"] = datetime.fromisoformat(values["start"].replace("Z", "+00:00"))
        except ValueError as exc:
            msg = f"start: {values['start']!r} is not an ISO 8601 time"
            raise ScenarioError(msg) from exc
    if isinstance(values.get("start"), datetime):
        values["start"] = values["start"].astimezone(UTC) if values["start"].tzinfo else values["start"]
    try:
        return TwinScenario(**values)
    except TypeError as exc:
        raise ScenarioError(str(exc)) from exc


def load_scenario(path: Path) -> TwinScenario:
    """Read a YAML scenario file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        msg = f"{path}: {exc}"
        raise ScenarioError(msg) from exc
    if not isinstance(data, dict):
        msg = f"{path}: expected a mapping of fields"
        raise ScenarioError(msg)
    return parse_scenario(data)


def plug_sessions(
    scenario: TwinScenario, household: TwinEv, rng: random.Random, behaviour: EvBehaviour
) -> list[PlugSession]:
    """The household's evenings at home over the scenario (from the behaviour statistics)."""
    sessions: list[PlugSession] = []
    soc_kwh = household.battery_kwh * rng.uniform(0.3, 0.7)
    for d in range(-1, scenario.days + 1):
        day = scenario.start + timedelta(days=d)
        if rng.random() > scenario.plug_in_probability:
            continue
        drawn = behaviour.session(day).with_battery(household.battery_kwh)
        arrival = drawn.arrival_at
        stay = max(drawn.departure_at - arrival, timedelta(hours=2))
        departure = arrival + stay
        if sessions and arrival < sessions[-1].departure_at + timedelta(hours=1):
            continue
        if departure <= scenario.start or arrival >= scenario.end:
            continue
        arrival_soc = max(0.15 * household.battery_kwh, min(soc_kwh - drawn.energy_kwh, 0.9 * household.battery_kwh))
        charging_h = (departure - max(arrival, scenario.start)).total_seconds() / 3600.0  # the platform runs from start
        reachable = arrival_soc + 0.8 * household.max_charge_kw * 0.92 * charging_h
        target = min(0.8 * household.battery_kwh, reachable, max(arrival_soc, drawn.arrival_soc_kwh + drawn.energy_kwh))
        sessions.append(PlugSession(arrival, departure, round(arrival_soc, 3), round(max(target, arrival_soc), 3)))
        soc_kwh = target
    return sessions


def build_twin(scenario: TwinScenario, households: Sequence[TwinEv], areas: Sequence[AreaLimits]) -> OperatingTwin:
    """The scenario's world: the households' EVs with their plug-in sessions, deterministic from the seed."""
    rng = random.Random(scenario.seed)
    behaviour = EvBehaviour(scenario.seed)
    sessions = {h.ev_id: plug_sessions(scenario, h, rng, behaviour) for h in households}
    return OperatingTwin(list(households), sessions, scenario.start, list(areas))
