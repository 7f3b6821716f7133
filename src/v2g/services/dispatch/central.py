"""Real-time dispatch use cases: central (setpoints per frequency sample) and local (curves per charger).

Both send through the :class:`~v2g.services.devices.ports.ChargerGateway` port. A charger that does not
accept its setpoint is taken out of the pool at once and its share re-allocated to the others in
the same call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from v2g.devices.commands import accepted_mask
from v2g.dispatch.ler import EnergyState, LerManager, saturated_hz
from v2g.dispatch.pool import BoolArray, FloatArray, ReservePool, allocate, local_curve, setpoints_kw
from v2g.dispatch.response import curve_breakpoints_hz, mfrr_required_kw, required_response_kw
from v2g.markets.rules import MarketRules, Product
from v2g.services.devices.ports import Ack, ChargerGateway, FrequencyCurvePoint, SetpointBatch


@dataclass(frozen=True, slots=True)
class DispatchResult:
    """What one frequency sample led to."""

    f_hz: float
    required_kw: dict[Product, float]
    setpoints_kw: FloatArray
    acks: Sequence[Ack]
    lost: list[str]  # EVs taken out of the pool because their charger did not accept


class CentralDispatcher:
    """Central mode: the platform measures frequency and sends setpoints to every charger."""

    def __init__(
        self,
        pool: ReservePool,
        committed_kw: Mapping[Product, float],
        gateway: ChargerGateway,
        rules: MarketRules,
        *,
        ler: LerManager | None = None,
        valid_until: datetime | None = None,
        deadband_kw: float = 0.0,
    ) -> None:
        self.pool = pool
        self.committed_kw = dict(committed_kw)
        self.gateway = gateway
        self.rules = rules
        self.ler = ler
        self.valid_until = valid_until  # setpoints hold until then (e.g. the end of the delivery hour)
        # a charger is sent a new setpoint only when it moves by at least this much (its last one holds)
        self.deadband_kw = deadband_kw
        self.sent_kw = np.full(len(pool), np.nan)
        self.last_f_hz = 50.0
        self.shift_kw = np.zeros(len(pool))
        self.ref_shift_hz: dict[Product, FloatArray] = {}  # AEM: f_ref - f0 per EV and product
        self.effective: dict[Product, FloatArray] | None = None  # reserves of the providing EVs
        self.mfrr_kw = 0.0
        self.mfrr_elapsed_s = 0.0
        # EVs whose reserve backs the current commitments (None: all); the others get no energy-management shift
        self.providing: BoolArray | None = None

    def activate_mfrr(self, kw: float, elapsed_s: float = 0.0) -> None:
        """The TSO activated an mFRR bid (``kw > 0`` up); it ramps in over the full activation time."""
        self.mfrr_kw = kw
        self.mfrr_elapsed_s = elapsed_s

    def plan(self, f_hz: float) -> tuple[dict[Product, float], FloatArray]:
        """Required response and setpoints for ``f_hz`` (no I/O)."""
        required = required_response_kw(self.committed_kw, f_hz, self.rules)
        if self.mfrr_kw:
            required[Product.MFRR] = mfrr_required_kw(self.mfrr_kw, self.mfrr_elapsed_s, self.rules)
        base = self.pool.baseline_p_kw + self.shift_kw
        response = allocate(
            self.pool, required, baseline_p_kw=base, reserve_kw=self.effective, extra_kw=self._aem_extra_kw(f_hz)
        )
        return required, setpoints_kw(self.pool, response, baseline_p_kw=base)

    def _aem_extra_kw(self, f_hz: float) -> FloatArray | None:
        """What EVs in AEM answer beyond (or short of) their share: their frequency reference is shifted,
        so they respond to the saturated frequency minus the shift (FCR-TR v1.1 eq. 23)."""
        extra: FloatArray | None = None
        for product, shift in self.ref_shift_hz.items():
            committed = self.committed_kw.get(product, 0.0)
            if committed <= 0 or not np.any(shift):
                continue
            held = self.effective if self.effective is not None else self.pool.reserve_kw
            weights = np.where(self.pool.available, held[product], 0.0)
            total = float(weights.sum())
            if total <= 0:
                continue
            curve = self.rules[product]
            f_sat = saturated_hz(product, f_hz, self.rules)
            shifted = np.array([curve.response_fraction(f_sat - float(s)) for s in shift])
            delta = committed * weights / total * (shifted - curve.response_fraction(f_hz))
            extra = delta if extra is None else extra + delta
        return extra

    def update_energy(self, energy: EnergyState, f_hz: float) -> None:
        """Run NEM/AEM for this sample (once per second)."""
        if self.ler is not None:
            shift, refs = self.ler.update(self.pool, energy, f_hz)
            effective = None
            if self.providing is not None:
                shift = np.where(self.providing, shift, 0.0)
                refs = {p: np.where(self.providing, v, 0.0) for p, v in refs.items()}
                effective = {p: np.where(self.providing, v, 0.0) for p, v in self.pool.reserve_kw.items()}
            self.shift_kw, self.ref_shift_hz, self.effective = shift, refs, effective

    async def on_frequency(self, f_hz: float, dt_s: float = 0.0) -> DispatchResult:
        """Answer one frequency sample (``dt_s`` after the previous one): allocate, send, re-allocate
        around chargers that did not accept."""
        self.last_f_hz = f_hz
        self.mfrr_elapsed_s += dt_s
        required, p = self.plan(f_hz)
        acks, lost = await self._send(p)
        if len(lost):
            self.pool.available[lost] = False
            required, p = self.plan(f_hz)
            more, _ = await self._send(p)
            acks = [*acks, *more]
        lost_evs = [self.pool.ev_ids[int(i)] for i in lost]
        return DispatchResult(f_hz, required, p, acks, lost_evs)

    async def _send(self, p: FloatArray) -> tuple[Sequence[Ack], np.ndarray]:
        """Send the setpoints of the available chargers that moved by the deadband (or were never sent);
        returns the answers and the pool positions of the chargers that did not accept."""
        moved = np.isnan(self.sent_kw) | (np.abs(p - self.sent_kw) >= self.deadband_kw)
        idx = np.nonzero(self.pool.available & moved)[0]
        acks = await self.gateway.send_setpoints(SetpointBatch(self.pool.charger_ids, idx, p[idx], self.valid_until))
        if len(acks) != len(idx):
            msg = f"gateway answered {len(acks)} of {len(idx)} setpoints"
            raise RuntimeError(msg)
        ok = accepted_mask(acks)
        self.sent_kw[idx] = np.where(ok, p[idx], np.nan)
        return acks, idx[~ok]

    async def ev_returned(self, ev_id: str) -> DispatchResult:
        """An EV (or its charger) is back: it takes its share again from this sample on."""
        self.pool.set_available(ev_id, True)
        return await self.on_frequency(self.last_f_hz)

    async def ev_left(self, ev_id: str) -> DispatchResult:
        """An EV left (or failed): take it out and re-allocate its share at once."""
        self.pool.set_available(ev_id, False)
        return await self.on_frequency(self.last_f_hz)


async def configure_local(pool: ReservePool, gateway: ChargerGateway, rules: MarketRules) -> list[Ack]:
    """Local mode: give every available charger its own frequency-to-power curve (OCPP 2.1 LocalFrequency)."""
    grid = [49.0, *curve_breakpoints_hz(rules), 51.0]
    acks = []
    for i in np.nonzero(pool.available)[0]:
        curve = [FrequencyCurvePoint(f, p) for f, p in local_curve(pool, int(i), rules, grid)]
        acks.append(await gateway.configure_frequency_curve(pool.charger_ids[int(i)], curve))
    return acks
