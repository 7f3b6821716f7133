"""What a grid operator's control centre writes and reads, independent of the protocol that carries it.

A DSO (or TSO) sets an import limit for a grid area; :class:`DsoLimitDesk` checks it (a finite number
of kW, not negative, not above the area's import limit on record, an area this aggregator serves),
hands it to the :class:`GridSignalSink` (the planner's grid-limit input, which re-plans the area) and
writes it to the audit log. A utility server that schedules controls (IEEE 2030.5) hands over the
whole set of import/export limit windows of an area each time it changes
(:meth:`DsoLimitDesk.replace_windows`); each window is checked and audited the same way. The control
centre reads back :class:`AreaAggregate` per area: the fleet's planned power now, what it could still
move up or down, the limit in force and how many EVs are plugged in. Protocol adapters (IEC 61850,
IEEE 2030.5) only translate to and from these.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from v2g.planning.model import FleetPlan
from v2g.services.actors.ports import AuditEntry
from v2g.services.planning.der_controls import LimitWindow
from v2g.services.planning.grid_signals import GridSignalSink, LimitReplacer, LimitSignal
from v2g.services.planning.ports import AuditLog, PluggedEv
from v2g.services.planning.signal_book import GridSignalBook
from v2g.units import QUARTER, ensure_utc

log = logging.getLogger("v2g.signals.dso")


class LimitRejectedError(ValueError):
    """A limit the platform does not take; the message names the field and why."""

    def __init__(self, area_id: str, reason: str) -> None:
        self.area_id = area_id
        self.reason = reason
        super().__init__(f"limit[{area_id}]: {reason}")


@dataclass(frozen=True, slots=True)
class AreaAggregate:
    """The fleet in one grid area as the control centre sees it (kW; import positive)."""

    area_id: str
    evs_plugged_in: int
    evs_online: int
    p_kw: float  # the plan's power for the current quarter (0 without a plan)
    up_kw: float  # how far the fleet could move towards export from p_kw (less import / more V2G)
    down_kw: float  # how far it could move towards import from p_kw (more charging)
    static_import_limit_kw: float
    import_limit_kw: float  # in force now: the static one, or a DSO's if lower
    dso_limit_active: bool


@dataclass
class DsoLimitDesk:
    """Takes DSO import limits for the served areas into the signal book, with checks and an audit record."""

    sink: GridSignalSink
    static_import_limit_kw: Mapping[str, float]  # the served areas and their import limit on record
    now: Callable[[], datetime]
    audit: AuditLog | None = None
    duration: timedelta = timedelta(hours=4)
    source: str = "dso"
    static_export_limit_kw: Mapping[str, float] | None = None  # for the audit record of export limits

    def replace_windows(self, area_id: str, windows: Sequence[LimitWindow], *, via: str) -> tuple[LimitSignal, ...]:
        """Make ``windows`` the whole set of this source's limits for ``area_id`` (an empty set lifts them).

        Every window is checked first (an area served, finite kW, not negative, end after start); one bad
        window rejects the set with :class:`LimitRejectedError` and changes nothing. Each window is audited
        (``grid_limit.set``; ``grid_limit.cleared`` for an empty set). A limit above the area's limit on record
        is taken, but the record holds: limits only ever tighten.
        """
        try:
            signals = tuple(self._window_signal(area_id, w) for w in windows)
        except LimitRejectedError as exc:
            log.warning("DSO limits via %s rejected: %s", via, exc)
            raise
        if not isinstance(self.sink, LimitReplacer):
            msg = f"{type(self.sink).__name__} cannot replace a source's limits"
            raise TypeError(msg)
        self.sink.replace_limits(area_id, self.source, signals)
        at = ensure_utc(self.now(), field="now")
        before = {
            "static_import_limit_kw": self.static_import_limit_kw[area_id],
            "static_export_limit_kw": (self.static_export_limit_kw or {}).get(area_id),
        }
        if self.audit is not None:
            for w, signal in zip(windows, signals, strict=True):
                self.audit.audit(
                    AuditEntry(
                        at=at,
                        user_id=None,
                        organisation_id=None,
                        action="grid_limit.set",
                        entity="grid_area",
                        entity_id=area_id,
                        before=before,
                        after={
                            "import_limit_kw": signal.import_limit_kw,
                            "export_limit_kw": signal.export_limit_kw,
                            "start_at": signal.start_at.isoformat(),
                            "end_at": signal.end_at.isoformat(),
                            "source": self.source,
                            "via": via,
                            "control": w.control,
                        },
                    )
                )
            if not windows:
                self.audit.audit(
                    AuditEntry(
                        at=at,
                        user_id=None,
                        organisation_id=None,
                        action="grid_limit.cleared",
                        entity="grid_area",
                        entity_id=area_id,
                        before=before,
                        after={"source": self.source, "via": via},
                    )
                )
        log.info("DSO limits via %s: area %s has %d limit window(s) from %s", via, area_id, len(signals), self.source)
        return signals

    def _window_signal(self, area_id: str, w: LimitWindow) -> LimitSignal:
        if area_id not in self.static_import_limit_kw:
            raise LimitRejectedError(area_id, "grid_area_id: the area is not served by this aggregator")
        for name, value in (("import_limit_kw", w.import_limit_kw), ("export_limit_kw", w.export_limit_kw)):
            if value is None:
                continue
            if not math.isfinite(value):
                raise LimitRejectedError(area_id, f"{w.control}: {name}: {value} is not a finite number")
            if value < 0:
                raise LimitRejectedError(area_id, f"{w.control}: {name}: {value:g} must be >= 0")
        if w.import_limit_kw is None and w.export_limit_kw is None:
            raise LimitRejectedError(area_id, f"{w.control}: neither an import nor an export limit")
        start_at = ensure_utc(w.start_at, field="start_at")
        end_at = ensure_utc(w.end_at, field="end_at")
        if end_at <= start_at:
            raise LimitRejectedError(area_id, f"{w.control}: end_at {end_at.isoformat()} is not after start_at")
        return LimitSignal(area_id, start_at, end_at, w.import_limit_kw, w.export_limit_kw, source=self.source)

    def set_import_limit(self, area_id: str, limit_kw: float, *, via: str) -> LimitSignal:
        """Apply ``limit_kw`` to ``area_id`` from now for ``duration``; raise :class:`LimitRejectedError`."""
        try:
            signal = self._checked(area_id, limit_kw)
        except LimitRejectedError as exc:
            log.warning("DSO limit via %s rejected: %s", via, exc)
            raise
        self.sink.limits([signal])
        if self.audit is not None:
            self.audit.audit(
                AuditEntry(
                    at=signal.start_at,
                    user_id=None,
                    organisation_id=None,
                    action="grid_limit.set",
                    entity="grid_area",
                    entity_id=area_id,
                    before={"static_import_limit_kw": self.static_import_limit_kw[area_id]},
                    after={
                        "import_limit_kw": signal.import_limit_kw,
                        "start_at": signal.start_at.isoformat(),
                        "end_at": signal.end_at.isoformat(),
                        "source": self.source,
                        "via": via,
                    },
                )
            )
        log.info(
            "DSO limit via %s accepted: area %s import <= %.1f kW until %s",
            via,
            area_id,
            signal.import_limit_kw,
            signal.end_at.isoformat(),
        )
        return signal

    def _checked(self, area_id: str, limit_kw: float) -> LimitSignal:
        if area_id not in self.static_import_limit_kw:
            raise LimitRejectedError(area_id, "grid_area_id: the area is not served by this aggregator")
        if not isinstance(limit_kw, int | float) or isinstance(limit_kw, bool):
            raise LimitRejectedError(area_id, f"import_limit_kw: {limit_kw!r} is not a number")
        if not math.isfinite(limit_kw):
            raise LimitRejectedError(area_id, f"import_limit_kw: {limit_kw} is not a finite number")
        if limit_kw < 0:
            raise LimitRejectedError(area_id, f"import_limit_kw: {limit_kw:g} must be >= 0")
        static_kw = self.static_import_limit_kw[area_id]
        if limit_kw > static_kw:
            raise LimitRejectedError(
                area_id, f"import_limit_kw: {limit_kw:g} is above the area's import limit of {static_kw:g} kW"
            )
        start_at = ensure_utc(self.now(), field="now")
        return LimitSignal(area_id, start_at, start_at + self.duration, float(limit_kw))


def area_aggregates(
    areas: Mapping[str, float],
    evs: Sequence[PluggedEv],
    plan: FleetPlan | None,
    signals: GridSignalBook,
    now: datetime,
) -> dict[str, AreaAggregate]:
    """Per served area (id -> static import limit, kW): the plugged-in fleet, the plan's quarter, the limit."""
    now = ensure_utc(now, field="now")
    planned: dict[str, float] = {}
    if plan is not None:
        k = int((now - plan.start_at) / QUARTER)
        if 0 <= k < plan.n_intervals:
            planned = {p.ev_id: float(p.p_kw[k]) for p in plan.ev_plans}
    out: dict[str, AreaAggregate] = {}
    for area_id, static_kw in areas.items():
        mine = [ev for ev in evs if ev.grid_area_id == area_id]
        online = [ev for ev in mine if ev.online]
        p_kw = sum(planned.get(ev.ev_id, 0.0) for ev in online)
        max_in_kw = sum(ev.max_charge_kw for ev in online)
        max_out_kw = sum(ev.max_discharge_kw for ev in online)
        (limit_kw,) = signals.import_limits_kw(area_id, static_kw, now, 1)
        out[area_id] = AreaAggregate(
            area_id=area_id,
            evs_plugged_in=len(mine),
            evs_online=len(online),
            p_kw=p_kw,
            up_kw=max(0.0, p_kw + max_out_kw),
            down_kw=max(0.0, min(max_in_kw, limit_kw) - p_kw),
            static_import_limit_kw=static_kw,
            import_limit_kw=limit_kw,
            dso_limit_active=limit_kw < static_kw,
        )
    return out
