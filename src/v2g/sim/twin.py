"""Digital twin of a fleet of V2G chargers with their EVs, and a gateway that drives it.

:class:`TwinFleet` is a vectorised physical model of every unit: commands take effect after a
response delay (communication plus inverter), power moves towards its target at a limited ramp
rate, state of charge follows power with charge/discharge efficiencies and the battery management
system stops charging at the top and discharging at the bottom of the energy window. In local mode a
unit follows its own frequency-to-power curve (OCPP 2.1 LocalFrequency) from the frequency it
measures itself, after the same delay.

:class:`TwinGateway` implements :class:`v2g.services.devices.ports.ChargerGateway` on the twin, in process,
for fast socket-free studies, replays, pre-qualification runs and tests.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from v2g.devices.commands import STATUS_CODE
from v2g.dispatch.ler import EnergyState
from v2g.dispatch.pool import BoolArray, FloatArray
from v2g.fleet.schedule import PowerSchedule
from v2g.services.devices.ports import Ack, AckBatch, AckStatus, FrequencyCurvePoint, Setpoint, SetpointBatch

# Frequencies at which local curves are stored; every FCR curve is piecewise linear on this grid.
CURVE_GRID_HZ = np.array([47.0, 49.0, 49.5, 49.9, 50.0, 50.1, 50.5, 51.0, 53.0])


@dataclass(frozen=True, slots=True)
class UnitSpec:
    """One charger with its EV."""

    charger_id: str
    ev_id: str
    battery_kwh: float
    soc_kwh: float
    soc_min_kwh: float
    p_max_kw: float  # charge limit
    p_min_kw: float  # discharge limit (<= 0)
    ramp_kw_per_s: float = 20.0
    delay_s: float = 0.3
    eta_charge: float = 0.95
    eta_discharge: float = 0.95

    def __post_init__(self) -> None:
        where = f"unit[{self.charger_id}]"
        checks = [
            (self.battery_kwh > 0, "battery_kwh", "must be > 0"),
            (
                0 <= self.soc_min_kwh <= self.soc_kwh <= self.battery_kwh,
                "soc_kwh",
                "must lie in [soc_min_kwh, battery]",
            ),
            (self.p_max_kw >= 0, "p_max_kw", "must be >= 0"),
            (self.p_min_kw <= 0, "p_min_kw", "must be <= 0 (discharge)"),
            (self.ramp_kw_per_s > 0, "ramp_kw_per_s", "must be > 0"),
            (self.delay_s >= 0, "delay_s", "must be >= 0"),
            (0 < self.eta_charge <= 1 and 0 < self.eta_discharge <= 1, "eta", "efficiencies must be in (0, 1]"),
        ]
        for ok, name, reason in checks:
            if not ok:
                msg = f"{where}.{name}: {reason}"
                raise ValueError(msg)


@dataclass
class TwinFleet:
    """Vectorised state of every unit; advance it with :meth:`advance`."""

    specs: Sequence[UnitSpec]
    now: datetime
    soc_kwh: FloatArray = field(init=False)
    p_kw: FloatArray = field(init=False)
    target_p_kw: FloatArray = field(init=False)
    online: BoolArray = field(init=False)
    local_mode: BoolArray = field(init=False)
    curves: FloatArray = field(init=False)  # (units, len(CURVE_GRID_HZ)) p_kw at the grid frequencies
    energy_in_kwh: FloatArray = field(init=False)
    energy_out_kwh: FloatArray = field(init=False)
    _pending: deque[tuple[datetime, np.ndarray, FloatArray]] = field(init=False)
    _f_history: deque[tuple[datetime, float]] = field(init=False)

    def __post_init__(self) -> None:
        s = self.specs
        self.index = {u.charger_id: i for i, u in enumerate(s)}
        if len(self.index) != len(s):
            msg = "twin.specs: duplicate charger_id"
            raise ValueError(msg)
        self.ev_index = {u.ev_id: i for i, u in enumerate(s)}
        self.battery_kwh = np.array([u.battery_kwh for u in s])
        self.soc_min_kwh = np.array([u.soc_min_kwh for u in s])
        self.p_max_kw = np.array([u.p_max_kw for u in s])
        self.p_min_kw = np.array([u.p_min_kw for u in s])
        self.ramp = np.array([u.ramp_kw_per_s for u in s])
        self.delay_s = np.array([u.delay_s for u in s])
        self.eta_c = np.array([u.eta_charge for u in s])
        self.eta_d = np.array([u.eta_discharge for u in s])
        self.soc_kwh = np.array([u.soc_kwh for u in s])
        n = len(s)
        self.p_kw = np.zeros(n)
        self.target_p_kw = np.zeros(n)
        self.online = np.ones(n, dtype=bool)
        self.local_mode = np.zeros(n, dtype=bool)
        self.curves = np.zeros((n, len(CURVE_GRID_HZ)))
        self.energy_in_kwh = np.zeros(n)
        self.energy_out_kwh = np.zeros(n)
        self._pending = deque()
        self._f_history = deque(maxlen=64)
        self._uniform_delay = float(self.delay_s[0]) if n and bool(np.all(self.delay_s == self.delay_s[0])) else None

    def __len__(self) -> int:
        return len(self.specs)

    def group_power_kw(self) -> float:
        """Sum of the measured power of every unit (kW, EV sign)."""
        return float(self.p_kw.sum())

    def energy(self) -> EnergyState:
        """The energy window of every unit, as the LER energy management reads it."""
        return EnergyState(
            self.soc_kwh.copy(),
            self.soc_min_kwh.copy(),
            self.battery_kwh.copy(),
            float(self.eta_c.mean()) if len(self) else 0.95,
            float(self.eta_d.mean()) if len(self) else 0.95,
        )

    def command(self, indices: np.ndarray, p_kw: FloatArray) -> None:
        """Queue new targets; each unit applies its own after its response delay."""
        if self._uniform_delay is not None:
            self._pending.append((self.now + timedelta(seconds=self._uniform_delay), indices, p_kw))
            return
        for delay in np.unique(self.delay_s[indices]):
            mask = self.delay_s[indices] == delay
            self._pending.append((self.now + timedelta(seconds=float(delay)), indices[mask], p_kw[mask]))

    def set_curve(self, i: int, curve: Sequence[tuple[float, float]]) -> None:
        """Store a local frequency curve (interpolated on the twin's grid) and switch the unit to local mode."""
        f = np.array([c[0] for c in curve])
        p = np.array([c[1] for c in curve])
        self.curves[i] = np.interp(CURVE_GRID_HZ, f, p)
        self.local_mode[i] = True

    def _measured_f(self, f_hz: float) -> float:
        self._f_history.append((self.now, f_hz))
        if not self._f_history:
            return f_hz
        delay = self._uniform_delay or 0.0
        cutoff = self.now - timedelta(seconds=delay)
        measured = self._f_history[0][1]
        for at, value in self._f_history:
            if at <= cutoff:
                measured = value
            else:
                break
        return measured

    def advance(self, dt_s: float, f_hz: float = 50.0) -> None:
        """Advance every unit by ``dt_s`` seconds at grid frequency ``f_hz``.

        Power moves towards the targets in force at the start of the step; commands whose delay has
        elapsed by the end of the step take effect from then on.
        """
        target = np.clip(self.target_p_kw, self.p_min_kw, self.p_max_kw)
        step = self.ramp * dt_s
        p = self.p_kw + np.clip(target - self.p_kw, -step, step)
        dt_h = dt_s / 3600.0
        # battery management: no charging above the top, no discharging below the bottom of the window
        room_in = (self.battery_kwh - self.soc_kwh) / (self.eta_c * dt_h)
        room_out = -(self.soc_kwh - self.soc_min_kwh) * self.eta_d / dt_h
        p = np.clip(p, room_out, room_in)
        p = np.where(self.online, p, 0.0)
        self.p_kw = p
        charge = np.maximum(p, 0.0) * dt_h
        discharge = np.maximum(-p, 0.0) * dt_h
        self.soc_kwh = self.soc_kwh + charge * self.eta_c - discharge / self.eta_d
        self.energy_in_kwh += charge
        self.energy_out_kwh += discharge
        self.now += timedelta(seconds=dt_s)
        while self._pending and self._pending[0][0] <= self.now:
            _, idx, values = self._pending.popleft()
            self.target_p_kw[idx] = values
        if self.local_mode.any():
            fm = self._measured_f(f_hz)
            k = int(np.clip(np.searchsorted(CURVE_GRID_HZ, fm) - 1, 0, len(CURVE_GRID_HZ) - 2))
            w = (fm - CURVE_GRID_HZ[k]) / (CURVE_GRID_HZ[k + 1] - CURVE_GRID_HZ[k])
            w = min(max(w, 0.0), 1.0)
            local = self.curves[:, k] * (1 - w) + self.curves[:, k + 1] * w
            self.target_p_kw = np.where(self.local_mode, local, self.target_p_kw)


class TwinGateway:
    """The charger gateway port on the digital twin (in process, no sockets)."""

    def __init__(self, fleet: TwinFleet) -> None:
        self.fleet = fleet
        self.deactivated: set[str] = set()
        self.schedules: dict[str, PowerSchedule] = {}
        self.commands = 0
        self._units_of: tuple[Sequence[str], np.ndarray] | None = None  # a batch's charger ids -> units (-1: unknown)

    def _check(self, charger_id: str) -> tuple[int | None, Ack | None]:
        i = self.fleet.index.get(charger_id)
        if i is None:
            return None, Ack(charger_id, AckStatus.REJECTED, f"charger_id: {charger_id!r} is not known to the gateway")
        if charger_id in self.deactivated:
            return None, Ack(charger_id, AckStatus.REJECTED, "charger is deactivated")
        if not self.fleet.online[i]:
            return None, Ack(charger_id, AckStatus.OFFLINE, "charger is offline")
        return i, None

    async def send_schedules(self, schedules: Sequence[PowerSchedule]) -> list[Ack]:
        """Install schedules; the twin follows them at the current time until a setpoint overrides."""
        acks = []
        for schedule in schedules:
            cid = schedule.charger_id or ""
            i, ack = self._check(cid)
            if i is None:
                acks.append(ack or Ack(cid, AckStatus.REJECTED))
                continue
            self.schedules[cid] = schedule
            self.fleet.command(np.array([i]), np.array([schedule.at(self.fleet.now)]))
            acks.append(Ack(cid, AckStatus.ACCEPTED))
        return acks

    def _units(self, charger_ids: Sequence[str]) -> np.ndarray:
        """The twin's unit of each charger id of a batch (-1: unknown), kept while the batch's list is the same."""
        cached = self._units_of
        if cached is None or cached[0] is not charger_ids or len(cached[1]) != len(charger_ids):
            units = np.array([self.fleet.index.get(c, -1) for c in charger_ids], dtype=np.intp)
            self._units_of = cached = (charger_ids, units)
        return cached[1]

    def _send_batch(self, batch: SetpointBatch) -> AckBatch:
        """Setpoints for a batch, as arrays: unknown, deactivated and offline units answer as one at a time."""
        units = self._units(batch.charger_ids)[batch.units]
        status = np.full(len(batch), STATUS_CODE[AckStatus.ACCEPTED], dtype=np.int8)
        details: dict[int, str] = {}
        known = units >= 0
        online = np.zeros(len(batch), dtype=bool)
        online[known] = self.fleet.online[units[known]]
        refused = ~known | ~online
        if self.deactivated:
            off = np.array([batch.charger_ids[int(u)] in self.deactivated for u in batch.units.tolist()], dtype=bool)
            refused |= off
        for j in np.nonzero(refused)[0].tolist():
            _, ack = self._check(batch.charger_ids[int(batch.units[j])])
            assert ack is not None
            status[j] = STATUS_CODE[ack.status]
            details[j] = ack.detail
        ok = ~refused
        if ok.any():
            arr = units[ok]
            self.fleet.local_mode[arr] = False
            self.fleet.command(arr, np.asarray(batch.p_kw[ok], dtype=np.float64))
        self.commands += int(ok.sum())
        return AckBatch.of(batch, status, details)

    async def send_setpoints(self, setpoints: Sequence[Setpoint]) -> Sequence[Ack]:
        """Apply setpoints (central mode); each unit leaves local mode."""
        if isinstance(setpoints, SetpointBatch):
            return self._send_batch(setpoints)
        acks: list[Ack] = []
        idx: list[int] = []
        values: list[float] = []
        for sp in setpoints:
            i, ack = self._check(sp.charger_id)
            if i is None:
                acks.append(ack or Ack(sp.charger_id, AckStatus.REJECTED))
                continue
            idx.append(i)
            values.append(sp.p_kw)
            acks.append(Ack(sp.charger_id, AckStatus.ACCEPTED))
        if idx:
            arr = np.array(idx)
            self.fleet.local_mode[arr] = False
            self.fleet.command(arr, np.array(values))
        self.commands += len(idx)
        return acks

    def send_setpoint_array(self, indices: np.ndarray, p_kw: FloatArray) -> int:
        """Fast path for studies: set many units at once by index; returns how many were accepted."""
        ok = self.fleet.online[indices]
        self.fleet.local_mode[indices[ok]] = False
        self.fleet.command(indices[ok], p_kw[ok])
        self.commands += int(ok.sum())
        return int(ok.sum())

    async def configure_frequency_curve(
        self, charger_id: str, curve: Sequence[FrequencyCurvePoint], valid_until: datetime | None = None
    ) -> Ack:
        """Install a local frequency-to-power curve; the unit then follows its own frequency measurement."""
        i, ack = self._check(charger_id)
        if i is None:
            return ack or Ack(charger_id, AckStatus.REJECTED)
        if len(curve) < 2 or any(b.frequency_hz <= a.frequency_hz for a, b in itertools.pairwise(curve)):
            return Ack(charger_id, AckStatus.REJECTED, "curve: needs at least two points with increasing frequency_hz")
        self.fleet.set_curve(i, [(c.frequency_hz, c.p_kw) for c in curve])
        return Ack(charger_id, AckStatus.ACCEPTED)

    async def deactivate(self, charger_id: str) -> Ack:
        """Stop V2G at a unit: zero power, refuse further commands."""
        i = self.fleet.index.get(charger_id)
        if i is None:
            return Ack(charger_id, AckStatus.REJECTED, f"charger_id: {charger_id!r} is not known to the gateway")
        self.fleet.local_mode[i] = False
        self.fleet.command(np.array([i]), np.array([0.0]))
        self.deactivated.add(charger_id)
        return Ack(charger_id, AckStatus.ACCEPTED)
