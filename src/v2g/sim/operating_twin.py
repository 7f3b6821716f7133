"""The fleet of a twin run: EVs that plug in and leave, follow their schedules and answer setpoints.

It stands in for the real world at the platform's ports: it is the :class:`FleetStateReader` the
planning cycle reads (which EVs are plugged in, their SoC and ISO 15118 needs) and, through its
gateway, the :class:`ChargerGateway` the planning cycle and the dispatcher command. Physics is the
vectorised :class:`~v2g.sim.twin.TwinFleet`; a unit without an EV plugged in is offline (commands
are answered ``offline`` and its power is zero).

Between commands a unit follows its installed schedule; a setpoint (central dispatch) overrides
the schedule until it expires, as on a real charger's profile stack.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from v2g.devices.commands import Ack, AckStatus, Setpoint, SetpointBatch, accepted_mask
from v2g.devices.events import ChargingNeeds
from v2g.dispatch.ler import EnergyState
from v2g.dispatch.pool import BoolArray, FloatArray, ReservePool
from v2g.fleet.model import ChargerProtocol, PriceArea
from v2g.fleet.schedule import PowerSchedule
from v2g.services.dispatch.ports import FrequencySample
from v2g.services.planning.ports import AreaLimits, PluggedEv
from v2g.sim.twin import TwinFleet, TwinGateway, UnitSpec
from v2g.units import QUARTER, ensure_utc


@dataclass(frozen=True, slots=True)
class TwinEv:
    """One household of the twin: its EV, charger and connection point."""

    ev_id: str
    customer_id: str
    charger_id: str
    site_id: str
    grid_area_id: str
    price_area: PriceArea
    protocol: ChargerProtocol
    battery_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    min_soc_percent: float = 20.0
    fuse_limit_kw: float = 17.3  # 3 x 25 A
    household_peak_kw: float = 0.0

    @property
    def discharge_supported(self) -> bool:
        """A 1.6 charger is charge-only; 2.0.1 and 2.1 units of the twin declare V2X support."""
        return self.protocol is not ChargerProtocol.OCPP16 and self.max_discharge_kw > 0


@dataclass(frozen=True, slots=True)
class PlugSession:
    """One stay at home: plugged in with ``arrival_soc_kwh``, wants ``target_soc_kwh`` by departure."""

    arrival_at: datetime
    departure_at: datetime
    arrival_soc_kwh: float
    target_soc_kwh: float


@dataclass(frozen=True, slots=True)
class Departure:
    """An EV that left: did it have what its owner asked for?"""

    ev_id: str
    at: datetime
    soc_kwh: float
    target_soc_kwh: float

    @property
    def met(self) -> bool:
        return self.soc_kwh >= self.target_soc_kwh - 0.05  # 50 Wh: metering resolution


class ScheduleFollowingGateway(TwinGateway):
    """The twin's gateway: schedules are followed over time; setpoints override them until they expire.

    The value each unit's schedule gives is kept per unit until the next step of any schedule, so a
    step of the world costs array operations, not a pass over every schedule.
    """

    def __init__(self, fleet: TwinFleet) -> None:
        super().__init__(fleet)
        self.override_until = np.full(len(fleet), np.datetime64("NaT"), dtype="datetime64[us]")
        self._scheduled_kw = np.full(len(fleet), np.nan)  # NaN: no schedule installed
        self._scheduled_until: datetime | None = None  # the values above hold until then (None: stale)

    async def send_schedules(self, schedules: Sequence[PowerSchedule]) -> list[Ack]:
        acks = await super().send_schedules(schedules)
        self._scheduled_until = None
        for ack in acks:
            if ack.status is AckStatus.ACCEPTED:
                self.override_until[self.fleet.index[ack.charger_id]] = np.datetime64("NaT")
        return acks

    def forget_schedule(self, charger_id: str) -> None:
        """The EV at ``charger_id`` left: its schedule no longer applies."""
        if self.schedules.pop(charger_id, None) is not None:
            self._scheduled_until = None

    async def send_setpoints(self, setpoints: Sequence[Setpoint]) -> Sequence[Ack]:
        acks = await super().send_setpoints(setpoints)
        default_until = self.fleet.now + QUARTER
        if isinstance(setpoints, SetpointBatch):
            until = setpoints.valid_until or default_until
            units = self._units(setpoints.charger_ids)[setpoints.units[accepted_mask(acks)]]
            self.override_until[units] = np.datetime64(until.replace(tzinfo=None), "us")
            return acks
        for sp, ack in zip(setpoints, acks, strict=True):
            if ack.status is AckStatus.ACCEPTED:
                until = sp.valid_until or default_until
                self.override_until[self.fleet.index[sp.charger_id]] = np.datetime64(until.replace(tzinfo=None), "us")
        return acks

    def _refresh_scheduled(self, now: datetime) -> None:
        """Each unit's schedule value at ``now``, and until when all of them hold."""
        values = np.full(len(self.fleet), np.nan)
        until: datetime | None = None
        for cid, schedule in self.schedules.items():
            values[self.fleet.index[cid]] = schedule.at(now)
            change_at = schedule.next_change_after(now)
            if change_at is not None and (until is None or change_at < until):
                until = change_at
        self._scheduled_kw = values
        self._scheduled_until = until if until is not None else datetime.max.replace(tzinfo=now.tzinfo)

    def apply_schedules(self) -> None:
        """Units that are not under a setpoint take their schedule's value for the current time."""
        now = self.fleet.now
        if self._scheduled_until is None or now >= self._scheduled_until:
            self._refresh_scheduled(now)
        now64 = np.datetime64(now.replace(tzinfo=None), "us")
        free = np.isnat(self.override_until) | (self.override_until <= now64)
        take = free & self.fleet.online & ~self.fleet.local_mode & ~np.isnan(self._scheduled_kw)
        self.fleet.target_p_kw[take] = self._scheduled_kw[take]


