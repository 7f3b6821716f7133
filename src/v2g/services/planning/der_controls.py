"""DER controls of a utility server (IEEE 2030.5 / CSIP) as import and export limits of a grid area.

Pure: the protocol adapter parses the server's DERControl and DefaultDERControl resources into
:class:`DerControl`; :func:`resolve_windows` decides which control holds when and turns it into
:class:`LimitWindow` s (kW, import positive) for :class:`~v2g.services.planning.dso_interface.DsoLimitDesk`.

The aggregated EV fleet of an area is one DER: charging is its load (import), V2G discharge its
generation (export). So ``opModImpLimW`` and ``opModLoadLimW`` bound the import, ``opModExpLimW``,
``opModGenLimW`` and ``opModMaxLimW`` (a share of the DER's rated discharge power) bound the export, and
``opModConnect=false`` or ``opModEnergize=false`` bound both to zero (the fleet neither charges nor
discharges). Where several controls overlap, the one of the program with the lowest primacy value
holds, then the one created last (IEEE 2030.5 §12.1.3.3). ``randomizeStart``/``randomizeDuration`` are
ignored: the planner works in whole quarters, and a limit covers every quarter it touches, which
already starts it no later than the nominal start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from itertools import pairwise

from v2g.units import ensure_utc


class EventStatus(IntEnum):
    """``EventStatus.currentStatus`` (IEEE 2030.5 Table 23)."""

    SCHEDULED = 0
    ACTIVE = 1
    CANCELLED = 2
    CANCELLED_WITH_RANDOMIZATION = 3
    SUPERSEDED = 4


@dataclass(frozen=True, slots=True)
class ControlBase:
    """What a ``DERControlBase`` asks for, in W (None: not set)."""

    import_limit_w: float | None = None  # opModImpLimW
    export_limit_w: float | None = None  # opModExpLimW
    generation_limit_w: float | None = None  # opModGenLimW
    load_limit_w: float | None = None  # opModLoadLimW
    max_limit_pct: float | None = None  # opModMaxLimW, % of the DER's rated (discharge) power
    connect: bool | None = None  # opModConnect
    energize: bool | None = None  # opModEnergize

    @property
    def limits_anything(self) -> bool:
        return any(
            v is not None
            for v in (
                self.import_limit_w,
                self.export_limit_w,
                self.generation_limit_w,
                self.load_limit_w,
                self.max_limit_pct,
                self.connect,
                self.energize,
            )
        )

    def limits_kw(self, rated_discharge_kw: float) -> tuple[float | None, float | None]:
        """(import limit, export limit) in kW; None where the control says nothing about that side."""
        imports = [w / 1000.0 for w in (self.import_limit_w, self.load_limit_w) if w is not None]
        exports = [w / 1000.0 for w in (self.export_limit_w, self.generation_limit_w) if w is not None]
        if self.max_limit_pct is not None:
            exports.append(rated_discharge_kw * self.max_limit_pct / 100.0)
        if self.connect is False or self.energize is False:
            return 0.0, 0.0
        return (min(imports) if imports else None), (min(exports) if exports else None)


@dataclass(frozen=True, slots=True)
class DerControl:
    """One DERControl event of a DER program (times on the platform's clock)."""

    mrid: str
    href: str
    program_primacy: int
    created_at: datetime
    start_at: datetime
    duration: timedelta
    status: EventStatus
    base: ControlBase
    reply_to: str | None = None
    response_required: int = 0  # bit 0: message received, bit 1: specific response (started, completed, ...)

    @property
    def end_at(self) -> datetime:
        return self.start_at + self.duration

    @property
    def cancelled(self) -> bool:
        return self.status in (EventStatus.CANCELLED, EventStatus.CANCELLED_WITH_RANDOMIZATION, EventStatus.SUPERSEDED)


@dataclass(frozen=True, slots=True)
class LimitWindow:
    """An import and/or export limit of a grid area (kW) from ``start_at`` to ``end_at``, and the control behind it."""

    start_at: datetime
    end_at: datetime
    import_limit_kw: float | None
    export_limit_kw: float | None
    control: str  # the control's mRID, or "default:<program mRID>" for a DefaultDERControl


def _rank(c: DerControl) -> tuple[int, float]:
    return (c.program_primacy, -c.created_at.timestamp())


def resolve_windows(
    controls: Sequence[DerControl],
    defaults: Sequence[tuple[int, str, ControlBase]],
    *,
    now: datetime,
    until: datetime,
    rated_discharge_kw: float,
) -> tuple[LimitWindow, ...]:
    """The limit windows from ``now`` to ``until``: the winning event control at each time, else the default.

    ``defaults`` are (program primacy, program mRID, DefaultDERControl base); the one of the lowest
    primacy holds where no event does. Cancelled and superseded events and events that have ended
    are left out; a control that limits nothing the platform handles gives no window.
    """
    now = ensure_utc(now, field="now")
    live = [c for c in controls if not c.cancelled and c.end_at > now and c.start_at < until]
    cuts = sorted({now, until, *(max(now, c.start_at) for c in live), *(min(until, c.end_at) for c in live)})
    default = min(defaults, key=lambda d: d[0], default=None)
    out: list[LimitWindow] = []
    for t0, t1 in pairwise(cuts):
        if t1 <= t0:
            continue
        covering = [c for c in live if c.start_at <= t0 and c.end_at >= t1]
        if covering:
            winner = min(covering, key=_rank)
            name, base = winner.mrid, winner.base
        elif default is not None:
            name, base = f"default:{default[1]}", default[2]
        else:
            continue
        imp, exp = base.limits_kw(rated_discharge_kw)
        if imp is None and exp is None:
            continue
        last = out[-1] if out else None
        if last is not None and (last.end_at, last.control, last.import_limit_kw, last.export_limit_kw) == (
            t0,
            name,
            imp,
            exp,
        ):
            out[-1] = LimitWindow(last.start_at, t1, imp, exp, name)
        else:
            out.append(LimitWindow(t0, t1, imp, exp, name))
    return tuple(out)


def power_w(value: int, multiplier: int, *, field: str) -> float:
    """An ``ActivePower`` (value x 10^multiplier W) as a float; a clear error for a nonsensical one."""
    if not -9 <= multiplier <= 9:
        msg = f"{field}.multiplier: {multiplier} is outside -9..9"
        raise ValueError(msg)
    w = value * math.pow(10, multiplier)
    if w < 0:
        msg = f"{field}: {w:g} W is negative (a limit is a magnitude)"
        raise ValueError(msg)
    return w
