"""The runtime's job scheduler: the operating day's jobs at their due times, on any clock.

Each job has a period and a phase (``every=15 min, offset=0`` runs at :00, :15, ...). The
scheduler runs due jobs one after the other in due order (ties in registration order) and then
waits on the clock until the next one is due. On the system clock that is a real wait; on an
accelerated clock the wait is shortened by its factor; on a simulated clock the wait only moves
simulated time forward, so a simulated day runs as fast as the jobs compute, with the same code
and in the same order as in production.

A job that raises is logged with its name and retried at its next due time; it never stops the
others. A job that overruns its period is not run twice to catch up: the next due time is the
first one after the moment it finished.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from v2g.services.clock import RuntimeClock

log = logging.getLogger("v2g.runtime")

EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday 00:00 UTC: the phase reference of every job


JobRun = Callable[[datetime], Awaitable[str | None]]
"""A job's body: called with its due time; returns a one-line status for the console (or None)."""


@dataclass(slots=True)
class Job:
    """A periodic job of the operating day."""

    name: str
    every: timedelta
    run: JobRun
    offset: timedelta = timedelta(0)
    runs: int = 0
    failures: int = 0
    last_status: str | None = None
    last_error: str | None = None
    last_due_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.every <= timedelta(0):
            msg = f"job[{self.name}].every: {self.every} must be positive"
            raise ValueError(msg)
        if not timedelta(0) <= self.offset < self.every:
            msg = f"job[{self.name}].offset: {self.offset} must be in [0, every)"
            raise ValueError(msg)

    def next_due(self, after: datetime) -> datetime:
        """The first due time at or after ``after``."""
        k = -((EPOCH + self.offset - after) // self.every)  # ceil((after - epoch - offset) / every)
        return EPOCH + self.offset + k * self.every


@dataclass(slots=True)
class Scheduler:
    """Runs jobs at their due times on a :class:`RuntimeClock`."""

    clock: RuntimeClock
    jobs: list[Job] = field(default_factory=list)
    on_status: Callable[[str, datetime, str], None] | None = None
    _due: dict[str, datetime] = field(default_factory=dict)

    def add(self, job: Job) -> Job:
        """Register a job (names are unique)."""
        if any(j.name == job.name for j in self.jobs):
            msg = f"job[{job.name}]: a job of that name is already scheduled"
            raise ValueError(msg)
        self.jobs.append(job)
        return job

    def job(self, name: str) -> Job:
        """The job called ``name``."""
        for job in self.jobs:
            if job.name == name:
                return job
        msg = f"job[{name}]: no such job"
        raise KeyError(msg)

    def start(self, at: datetime | None = None) -> None:
        """Set every job's first due time (from ``at``, default now); jobs added later start on their own."""
        now = at or self.clock.now()
        for job in self.jobs:
            self._due[job.name] = job.next_due(now)

    def next_due(self) -> tuple[datetime, Job] | None:
        """The job due first (ties in registration order)."""
        if not self.jobs:
            return None
        now = self.clock.now()
        for job in self.jobs:
            self._due.setdefault(job.name, job.next_due(now))
        job = min(self.jobs, key=lambda j: self._due[j.name])
        return self._due[job.name], job

    async def run_due(self) -> int:
        """Run every job that is due now; return how many ran."""
        ran = 0
        while (nxt := self.next_due()) is not None and nxt[0] <= self.clock.now():
            due_at, job = nxt
            await self._run(job, due_at)
            ran += 1
        return ran

    async def run(self, until: datetime | None = None) -> None:
        """Run jobs at their due times until ``until`` (forever without it)."""
        if not self._due:
            self.start()
        while (nxt := self.next_due()) is not None:
            due_at, job = nxt
            if until is not None and due_at >= until:
                await self.clock.sleep_until(until)
                return
            await self.clock.sleep_until(due_at)
            await self._run(job, due_at)
        if until is not None:
            await self.clock.sleep_until(until)

    async def _run(self, job: Job, due_at: datetime) -> None:
        job.last_due_at = due_at
        try:
            status = await job.run(due_at)
        except Exception as exc:  # a failing job is reported and retried at its next due time
            job.failures += 1
            job.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed at %s", job.name, due_at.isoformat())
            status = f"failed: {job.last_error}"
        else:
            job.runs += 1
            job.last_error = None
        job.last_status = status
        self._due[job.name] = job.next_due(max(self.clock.now(), due_at + timedelta(microseconds=1)))
        if status and self.on_status is not None:
            self.on_status(job.name, due_at, status)


def schedule(clock: RuntimeClock, jobs: Sequence[Job]) -> Scheduler:
    """A scheduler with ``jobs`` registered."""
    scheduler = Scheduler(clock)
    for job in jobs:
        scheduler.add(job)
    return scheduler