@dataclass
class OperatingTwin:
    """The households of a twin run over time."""

    evs: Sequence[TwinEv]
    sessions: dict[str, list[PlugSession]]
    start_at: datetime
    areas: Sequence[AreaLimits]
    fleet: TwinFleet = field(init=False)
    gateway: ScheduleFollowingGateway = field(init=False)
    departures: list[Departure] = field(default_factory=list)
    _current: dict[str, PlugSession] = field(default_factory=dict)
    _next: dict[str, int] = field(default_factory=dict)
    _arrivals: list[tuple[datetime, int, str]] = field(default_factory=list)  # (arrival, unit, EV) heap
    _departures: list[tuple[datetime, int, str]] = field(default_factory=list)  # (departure, unit, EV) heap
    _needs: dict[str, tuple[PlugSession, ChargingNeeds]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start_at = ensure_utc(self.start_at, field="start_at")
        specs = [
            UnitSpec(
                charger_id=ev.charger_id,
                ev_id=ev.ev_id,
                battery_kwh=ev.battery_kwh,
                soc_kwh=ev.battery_kwh * 0.5,
                soc_min_kwh=0.0,
                p_max_kw=ev.max_charge_kw,
                p_min_kw=-ev.max_discharge_kw if ev.discharge_supported else 0.0,
                eta_charge=0.92,
                eta_discharge=0.92,
            )
            for ev in self.evs
        ]
        self.fleet = TwinFleet(specs, self.start_at)
        self.fleet.online[:] = False
        self.gateway = ScheduleFollowingGateway(self.fleet)
        self._by_id = {ev.ev_id: ev for ev in self.evs}
        for ev in self.evs:
            ordered = sorted(self.sessions.get(ev.ev_id, []), key=lambda s: s.arrival_at)
            self.sessions[ev.ev_id] = ordered
            self._next[ev.ev_id] = 0
            self._push_arrival(ev.ev_id)
        self._events(self.start_at)

    # ------------------------------------------------------------------ the world moves
    def _push_arrival(self, ev_id: str) -> None:
        """Queue the EV's next stay (the one its cursor points at), if it has one."""
        k = self._next[ev_id]
        sessions = self.sessions[ev_id]
        if k < len(sessions):
            heapq.heappush(self._arrivals, (sessions[k].arrival_at, self.fleet.ev_index[ev_id], ev_id))

    def _events(self, at: datetime) -> None:
        """Departures and arrivals due at or before ``at`` (in the order of the EVs, departures first)."""
        due: list[tuple[int, str]] = []
        while self._departures and self._departures[0][0] <= at:
            departure_at, i, ev_id = heapq.heappop(self._departures)
            current = self._current.get(ev_id)
            if current is not None and current.departure_at == departure_at:
                due.append((i, ev_id))
        for i, ev_id in sorted(due):
            current = self._current.pop(ev_id)
            self.departures.append(
                Departure(ev_id, current.departure_at, float(self.fleet.soc_kwh[i]), current.target_soc_kwh)
            )
            self.fleet.online[i] = False
            self.fleet.p_kw[i] = 0.0
            self.fleet.target_p_kw[i] = 0.0
            self.gateway.forget_schedule(self._by_id[ev_id].charger_id)
            self._push_arrival(ev_id)
        while self._arrivals and self._arrivals[0][0] <= at:
            _, i, ev_id = heapq.heappop(self._arrivals)
            if ev_id in self._current:
                continue
            k = self._next[ev_id]
            sessions = self.sessions[ev_id]
            while k < len(sessions) and sessions[k].departure_at <= at:
                k += 1  # a stay that ended before the run reached it
            if k < len(sessions) and sessions[k].arrival_at <= at:
                s = sessions[k]
                self._current[ev_id] = s
                self.fleet.soc_kwh[i] = self._soc_at(s, at, i)
                self.fleet.online[i] = True
                self.fleet.local_mode[i] = False
                heapq.heappush(self._departures, (s.departure_at, i, ev_id))
                k += 1
            self._next[ev_id] = k
            if ev_id not in self._current:
                self._push_arrival(ev_id)

    def _soc_at(self, stay: PlugSession, at: datetime, i: int) -> float:
        """The SoC an EV starts with in the run: its arrival SoC; for a stay already under way when the
        run starts, what charging at full power towards its target from its arrival gave it by then
        (the platform did not control it before the run)."""
        if stay.arrival_at >= self.start_at or at > self.start_at:
            return stay.arrival_soc_kwh
        hours = (self.start_at - stay.arrival_at).total_seconds() / 3600.0
        added = float(self.fleet.p_max_kw[i] * self.fleet.eta_c[i]) * hours
        return max(stay.arrival_soc_kwh, min(stay.target_soc_kwh, stay.arrival_soc_kwh + added))

    def next_event_after(self, at: datetime) -> datetime | None:
        """The next arrival or departure after ``at``."""
        while self._departures and self._stale_departure(self._departures[0]):
            heapq.heappop(self._departures)
        while self._arrivals and self._arrivals[0][2] in self._current:
            heapq.heappop(self._arrivals)
        tops = [q[0][0] for q in (self._departures, self._arrivals) if q]
        if all(t > at for t in tops):
            return min(tops) if tops else None
        # events at or before ``at`` not applied yet: look past them
        future = [t for q in (self._departures, self._arrivals) for t, _, _ in q if t > at]
        return min(future) if future else None

    def _stale_departure(self, entry: tuple[datetime, int, str]) -> bool:
        current = self._current.get(entry[2])
        return current is None or current.departure_at != entry[0]

    def advance_to(self, until: datetime, *, f_hz: float = 50.0, step_s: float = 60.0) -> None:
        """Move the world to ``until`` in steps of at most ``step_s`` at frequency ``f_hz``."""
        until = ensure_utc(until, field="until")
        while self.fleet.now < until:
            now = self.fleet.now
            boundary = now - timedelta(seconds=(now.minute % 15) * 60 + now.second, microseconds=now.microsecond)
            end = min(until, now + timedelta(seconds=step_s), boundary + QUARTER)
            event = self.next_event_after(now)
            if event is not None and event < end:
                end = event
            self.gateway.apply_schedules()
            self.fleet.advance((end - now).total_seconds(), f_hz)
            self._events(self.fleet.now)

    # ------------------------------------------------------------------ FleetStateReader
    def plugged_in(self) -> list[PluggedEv]:
        out = []
        for ev_id, s in sorted(self._current.items()):
            ev = self._by_id[ev_id]
            i = self.fleet.ev_index[ev_id]
            soc_percent = 100.0 * float(self.fleet.soc_kwh[i]) / ev.battery_kwh
            needs = self._needs_of(ev, s)
            out.append(
                PluggedEv(
                    ev_id=ev.ev_id,
                    customer_id=ev.customer_id,
                    charger_id=ev.charger_id,
                    site_id=ev.site_id,
                    grid_area_id=ev.grid_area_id,
                    price_area=ev.price_area,
                    battery_kwh=ev.battery_kwh,
                    ev_max_charge_kw=ev.max_charge_kw,
                    ev_max_discharge_kw=ev.max_discharge_kw,
                    charger_max_charge_kw=ev.max_charge_kw,
                    charger_max_discharge_kw=ev.max_discharge_kw,
                    protocol=ev.protocol,
                    discharge_supported=ev.discharge_supported,
                    v2g_capable=True,
                    fuse_limit_kw=ev.fuse_limit_kw,
                    household_peak_kw=ev.household_peak_kw,
                    online=True,
                    soc_percent=soc_percent,
                    soc_measured_at=self.fleet.now,
                    needs=needs,
                    plugged_in_at=s.arrival_at,
                )
            )
        return out

    def online_charger_ids(self) -> set[str]:
        """The chargers with an EV plugged in (the twin's chargers are online while an EV is there)."""
        return {self._by_id[ev_id].charger_id for ev_id in self._current}

    def _needs_of(self, ev: TwinEv, stay: PlugSession) -> ChargingNeeds:
        """The ISO 15118 needs the EV sent at plug-in (the same for the whole stay)."""
        known = self._needs.get(ev.ev_id)
        if known is not None and known[0] is stay:
            return known[1]
        needs = ChargingNeeds(
            charger_id=ev.charger_id,
            evse_id=1,
            received_at=stay.arrival_at,
            departure_at=stay.departure_at,
            target_soc_percent=round(100.0 * stay.target_soc_kwh / ev.battery_kwh, 6),
            max_charge_kw=ev.max_charge_kw,
            max_discharge_kw=ev.max_discharge_kw if ev.discharge_supported else 0.0,
        )
        self._needs[ev.ev_id] = (stay, needs)
        return needs

    def area_limits(self, area_ids: Sequence[str]) -> list[AreaLimits]:
        wanted = set(area_ids)
        return [a for a in self.areas if a.area_id in wanted]

    def limits_kw(self) -> dict[str, tuple[float, float]]:
        """Each EV's (max discharge kW, max charge kW) for the dispatcher's pool."""
        return {ev.ev_id: (ev.max_discharge_kw if ev.discharge_supported else 0.0, ev.max_charge_kw) for ev in self.evs}

    def min_soc_kwh(self, i: int) -> float:
        """The owner's minimum SoC of unit ``i`` (kWh)."""
        ev = self.evs[i]
        return ev.min_soc_percent / 100.0 * ev.battery_kwh

    @property
    def energy_in_kwh(self) -> float:
        return float(self.fleet.energy_in_kwh.sum())

    @property
    def energy_out_kwh(self) -> float:
        return float(self.fleet.energy_out_kwh.sum())

    # ------------------------------------------------------------------ DispatchedFleet
    def dispatched(self, pool: ReservePool) -> TwinDispatched:
        """The dispatch loop's view of the pool's EVs: the twin moves one step per frequency sample."""
        idx = np.array([self.fleet.ev_index[e] for e in pool.ev_ids], dtype=int)
        return TwinDispatched(self, idx, np.array([self.min_soc_kwh(int(i)) for i in idx]))


@dataclass
class TwinDispatched:
    """A :class:`~v2g.services.dispatch.ports.DispatchedFleet` over the twin (indexed like the pool)."""

    twin: OperatingTwin
    idx: np.ndarray
    minimum_kwh: FloatArray

    def energy(self) -> EnergyState:
        fleet = self.twin.fleet
        battery = fleet.battery_kwh[self.idx]
        return EnergyState(fleet.soc_kwh[self.idx].copy(), self.minimum_kwh.copy(), battery.copy(), 0.92, 0.92)

    async def measure(self, sample: FrequencySample, step_s: float) -> tuple[FloatArray, BoolArray]:
        self.twin.advance_to(sample.at + timedelta(seconds=step_s), f_hz=sample.f_hz, step_s=step_s)
        fleet = self.twin.fleet
        return fleet.p_kw[self.idx].copy(), fleet.online[self.idx].copy()
