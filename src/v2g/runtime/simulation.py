"""Simulated time: the runtime's jobs and dispatch in lock step with a simulated world (the twin).

The platform is the one :func:`~v2g.bootstrap.bootstrap` builds, with the twin at its ports and a
:class:`~v2g.sim.clock.SimulatedClock`. Each step runs the jobs due in it (planning, re-plans,
market calendar, housekeeping), then the frequency dispatch of its seconds (which moves the world
second by second in committed hours), then moves the world to the end of the step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from v2g.bootstrap import Platform


class World(Protocol):
    """What the platform runs against: it moves when told to."""

    def advance_to(self, until: datetime) -> None: ...


@dataclass
class SimulatedRun:
    """What a simulated run did: status lines per job, steps taken."""

    start: datetime
    end: datetime
    steps: int = 0
    lines: list[str] = field(default_factory=list)


async def run_simulated(
    platform: Platform,
    world: World,
    start: datetime,
    end: datetime,
    *,
    step: timedelta = timedelta(minutes=1),
    on_step: Callable[[datetime], None] | None = None,
) -> SimulatedRun:
    """Run the platform's operating day from ``start`` to ``end`` against ``world`` (simulated clock)."""
    run = SimulatedRun(start, end)
    scheduler = platform.scheduler
    scheduler.on_status = lambda job, at, status: run.lines.append(f"{at:%Y-%m-%d %H:%M} {job}: {status}")
    scheduler.start(start)
    t = start
    while t < end:
        t_next = min(t + step, end)
        await scheduler.run(until=t_next)
        if platform.dispatch is not None:
            await platform.dispatch.advance_to(t_next)
        world.advance_to(t_next)
        run.steps += 1
        t = t_next
        if on_step is not None:
            on_step(t)
    if platform.dispatch is not None:
        await platform.dispatch.stop()
    return run
