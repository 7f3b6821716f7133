"""A month of metering intervals for many EVs as arrays, metered from registers in bulk.

:class:`MeterArrays` holds, per EV and quarter of a period, what :class:`~v2g.settlement.metering.MeterInterval`
holds: imported and exported energy in whole 0.1 Wh units (int64), each direction's quality as a
code (0 no interval, 1 missing, 2 estimated, 3 measured) and its fill rules as a bit mask. It is
what a run meters, merges with the stored snapshot and prices, and what the snapshot stores
(:func:`encode_row`: one compressed blob per EV and month).

:func:`meter_registers` meters many EVs at once from their register readings, exactly as
:func:`~v2g.settlement.metering.meter_intervals` does, for the EVs whose data need only the
``register`` and ``no_advance`` rules: readings on both sides of the window, no register going
backwards or below zero, and every span longer than ``max_measured_span_s`` without an advance.
Such an EV's register value at each quarter boundary is the time interpolation of its segment,
rounded half up to 0.1 Wh, in integers; a quarter's energy is the difference of its boundary values.
Every other EV (a gap with an advance, no reading before the window, a reset) is returned as not
metered, and the caller meters it with :func:`~v2g.settlement.metering.meter_intervals`: the two
give the same intervals (tested on random data with gaps, resets and power samples).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from v2g.settlement.metering import FillRule, MeterInterval, Quality
from v2g.settlement.money import SettlementInputError
from v2g.settlement.periods import SettlementPeriod, local_date
from v2g.units import QUARTER, ensure_utc

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

RULE_ORDER: tuple[FillRule, ...] = tuple(FillRule)
_BIT = {rule: 1 << i for i, rule in enumerate(RULE_ORDER)}
_RULES_OF_MASK: dict[int, tuple[FillRule, ...]] = {}
QUALITY_CODE = {Quality.MISSING: 1, Quality.ESTIMATED: 2, Quality.MEASURED: 3}
_QUALITY_OF_CODE = {v: k for k, v in QUALITY_CODE.items()}
MEASURED = QUALITY_CODE[Quality.MEASURED]
QUARTER_US = 900_000_000
_MAGIC = b"V2GM"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400_000_000
_FORMAT = 1


def rules_mask(rules: Sequence[FillRule]) -> int:
    mask = 0
    for rule in rules:
        mask |= _BIT[rule]
    return mask


def rules_of(mask: int) -> tuple[FillRule, ...]:
    """The rules of a mask, sorted as :func:`meter_intervals` sorts them."""
    if mask not in _RULES_OF_MASK:
        _RULES_OF_MASK[mask] = tuple(sorted(r for r in RULE_ORDER if mask & _BIT[r]))
    return _RULES_OF_MASK[mask]


@dataclass(slots=True)
class MeterArrays:
    """``[EV, quarter]`` arrays of a period (see the module docstring)."""

    import_e4: IntArray
    export_e4: IntArray
    import_quality: npt.NDArray[np.uint8]
    export_quality: npt.NDArray[np.uint8]
    import_rules: npt.NDArray[np.uint16]
    export_rules: npt.NDArray[np.uint16]

    @classmethod
    def empty(cls, n_evs: int, n_q: int) -> MeterArrays:
        return cls(
            np.zeros((n_evs, n_q), dtype=np.int64),
            np.zeros((n_evs, n_q), dtype=np.int64),
            np.zeros((n_evs, n_q), dtype=np.uint8),
            np.zeros((n_evs, n_q), dtype=np.uint8),
            np.zeros((n_evs, n_q), dtype=np.uint16),
            np.zeros((n_evs, n_q), dtype=np.uint16),
        )

    @property
    def fields(self) -> tuple[npt.NDArray[np.generic], ...]:
        return (
            self.import_e4,
            self.export_e4,
            self.import_quality,
            self.export_quality,
            self.import_rules,
            self.export_rules,
        )

    @property
    def present(self) -> BoolArray:
        """Quarters that have an interval."""
        return self.import_quality > 0

    def take(self, rows: IntArray) -> MeterArrays:
        """The given rows, as a new set of arrays."""
        return MeterArrays(
            self.import_e4[rows],
            self.export_e4[rows],
            self.import_quality[rows],
            self.export_quality[rows],
            self.import_rules[rows],
            self.export_rules[rows],
        )

    def set_row(self, i: int, other: MeterArrays, j: int) -> None:
        for mine, theirs in zip(self.fields, other.fields, strict=True):
            mine[i] = theirs[j]

    def set_intervals(self, i: int, period: SettlementPeriod, intervals: Sequence[MeterInterval]) -> None:
        """Row ``i`` from intervals of the period (quarters without one stay empty)."""
        start = period.start_at
        for iv in intervals:
            k = int((iv.start_at - start) / QUARTER)
            self.import_e4[i, k] = _e4(iv.import_kwh)
            self.export_e4[i, k] = _e4(iv.export_kwh)
            self.import_quality[i, k] = QUALITY_CODE[iv.import_quality]
            self.export_quality[i, k] = QUALITY_CODE[iv.export_quality]
            self.import_rules[i, k] = rules_mask(iv.import_rules)
            self.export_rules[i, k] = rules_mask(iv.export_rules)

    def intervals(self, i: int, period: SettlementPeriod) -> list[MeterInterval]:
        """Row ``i`` as intervals (quarters without one are left out)."""
        out = []
        start = period.start_at
        imp, exp = self.import_e4[i].tolist(), self.export_e4[i].tolist()
        iq, eq = self.import_quality[i].tolist(), self.export_quality[i].tolist()
        ir, er = self.import_rules[i].tolist(), self.export_rules[i].tolist()
        for k in np.flatnonzero(self.import_quality[i]).tolist():
            out.append(
                MeterInterval(
                    start_at=start + k * QUARTER,
                    import_kwh=Decimal(imp[k]).scaleb(-4),
                    export_kwh=Decimal(exp[k]).scaleb(-4),
                    import_quality=_QUALITY_OF_CODE[iq[k]],
                    export_quality=_QUALITY_OF_CODE[eq[k]],
                    import_rules=rules_of(ir[k]),
                    export_rules=rules_of(er[k]),
                )
            )
        return out

    def quality_counts(self, i: int) -> dict[str, int]:
        """How many of row ``i``'s intervals are measured, estimated, missing (the worse direction)."""
        worst = np.minimum(self.import_quality[i], self.export_quality[i])
        counts = np.bincount(worst, minlength=4).tolist()
        return {q.value: int(counts[code]) for q, code in QUALITY_CODE.items()}


