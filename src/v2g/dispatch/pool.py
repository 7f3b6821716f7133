"""The EVs that hold a group's reserves, and the allocation of a required response across them.

Vectorised over the fleet (numpy) so one frequency sample is answered for thousands of EVs at once.
Sign convention: ``p_kw > 0`` charges the EV; response is grid-positive (up = lower ``p_kw``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from v2g.markets.rules import FCR_PRODUCTS, MarketRules, Product

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class UnknownEvError(KeyError):
    """An EV id that the pool does not hold."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class ReservePool:
    """Reserves held per EV, with each EV's planned power and power limits."""

    ev_ids: list[str]
    charger_ids: list[str]
    reserve_kw: dict[Product, FloatArray]
    baseline_p_kw: FloatArray
    p_min_kw: FloatArray  # most negative power (max discharge), <= 0
    p_max_kw: FloatArray  # max charge power, >= 0
    available: BoolArray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.ev_ids)
        if len(self.charger_ids) != n:
            msg = f"pool.charger_ids: {len(self.charger_ids)} entries for {n} EVs"
            raise ValueError(msg)
        if len(set(self.ev_ids)) != n:
            msg = "pool.ev_ids: duplicate EV id"
            raise ValueError(msg)
        for name in ("baseline_p_kw", "p_min_kw", "p_max_kw"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                msg = f"pool.{name}: shape {arr.shape}, expected ({n},)"
                raise ValueError(msg)
        for p in FCR_PRODUCTS:
            arr = self.reserve_kw.setdefault(p, np.zeros(n))
            if arr.shape != (n,) or bool(np.any(arr < 0)):
                msg = f"pool.reserve_kw[{p.value}]: must be {n} values >= 0"
                raise ValueError(msg)
        if bool(np.any(self.p_min_kw > 0)) or bool(np.any(self.p_max_kw < 0)):
            msg = "pool.p_min_kw/p_max_kw: p_min_kw must be <= 0 and p_max_kw >= 0"
            raise ValueError(msg)
        if self.available.shape != (n,):
            self.available = np.ones(n, dtype=bool)
        self._index = {ev: i for i, ev in enumerate(self.ev_ids)}

    def __len__(self) -> int:
        return len(self.ev_ids)

    def index(self, ev_id: str) -> int:
        """Position of ``ev_id``; unknown ids raise :class:`UnknownEvError` naming the id."""
        try:
            return self._index[ev_id]
        except KeyError:
            msg = f"ev_id: {ev_id!r} holds no reserve in this pool"
            raise UnknownEvError(msg) from None

    def set_available(self, ev_id: str, available: bool) -> None:
        """Mark an EV as gone (left, failed, offline) or back."""
        self.available[self.index(ev_id)] = available

    def held_kw(self, product: Product) -> float:
        """Reserve currently maintained by available EVs for ``product`` (kW)."""
        return float(self.reserve_kw[product][self.available].sum())

    @classmethod
    def build(
        cls,
        ev_ids: Sequence[str],
        charger_ids: Sequence[str],
        reserve_kw: Mapping[Product, Sequence[float]],
        baseline_p_kw: Sequence[float],
        p_min_kw: Sequence[float],
        p_max_kw: Sequence[float],
    ) -> ReservePool:
        """Build from plain sequences."""
        return cls(
            ev_ids=list(ev_ids),
            charger_ids=list(charger_ids),
            reserve_kw={p: np.asarray(v, dtype=float) for p, v in reserve_kw.items()},
            baseline_p_kw=np.asarray(baseline_p_kw, dtype=float),
            p_min_kw=np.asarray(p_min_kw, dtype=float),
            p_max_kw=np.asarray(p_max_kw, dtype=float),
        )


def allocate(
    pool: ReservePool,
    required_kw: Mapping[Product, float],
    *,
    baseline_p_kw: FloatArray | None = None,
    reserve_kw: Mapping[Product, FloatArray] | None = None,
    extra_kw: FloatArray | None = None,
    passes: int = 4,
) -> FloatArray:
    """Response (kW, grid-positive) per EV that together meets ``required_kw``.

    Each product's requirement is shared in proportion to the reserve each available EV holds for
    it (an activation of a product without per-EV reserves, mFRR, is shared by headroom). What an EV
    cannot deliver (power limit, or the EV left) is re-shared at once among the other available EVs
    in proportion to their remaining headroom. Unavailable EVs get 0. ``extra_kw`` adds a response of
    each EV's own on top of its share (an EV in alert-state energy management answers a shifted
    frequency reference).
    """
    base = pool.baseline_p_kw if baseline_p_kw is None else baseline_p_kw
    avail = pool.available
    up_room = np.where(avail, np.maximum(base - pool.p_min_kw, 0.0), 0.0)
    down_room = np.where(avail, np.maximum(pool.p_max_kw - base, 0.0), 0.0)
    response = np.zeros(len(pool))
    held = pool.reserve_kw if reserve_kw is None else reserve_kw
    for product, need in required_kw.items():
        weights_of = held.get(product)
        if need == 0.0 or weights_of is None:
            continue  # a product nobody holds a reserve for (an mFRR activation) is shared by headroom below
        weights = np.where(avail, weights_of, 0.0)
        total = float(weights.sum())
        if total > 0:
            response += need * weights / total
    total_need = float(sum(required_kw.values()))
    if extra_kw is not None:
        extra = np.where(avail, extra_kw, 0.0)
        response += extra
        total_need += float(extra.sum())
    for _ in range(passes):
        clipped = np.clip(response, -down_room, up_room)
        residual = total_need - float(clipped.sum())
        response = clipped
        if abs(residual) < 1e-9:
            break
        room = (up_room - response) if residual > 0 else (down_room + response)
        room = np.maximum(room, 0.0)
        room_total = float(room.sum())
        if room_total <= 1e-12:
            break
        response = response + residual * room / room_total
    return np.clip(response, -down_room, up_room)


def setpoints_kw(pool: ReservePool, response_kw: FloatArray, *, baseline_p_kw: FloatArray | None = None) -> FloatArray:
    """Power per EV (EV sign) that delivers ``response_kw`` on top of the baseline."""
    base = pool.baseline_p_kw if baseline_p_kw is None else baseline_p_kw
    return np.where(pool.available, np.clip(base - response_kw, pool.p_min_kw, pool.p_max_kw), 0.0)


def local_curve(
    pool: ReservePool, i: int, rules: MarketRules, frequencies_hz: Sequence[float]
) -> list[tuple[float, float]]:
    """One EV's frequency-to-power curve (``(f_hz, p_kw)`` points) for local control (OCPP 2.1 LocalFrequency)."""
    points = []
    for f in frequencies_hz:
        response = sum(float(pool.reserve_kw[p][i]) * rules[p].response_fraction(f) for p in FCR_PRODUCTS)
        p_kw = float(np.clip(pool.baseline_p_kw[i] - response, pool.p_min_kw[i], pool.p_max_kw[i]))
        points.append((f, p_kw))
    return points
