"""How much reserve the fleet can promise for an hour before its EVs arrive.

FCR is sold in D-1 auctions whose gates close (00:30 and 18:00 the day before) while most of the
day's EVs are still on the road, so a bid rests on a forecast, not on the EVs plugged in:

* per EV and hour, the probability of being plugged in for the whole hour is the share of the past
  ``weeks`` same weekdays (local time) on which it was, from the plug-in history known at the time
  the forecast is made (nothing later is used), narrowed by what the owner said (the weekday hours
  the car is away);
* the EVs are not independent (a holiday, the weather, a school break move many at once): the
  correlation between them is estimated from the same history (how much more the fleet total
  varies from week to week than independent EVs would) and enters the spread of the total;
* the firm capacity offered is the mean less ``z`` standard deviations of the fleet total
  (``confidence``, one-sided).

:func:`synthetic_history` draws plug-in histories with home-charging habits (3-5 nights a week,
weekday arrival 16-20 h, departure 6-8 h, a shared day factor) for tests, studies and the demo.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from statistics import NormalDist
from zoneinfo import ZoneInfo

from v2g.units import HOUR, ensure_utc

WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class PlugSession:
    """One stay of an EV at its charger (``unplugged_at`` None: still plugged in)."""

    ev_id: str
    plugged_at: datetime
    unplugged_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "plugged_at", ensure_utc(self.plugged_at, field=f"session[{self.ev_id}].plugged_at"))
        if self.unplugged_at is not None:
            end = ensure_utc(self.unplugged_at, field=f"session[{self.ev_id}].unplugged_at")
            if end <= self.plugged_at:
                msg = f"session[{self.ev_id}].unplugged_at: {end.isoformat()} is not after plugged_at"
                raise ValueError(msg)
            object.__setattr__(self, "unplugged_at", end)


@dataclass(frozen=True, slots=True)
class OwnerHabit:
    """What the owner said: on weekdays the car is away from ``leaves_local`` to ``returns_local``."""

    ev_id: str
    leaves_local: time | None = None
    returns_local: time | None = None

    def away(self, local_start: datetime) -> bool:
        """Whether the hour starting at ``local_start`` (local time) overlaps the stated weekday absence."""
        if self.leaves_local is None or self.returns_local is None or local_start.weekday() >= 5:
            return False
        start = local_start.time()
        end = (local_start + HOUR).time()
        return start < self.returns_local and (end > self.leaves_local or end == time(0))


@dataclass(frozen=True, slots=True)
class AvailabilityForecast:
    """The fleet's forecast reserve power per delivery hour, made at ``made_at``."""

    made_at: datetime
    hours: tuple[datetime, ...]
    mean_kw: tuple[float, ...]
    firm_kw: tuple[float, ...]  # at ``confidence``
    correlation: float
    confidence: float
    weeks: int  # history weeks used
    evs: int

    def firm(self, hour: datetime) -> float:
        return self.firm_kw[self.hours.index(hour)] if hour in self.hours else 0.0


def _plugged(sessions: Sequence[PlugSession], start: datetime, end: datetime, known_until: datetime) -> bool:
    for s in sessions:
        until = s.unplugged_at or known_until
        if s.plugged_at <= start and min(until, known_until) >= end:
            return True
    return False