def _e4(kwh: Decimal) -> int:
    units = kwh.scaleb(4)
    if units != units.to_integral_value():
        msg = f"interval energy: {kwh} kWh is not a whole number of 0.1 Wh"
        raise SettlementInputError(msg)
    return int(units)


# ---------------------------------------------------------------------------------------------- storage
def encode_row(arrays: MeterArrays, i: int) -> tuple[bytes, str]:
    """Row ``i`` as a compressed blob and the SHA-256 of its content (what a re-run compares)."""
    n_q = arrays.import_e4.shape[1]
    energy = np.concatenate([arrays.import_e4[i], arrays.export_e4[i]])
    wide = bool(energy.size) and int(energy.max()) >= 2**31
    body = b"".join(
        [
            energy.astype("<i8" if wide else "<i4").tobytes(),
            arrays.import_quality[i].tobytes(),
            arrays.export_quality[i].tobytes(),
            arrays.import_rules[i].astype("<u2").tobytes(),
            arrays.export_rules[i].astype("<u2").tobytes(),
        ]
    )
    header = _MAGIC + struct.pack("<BBI", _FORMAT, 8 if wide else 4, n_q)
    return header + zlib.compress(body, 6), hashlib.sha256(header + body).hexdigest()


def decode_into(blob: bytes, arrays: MeterArrays, i: int) -> None:
    """A blob of :func:`encode_row` into row ``i`` (the period must have as many quarters)."""
    if blob[:4] != _MAGIC:
        msg = "meter snapshot: not a metering blob"
        raise SettlementInputError(msg)
    fmt, width, n_q = struct.unpack("<BBI", blob[4:10])
    if fmt != _FORMAT or n_q != arrays.import_e4.shape[1]:
        msg = f"meter snapshot: format {fmt} with {n_q} quarters, expected {_FORMAT} with {arrays.import_e4.shape[1]}"
        raise SettlementInputError(msg)
    body = zlib.decompress(blob[10:])
    energy = np.frombuffer(body, dtype="<i8" if width == 8 else "<i4", count=2 * n_q).astype(np.int64)
    at = 2 * n_q * width
    arrays.import_e4[i], arrays.export_e4[i] = energy[:n_q], energy[n_q:]
    arrays.import_quality[i] = np.frombuffer(body, dtype=np.uint8, count=n_q, offset=at)
    arrays.export_quality[i] = np.frombuffer(body, dtype=np.uint8, count=n_q, offset=at + n_q)
    arrays.import_rules[i] = np.frombuffer(body, dtype="<u2", count=n_q, offset=at + 2 * n_q)
    arrays.export_rules[i] = np.frombuffer(body, dtype="<u2", count=n_q, offset=at + 4 * n_q)


