"""The reports a utility-server client still owes its server (responses, DER status, meter readings).

A report is made when its facts are known (its XML carries their times) and kept in a
:class:`ReportQueue` until the server has taken it: a server that is away, or answers with an error,
gets the same reports in the same order once it is back. The SQL queue keeps them across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Report:
    created_at: datetime
    area_id: str
    kind: str  # response, dercap, derg, ders, mmr
    target: str  # the href to send to, or "<kind>:<area>" that the client resolves at delivery
    body: str  # the XML document
    id: int | None = None
    attempts: int = 0


class ReportQueue(Protocol):
    def put(self, report: Report) -> None: ...

    def oldest(self, limit: int) -> list[Report]: ...

    def delivered(self, report_id: int) -> None: ...

    def failed(self, report_id: int, error: str) -> None: ...

    def count(self) -> int: ...


@dataclass
class MemoryReportQueue:
    """A queue in memory (tests, or a platform that may lose its reports on restart)."""

    reports: dict[int, Report] = field(default_factory=dict)
    _next: int = 1

    def put(self, report: Report) -> None:
        self.reports[self._next] = Report(
            report.created_at, report.area_id, report.kind, report.target, report.body, self._next
        )
        self._next += 1

    def oldest(self, limit: int) -> list[Report]:
        return [self.reports[k] for k in sorted(self.reports)[:limit]]

    def delivered(self, report_id: int) -> None:
        self.reports.pop(report_id, None)

    def failed(self, report_id: int, error: str) -> None:
        r = self.reports.get(report_id)
        if r is not None:
            self.reports[report_id] = Report(r.created_at, r.area_id, r.kind, r.target, r.body, r.id, r.attempts + 1)

    def count(self) -> int:
        return len(self.reports)


@dataclass(frozen=True, slots=True)
class AreaFacts:
    """What the platform reports about its fleet in one grid area (kW, import positive)."""

    area_id: str
    evs_plugged_in: int
    evs_online: int
    planned_p_kw: float  # the plan's power for the current quarter (0 without a plan)
    measured_p_kw: float | None  # the sum of the chargers' latest measured power (None: nothing measured)
    max_charge_kw: float  # of the online EVs
    max_discharge_kw: float  # of the online EVs that can discharge
    soc_percent: float | None  # the online EVs' mean state of charge, where known