def forecast_availability(
    history: Sequence[PlugSession],
    ev_kw: Mapping[str, float],
    hours: Sequence[datetime],
    *,
    made_at: datetime,
    tz: ZoneInfo,
    weeks: int = 8,
    confidence: float = 0.95,
    habits: Mapping[str, OwnerHabit] | None = None,
) -> AvailabilityForecast:
    """Forecast the reserve power (kW, each EV's ``ev_kw``) the fleet holds in each of ``hours``.

    Only what was known at ``made_at`` is used: sessions plugged in later are ignored, and a session
    still open at ``made_at`` counts up to ``made_at``. Every hour must start after ``made_at``.
    """
    made_at = ensure_utc(made_at, field="made_at")
    if not 0.5 <= confidence < 1:
        msg = f"confidence: {confidence} must be in [0.5, 1)"
        raise ValueError(msg)
    if weeks < 1:
        msg = f"weeks: {weeks} must be at least 1"
        raise ValueError(msg)
    hours = [ensure_utc(h, field="hours") for h in hours]
    for h in hours:
        if h < made_at:
            msg = f"hours: {h.isoformat()} starts before the forecast is made ({made_at.isoformat()})"
            raise ValueError(msg)
    by_ev: dict[str, list[PlugSession]] = defaultdict(list)
    for s in history:
        if s.plugged_at < made_at:
            by_ev[s.ev_id].append(s)
    evs = sorted(ev_kw)
    habits = habits or {}

    # the weeks of history before the forecast (same weekday and local hour as each delivery hour)
    def samples(hour: datetime) -> list[datetime]:
        local = hour.astimezone(tz)
        out = []
        for k in range(1, weeks + 60):
            past = (local - WEEK * k).replace(tzinfo=None)
            at = ensure_utc(past.replace(tzinfo=tz))
            if at + HOUR <= made_at:
                out.append(at)
            if len(out) == weeks:
                break
        return out

    mean_kw, firm_kw = [], []
    z = NormalDist().inv_cdf(confidence)
    residual_total = residual_independent = 0.0
    per_hour: list[tuple[list[float], list[float]]] = []
    used_weeks = 0
    for hour in hours:
        past = samples(hour)
        used_weeks = max(used_weeks, len(past))
        local = hour.astimezone(tz)
        p: list[float] = []
        kw: list[float] = []
        observed: list[list[float]] = []  # per past week: each EV's indicator
        for ev in evs:
            indicators = [1.0 if _plugged(by_ev.get(ev, ()), at, at + HOUR, made_at) else 0.0 for at in past]
            observed.append(indicators)
            habit = habits.get(ev)
            share = sum(indicators) / len(indicators) if indicators else 0.0
            p.append(0.0 if habit is not None and habit.away(local) else share)
            kw.append(max(0.0, float(ev_kw[ev])))
        # the week-to-week spread of the fleet total against the spread independent EVs would give
        if len(past) >= 2:
            totals = [sum(observed[i][w] * kw[i] for i in range(len(evs))) for w in range(len(past))]
            mean_t = sum(totals) / len(totals)
            residual_total += sum((t - mean_t) ** 2 for t in totals) / (len(totals) - 1)
            for i in range(len(evs)):
                m = sum(observed[i]) / len(observed[i])
                residual_independent += kw[i] ** 2 * sum((x - m) ** 2 for x in observed[i]) / (len(observed[i]) - 1)
        per_hour.append((p, kw))
    # one correlation for the fleet: excess variance over the sum of individual variances, as a share
    # of what perfectly correlated EVs would add
    pair_total = 0.0
    for p, kw in per_hour:
        sd = [math.sqrt(pi * (1 - pi)) * k for pi, k in zip(p, kw, strict=True)]
        pair_total += sum(sd) ** 2 - sum(s * s for s in sd)
    correlation = 0.0
    if pair_total > 0 and residual_total > residual_independent:
        correlation = min(1.0, (residual_total - residual_independent) / pair_total)
    for p, kw in per_hour:
        sd = [math.sqrt(pi * (1 - pi)) * k for pi, k in zip(p, kw, strict=True)]
        variance = sum(s * s for s in sd) + correlation * (sum(sd) ** 2 - sum(s * s for s in sd))
        mean = sum(pi * k for pi, k in zip(p, kw, strict=True))
        mean_kw.append(round(mean, 3))
        firm_kw.append(round(max(0.0, mean - z * math.sqrt(max(variance, 0.0))), 3))
    return AvailabilityForecast(
        made_at=made_at,
        hours=tuple(hours),
        mean_kw=tuple(mean_kw),
        firm_kw=tuple(firm_kw),
        correlation=round(correlation, 4),
        confidence=confidence,
        weeks=used_weeks,
        evs=len(evs),
    )


def synthetic_history(
    ev_ids: Sequence[str],
    first_day: date,
    days: int,
    tz: ZoneInfo,
    *,
    seed: int = 0,
    nights_per_week: tuple[float, float] = (3.0, 5.0),
    shared_day_weight: float = 0.3,
) -> list[PlugSession]:
    """Home-charging histories: each EV plugs in on ``nights_per_week`` nights on average (drawn per EV
    in the range), more often on weekdays; a shared factor per day (``shared_day_weight``) moves all
    EVs together. Weekday arrival 16-20 h local, departure 6-8 h the next morning; weekend stays run
    to 9-12 h."""
    rng = random.Random(seed)
    rates = {ev: rng.uniform(*nights_per_week) / 7.0 for ev in ev_ids}
    out: list[PlugSession] = []
    for d in range(days):
        day = first_day + timedelta(days=d)
        weekend = day.weekday() >= 5
        shared = rng.random()
        for ev in ev_ids:
            base = rates[ev] * (0.6 if weekend else 1.16)  # keeps the weekly rate: (5 x 1.16 + 2 x 0.6) / 7 = 1
            own = rng.random()
            draw = shared_day_weight * shared + (1 - shared_day_weight) * own
            # draw is not uniform when mixed; compare against the quantile that keeps the EV's rate
            if _mixed_cdf(draw, shared_day_weight) >= min(1.0, base):
                continue
            arrive = datetime.combine(day, time(16), tzinfo=tz) + timedelta(minutes=rng.randrange(0, 240, 15))
            leave_h = rng.uniform(9, 12) if (day + timedelta(days=1)).weekday() >= 5 else rng.uniform(6, 8)
            leave = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz) + timedelta(
                minutes=15 * round(leave_h * 4)
            )
            out.append(PlugSession(ev, ensure_utc(arrive), ensure_utc(leave)))
    return out


def _mixed_cdf(x: float, w: float) -> float:
    """CDF of ``w*U1 + (1-w)*U2`` for independent uniforms (so each EV keeps its own nightly rate)."""
    a, b = min(w, 1 - w), max(w, 1 - w)
    if a == 0:
        return min(max(x, 0.0), 1.0)
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x <= a:
        return x * x / (2 * a * b)
    if x <= b:
        return (2 * x - a) / (2 * b)
    return 1 - (1 - x) ** 2 / (2 * a * b)
