"""Grid events a VTN publishes (OpenADR 3), checked, put into the signal book and audited; the report queue.

A protocol adapter translates a VTN's event into a :class:`GridEvent`: the price and limit signals of
each served grid area, tagged with the event's reference. :class:`GridEventDesk` checks it (served
areas, finite numbers, limits not negative, intervals that end after they start), replaces what an
earlier version of the same event put into the :class:`GridSignalBook` (which re-plans the areas) and
writes every accepted, replaced, withdrawn or refused event to the audit log. An event is applied once
per modification: reading it again changes nothing.

Reports for the VTN go through a :class:`ReportQueue` (stored): they are queued first and sent in
order when the VTN answers, so a VTN that is away loses none.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn, Protocol

from v2g.services.actors.ports import AuditEntry
from v2g.services.planning.grid_signals import LimitSignal, PriceSignal
from v2g.services.planning.ports import AuditLog
from v2g.services.planning.signal_book import GridSignalBook

log = logging.getLogger("v2g.signals.vtn")


@dataclass(frozen=True, slots=True)
class GridEvent:
    """One version of a VTN event, as planner signals per served grid area."""

    source: str  # the interface, e.g. "openadr3"
    ref: str  # stable across versions, e.g. "openadr3:event/42"
    program: str  # the program's name (or id)
    event_id: str
    modification: str  # the version as the VTN stamps it (OpenADR 3: modificationDateTime)
    prices: tuple[PriceSignal, ...] = ()
    limits: tuple[LimitSignal, ...] = ()
    name: str = ""


class EventRejectedError(ValueError):
    """An event the platform does not take; the message names every field at fault and why."""

    def __init__(self, ref: str, problems: Sequence[str]) -> None:
        self.ref = ref
        self.problems = tuple(problems)
        super().__init__(f"{ref}: " + "; ".join(problems))


class ReportQueue(Protocol):
    """Reports waiting for the VTN, oldest first (stored, so a restart or a VTN away loses none)."""

    def put(self, body: Mapping[str, Any], at: datetime) -> int: ...

    def pending(self, limit: int) -> list[QueuedReport]: ...

    def mark_sent(self, report_id: int, at: datetime, answer: str | None) -> None: ...

    def mark_rejected(self, report_id: int, at: datetime, error: str) -> None: ...

    def mark_attempt(self, report_id: int, at: datetime, error: str) -> None: ...


@dataclass(frozen=True, slots=True)
class QueuedReport:
    id: int
    created_at: datetime
    body: dict[str, Any]
    attempts: int = 0


@dataclass
class GridEventDesk:
    """Takes VTN events for the served areas into the signal book, with checks and an audit record each."""

    signals: GridSignalBook
    static_limits_kw: Mapping[str, tuple[float, float]]  # served area -> (import, export) on record
    now: Callable[[], datetime]
    audit: AuditLog | None = None
    applied: dict[str, str] = field(default_factory=dict)  # ref -> modification in the book
    refused: dict[str, str] = field(default_factory=dict)  # ref -> modification refused (not audited again)

    def apply(self, event: GridEvent) -> bool:
        """Put ``event`` into the signal book; False when this version is in already; raise when refused."""
        if self.applied.get(event.ref) == event.modification:
            return False
        problems = self.problems(event)
        if problems:
            self.refuse(event, problems)
        replaced = event.ref in self.applied
        if replaced:
            self.signals.withdraw(event.ref)
        self.refused.pop(event.ref, None)
        if event.prices:
            self.signals.prices(event.prices)
        if event.limits:
            self.signals.limits(event.limits)
        self.applied[event.ref] = event.modification
        for area in sorted({s.grid_area_id for s in event.limits}):
            mine = [s for s in event.limits if s.grid_area_id == area]
            self._audit(
                "grid_limit.set",
                event,
                area,
                {
                    "replaces_earlier_version": replaced,
                    "intervals": [
                        {
                            "start_at": s.start_at.isoformat(),
                            "end_at": s.end_at.isoformat(),
                            "import_limit_kw": _finite_or_none(s.import_limit_kw),
                            "export_limit_kw": s.export_limit_kw,
                        }
                        for s in mine
                    ],
                },
            )
        for area in sorted({s.grid_area_id for s in event.prices}):
            mine_p = [s for s in event.prices if s.grid_area_id == area]
            self._audit(
                "grid_price.set",
                event,
                area,
                {
                    "replaces_earlier_version": replaced,
                    "intervals": [
                        {
                            "start_at": s.start_at.isoformat(),
                            "end_at": s.end_at.isoformat(),
                            "price_eur_per_mwh": s.price_eur_per_mwh,
                        }
                        for s in mine_p
                    ],
                },
            )
        log.info(
            "VTN event %s (%s, version %s) accepted: %d limit and %d price intervals",
            event.ref,
            event.program,
            event.modification,
            len(event.limits),
            len(event.prices),
        )
        return True

    def refuse(self, event: GridEvent, problems: Sequence[str]) -> NoReturn:
        """Refuse ``event`` (audited once per version; an earlier version in force stays); always raises."""
        error = EventRejectedError(event.ref, problems)
        if self.refused.get(event.ref) != event.modification:
            self.refused[event.ref] = event.modification
            log.warning("VTN event refused: %s", error)
            self._audit("grid_signal.rejected", event, "*", {"problems": list(problems)})
        raise error

    def withdraw(self, ref: str, *, why: str) -> bool:
        """The VTN no longer has the event ``ref``: its signals leave the book (the areas are re-planned)."""
        if ref not in self.applied:
            self.refused.pop(ref, None)
            return False
        modification = self.applied.pop(ref)
        areas = self.signals.withdraw(ref)
        gone = GridEvent(source=ref.partition(":")[0], ref=ref, program="", event_id="", modification=modification)
        for area in sorted(areas) or ["*"]:
            self._audit("grid_signal.withdrawn", gone, area, {"why": why})
        log.info("VTN event %s withdrawn (%s)", ref, why)
        return True

    def problems(self, event: GridEvent) -> list[str]:
        """What is wrong with ``event``, each naming its field (empty: nothing)."""
        out: list[str] = []
        for k, s in enumerate(event.limits):
            where = f"limits[{k}] (area {s.grid_area_id}, {s.start_at.isoformat()})"
            if s.grid_area_id not in self.static_limits_kw:
                out.append(f"{where}.grid_area_id: the area is not served by this aggregator")
            if s.end_at <= s.start_at:
                out.append(f"{where}.end_at: {s.end_at.isoformat()} is not after start_at")
            if s.import_limit_kw is not None and (math.isnan(s.import_limit_kw) or s.import_limit_kw < 0):
                out.append(f"{where}.import_limit_kw: {s.import_limit_kw} must be a number >= 0")
            if s.export_limit_kw is not None and not (math.isfinite(s.export_limit_kw) and s.export_limit_kw >= 0):
                out.append(f"{where}.export_limit_kw: {s.export_limit_kw} must be a finite number >= 0")
            if _finite_or_none(s.import_limit_kw) is None and s.export_limit_kw is None:
                out.append(f"{where}: limits neither import nor export")
        for k, p in enumerate(event.prices):
            where = f"prices[{k}] (area {p.grid_area_id}, {p.start_at.isoformat()})"
            if p.grid_area_id not in self.static_limits_kw:
                out.append(f"{where}.grid_area_id: the area is not served by this aggregator")
            if p.end_at <= p.start_at:
                out.append(f"{where}.end_at: {p.end_at.isoformat()} is not after start_at")
            if not math.isfinite(p.price_eur_per_mwh):
                out.append(f"{where}.price_eur_per_mwh: {p.price_eur_per_mwh} is not a finite number")
        return out

    def _audit(self, action: str, event: GridEvent, area: str, after: dict[str, Any]) -> None:
        if self.audit is None:
            return
        static = self.static_limits_kw.get(area)
        self.audit.audit(
            AuditEntry(
                at=self.now(),
                user_id=None,
                organisation_id=None,
                action=action,
                entity="grid_area",
                entity_id=area,
                before=(
                    {"static_import_limit_kw": static[0], "static_export_limit_kw": static[1]}
                    if static is not None
                    else None
                ),
                after={
                    "source": event.source,
                    "event": event.ref,
                    "event_id": event.event_id,
                    "event_name": event.name,
                    "program": event.program,
                    "modification": event.modification,
                    **after,
                },
            )
        )


def _finite_or_none(value: float | None) -> float | None:
    """A limit value, or None where it does not limit (unset or infinite)."""
    return value if value is not None and math.isfinite(value) else None