# ---------------------------------------------------------------------------------------------- merging
def day_bounds(period: SettlementPeriod) -> list[int]:
    """The first quarter of each local day of the period."""
    n_q = int((period.end_at - period.start_at) / QUARTER)
    days = [local_date(period.start_at + k * QUARTER) for k in range(n_q)]
    return [0] + [k for k in range(1, n_q) if days[k] != days[k - 1]]


def merge_days(stored: MeterArrays, fresh: MeterArrays, bounds: Sequence[int]) -> tuple[MeterArrays, IntArray]:
    """:func:`~v2g.settlement.metering.merge_intervals` for every EV and local day at once: the fresh
    day replaces the stored one as a whole unless an interval would lose quality in either
    direction; intervals only one side has are kept. Also how many days of each EV changed."""
    both = stored.present & fresh.present
    worse_q = both & ((fresh.import_quality < stored.import_quality) | (fresh.export_quality < stored.export_quality))
    n, n_q = fresh.import_e4.shape
    if n_q == 0 or n == 0:
        return fresh, np.zeros(n, dtype=np.int64)
    lengths = np.diff(np.append(np.asarray(bounds), n_q))
    worse_day = np.logical_or.reduceat(worse_q, bounds, axis=1)
    worse = np.repeat(worse_day, lengths, axis=1)
    take_old = stored.present & (worse | ~fresh.present)
    merged = MeterArrays(*(np.where(take_old, old, new) for old, new in zip(stored.fields, fresh.fields, strict=True)))
    differs = np.zeros((n, n_q), dtype=np.bool_)
    for old, new in zip(stored.fields, merged.fields, strict=True):
        differs |= old != new
    changed_days = np.logical_or.reduceat(differs, bounds, axis=1).sum(axis=1)
    return merged, changed_days.astype(np.int64)


# ---------------------------------------------------------------------------------------------- metering
@dataclass(frozen=True, slots=True)
class RegisterReadings:
    """Register readings of many EVs (rows of a batch), flat: the chosen EVSE's telemetry readings in
    ``[start - 1 day, end + 1 day)`` and the charging transactions' meter start and stop (``from_tx``),
    in 0.1 Wh units; ``unreadable`` rows had a value that is not a whole number of 0.1 Wh."""

    ev_row: IntArray
    export: BoolArray
    at_us: IntArray  # microseconds since the Unix epoch
    value_e4: IntArray
    from_tx: BoolArray
    unreadable: frozenset[int] = frozenset()


