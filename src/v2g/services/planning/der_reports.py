"""The reports a utility-server client still owes its server (responses, DER status, meter readings).

A report is made when its facts are known (its XML carries their times) and kept in a
:class:`ReportQueue` until the server has taken it: a server that is away, or answers with an error,
gets the same reports in the same order once it is back. The SQL queue keeps them across restarts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from v2g.planning.model import FleetPlan
from v2g.services.planning.ports import PluggedEv
from v2g.units import QUARTER


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


def area_facts(
    areas: Sequence[str],
    evs: Sequence[PluggedEv],
    measured_kw: Mapping[str, float | None],
    plan: FleetPlan | None,
    now: datetime,
) -> dict[str, AreaFacts]:
    """Per area: the plugged-in fleet, the plan's power now and the chargers' measured power (by charger id)."""
    planned: dict[str, float] = {}
    if plan is not None:
        k = int((now - plan.start_at) / QUARTER)
        if 0 <= k < plan.n_intervals:
            planned = {p.ev_id: float(p.p_kw[k]) for p in plan.ev_plans}
    out: dict[str, AreaFacts] = {}
    for area_id in areas:
        mine = [ev for ev in evs if ev.grid_area_id == area_id]
        online = [ev for ev in mine if ev.online]
        measured = [m for ev in online if (m := measured_kw.get(ev.charger_id)) is not None]
        socs = [ev.soc_percent for ev in online if ev.soc_percent is not None]
        out[area_id] = AreaFacts(
            area_id=area_id,
            evs_plugged_in=len(mine),
            evs_online=len(online),
            planned_p_kw=sum(planned.get(ev.ev_id, 0.0) for ev in online),
            measured_p_kw=sum(measured) if measured else None,
            max_charge_kw=sum(ev.max_charge_kw for ev in online),
            max_discharge_kw=sum(ev.max_discharge_kw for ev in online),
            soc_percent=sum(socs) / len(socs) if socs else None,
        )
    return out
