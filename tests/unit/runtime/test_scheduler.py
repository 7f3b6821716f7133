"""The runtime's job scheduler on simulated and accelerated clocks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from v2g.adapters.clock import AcceleratedClock
from v2g.services.operations.scheduler import Job, Scheduler
from v2g.sim.clock import SimulatedClock

START = datetime(2026, 3, 2, 0, 7, tzinfo=UTC)


def _recorder(log: list[tuple[str, datetime]], name: str, clock: SimulatedClock):  # type: ignore[no-untyped-def]
    async def run(due_at: datetime) -> str:
        assert clock.now() == due_at  # a simulated clock stands exactly at the due time
        log.append((name, due_at))
        return f"{name} ok"

    return run


async def test_jobs_run_at_their_phase_in_due_order() -> None:
    clock = SimulatedClock(START)
    log: list[tuple[str, datetime]] = []
    statuses: list[str] = []
    scheduler = Scheduler(clock, on_status=lambda name, at, s: statuses.append(s))
    scheduler.add(Job("plan", timedelta(minutes=15), _recorder(log, "plan", clock)))
    scheduler.add(Job("market", timedelta(hours=1), _recorder(log, "market", clock), offset=timedelta(minutes=30)))
    await scheduler.run(until=START + timedelta(hours=1))
    assert log == [
        ("plan", datetime(2026, 3, 2, 0, 15, tzinfo=UTC)),
        ("plan", datetime(2026, 3, 2, 0, 30, tzinfo=UTC)),
        ("market", datetime(2026, 3, 2, 0, 30, tzinfo=UTC)),  # ties run in registration order
        ("plan", datetime(2026, 3, 2, 0, 45, tzinfo=UTC)),
        ("plan", datetime(2026, 3, 2, 1, 0, tzinfo=UTC)),
    ]
    assert clock.now() == START + timedelta(hours=1)
    assert statuses.count("plan ok") == 4


async def test_a_failing_job_is_retried_and_does_not_stop_the_others() -> None:
    clock = SimulatedClock(START)
    calls: list[datetime] = []

    async def flaky(due_at: datetime) -> str | None:
        calls.append(due_at)
        if len(calls) == 1:
            msg = "feed unavailable"
            raise RuntimeError(msg)
        return None

    scheduler = Scheduler(clock)
    bad = scheduler.add(Job("flaky", timedelta(minutes=10), flaky))
    good = scheduler.add(Job("steady", timedelta(minutes=5), _recorder([], "steady", clock)))
    await scheduler.run(until=START + timedelta(minutes=30))
    assert len(calls) == 3
    assert bad.failures == 1
    assert bad.runs == 2
    assert bad.last_error is None
    assert good.runs == 6


async def test_an_overrunning_job_is_not_run_twice_to_catch_up() -> None:
    clock = SimulatedClock(START)
    dues: list[datetime] = []

    async def slow(due_at: datetime) -> None:
        dues.append(due_at)
        clock.advance_to(due_at + timedelta(minutes=40))  # took 40 min of a 15-min period

    scheduler = Scheduler(clock)
    scheduler.add(Job("slow", timedelta(minutes=15), slow))
    await scheduler.run(until=START + timedelta(hours=2))
    gaps = {b - a for a, b in itertools.pairwise(dues)}
    assert gaps == {timedelta(minutes=45)}


def test_job_parameters_are_checked() -> None:
    async def nothing(due_at: datetime) -> None:
        return None

    with pytest.raises(ValueError, match=r"job\[x\]\.every"):
        Job("x", timedelta(0), nothing)
    with pytest.raises(ValueError, match=r"job\[x\]\.offset"):
        Job("x", timedelta(minutes=5), nothing, offset=timedelta(minutes=5))
    scheduler = Scheduler(SimulatedClock(START))
    scheduler.add(Job("x", timedelta(minutes=5), nothing))
    with pytest.raises(ValueError, match="already scheduled"):
        scheduler.add(Job("x", timedelta(minutes=5), nothing))


async def test_accelerated_clock_runs_faster_than_real_time() -> None:
    clock = AcceleratedClock(3600.0, START)  # an hour a second
    runs: list[datetime] = []

    async def tick(due_at: datetime) -> None:
        runs.append(due_at)

    scheduler = Scheduler(clock)
    scheduler.add(Job("tick", timedelta(minutes=15), tick))
    await scheduler.run(until=START + timedelta(minutes=46))
    assert [r.minute for r in runs] == [15, 30, 45]
    assert clock.now() >= START + timedelta(minutes=46)
    with pytest.raises(ValueError, match="speed"):
        AcceleratedClock(0)