def _last_of(change: BoolArray, size: int) -> BoolArray:
    """Which elements end their group, from where consecutive elements differ."""
    return np.r_[change, True] if size else np.zeros(0, dtype=np.bool_)


def _select_telemetry(ev: IntArray, t: IntArray, tx: BoolArray, start: int, end: int) -> BoolArray:
    """The window's readings, the last before it and the first at or after its end (per EV), and
    every transaction reading: what the per-EV reader fetches."""
    keep = tx | ((t >= start) & (t < end))
    order = np.lexsort((t, ev))
    for side in ("before", "after"):
        mask = ~tx & ((t < start) if side == "before" else (t >= end))
        idx = order[mask[order]]
        if idx.size == 0:
            continue
        e = ev[idx]
        # before: the last per EV (ascending time); after: the first
        pick = idx[_last_of(e[1:] != e[:-1], e.size)] if side == "before" else idx[np.r_[True, e[1:] != e[:-1]]]
        keep[pick] = True
    return keep


def meter_registers(
    readings: RegisterReadings, n_evs: int, start_at: datetime, n_quarters: int, max_span_s: int
) -> tuple[MeterArrays, BoolArray]:
    """Meter rows ``0..n_evs-1`` over ``n_quarters`` quarters from ``start_at``; see the module
    docstring. Returns the arrays and which rows were metered (the others are left empty)."""
    start = _epoch_us(start_at)
    end = start + n_quarters * QUARTER_US
    max_span = max_span_s * 1_000_000
    out = MeterArrays.empty(n_evs, n_quarters)
    ok = np.ones(n_evs, dtype=np.bool_)
    ok[list(readings.unreadable)] = False
    per_direction = []
    for export in (False, True):
        sel = readings.export == export
        ev, t, v, tx = readings.ev_row[sel], readings.at_us[sel], readings.value_e4[sel], readings.from_tx[sel]
        keep = _select_telemetry(ev, t, tx, start, end)
        ev, t, v = ev[keep], t[keep], v[keep]
        order = np.lexsort((v, t, ev))
        ev, t, v = ev[order], t[order], v[order]
        last = _last_of((ev[1:] != ev[:-1]) | (t[1:] != t[:-1]), ev.size)  # same instant: the largest value stays
        ev, t, v = ev[last], t[last], v[last]
        count = np.bincount(ev, minlength=n_evs)
        offset = np.concatenate([[0], np.cumsum(count)[:-1]])
        # the reading at or before the window's start and the first at or after its end, each at most
        # a day away (the bulk read covers a day on each side; the per-EV read has no such limit)
        n_le = np.bincount(ev[t <= start], minlength=n_evs)
        n_lt = np.bincount(ev[t < end], minlength=n_evs)
        first = np.clip(offset + n_le - 1, 0, max(t.size - 1, 0))
        after = np.clip(offset + n_lt, 0, max(t.size - 1, 0))
        covered = (n_le > 0) & (n_lt < count)
        if t.size:
            covered &= (t[first] >= start - _DAY_US) & (t[after] < end + _DAY_US)
        last_of = _last_of(ev[1:] != ev[:-1], ev.size)
        same = ~last_of[:-1] if ev.size else np.zeros(0, dtype=np.bool_)  # segment j -> j+1 within one EV
        dv, span = np.diff(v), np.diff(t)
        inside = same & (t[:-1] < end) & (t[1:] > start)  # segments overlapping the window
        bad = inside & ((dv < 0) | ((span > max_span) & (dv != 0)) | (dv > 10**9) | (v[:-1] < 0))
        bad_ev = np.zeros(n_evs, dtype=np.bool_)
        bad_ev[ev[:-1][bad]] = True
        ok &= covered & ~bad_ev
        per_direction.append((ev, t, v, same, dv, span))
    for export, (ev, t, v, same, dv, span) in zip((False, True), per_direction, strict=True):
        _interpolate(out, ok, export, ev, t, v, same, dv, span, start, n_quarters, max_span)
    return out, ok


def _interpolate(
    out: MeterArrays,
    ok: BoolArray,
    export: bool,
    ev: IntArray,
    t: IntArray,
    v: IntArray,
    same: BoolArray,
    dv: IntArray,
    span: IntArray,
    start: int,
    n_q: int,
    max_span: int,
) -> None:
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return
    n_b = n_q + 1
    b_ev = np.repeat(rows, n_b)
    b_t = np.tile(start + np.arange(n_b, dtype=np.int64) * QUARTER_US, rows.size)
    use = ok[ev]
    r_ev, r_t, r_idx = ev[use], t[use], np.flatnonzero(use)
    all_ev = np.concatenate([r_ev, b_ev])
    all_t = np.concatenate([r_t, b_t])
    kind = np.concatenate([np.zeros(r_ev.size, dtype=np.int8), np.ones(b_ev.size, dtype=np.int8)])
    pos = np.concatenate([r_idx, np.full(b_ev.size, -1, dtype=np.int64)])
    order = np.lexsort((kind, all_t, all_ev))
    running = np.maximum.accumulate(pos[order])
    j = np.empty_like(running)
    j[order] = running
    j = j[r_ev.size :]  # per boundary: the last reading at or before it (same EV: it covers the window)
    at_reading = t[j] == b_t
    nxt = np.minimum(j + 1, t.size - 1)
    seg_span = np.where(at_reading, 1, t[nxt] - t[j])
    seg_dv = np.where(at_reading, 0, v[nxt] - v[j])
    w = b_t - t[j]
    value = v[j] + (2 * seg_dv * w + seg_span) // (2 * seg_span)
    register = value.reshape(rows.size, n_b)
    energy = np.diff(register, axis=1)
    # the rules: every segment overlapping a quarter
    seg = np.flatnonzero(same & ok[ev[:-1]]) if ev.size > 1 else np.zeros(0, dtype=np.int64)
    k_lo = np.clip(np.floor_divide(t[seg] - start, QUARTER_US), 0, n_q)
    k_hi = np.clip(-np.floor_divide(-(t[seg + 1] - start), QUARTER_US), 0, n_q)
    live = k_hi > k_lo
    masks = np.zeros((out.import_e4.shape[0], n_q), dtype=np.uint16)
    for rule, is_rule in (
        (FillRule.REGISTER, span[seg] <= max_span),
        (FillRule.NO_ADVANCE, span[seg] > max_span),
    ):
        pick = live & is_rule
        e = ev[seg][pick]
        flat_lo = e * (n_q + 1) + k_lo[pick]
        flat_hi = e * (n_q + 1) + k_hi[pick]
        size = out.import_e4.shape[0] * (n_q + 1)
        diff = np.bincount(flat_lo, minlength=size) - np.bincount(flat_hi, minlength=size)
        covered = np.cumsum(diff.reshape(-1, n_q + 1), axis=1)[:, :n_q] > 0
        masks |= np.where(covered, np.uint16(_BIT[rule]), np.uint16(0))
    energy_field = out.export_e4 if export else out.import_e4
    quality = out.export_quality if export else out.import_quality
    rules = out.export_rules if export else out.import_rules
    energy_field[rows] = energy
    quality[rows] = MEASURED
    rules[rows] = masks[rows]


def _epoch_us(at: datetime) -> int:
    return (ensure_utc(at) - _EPOCH) // timedelta(microseconds=1)


def blob_intervals(blob: bytes | None, period: SettlementPeriod) -> list[MeterInterval]:
    """A stored snapshot's intervals (none without a snapshot)."""
    if blob is None:
        return []
    arrays = MeterArrays.empty(1, int((period.end_at - period.start_at) / QUARTER))
    decode_into(blob, arrays, 0)
    return arrays.intervals(0, period)
