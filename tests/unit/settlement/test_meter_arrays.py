"""Month snapshot arrays: the compressed row reads back as it was written, and the day merge keeps a
stored day that a fresh computation would make worse (as ``merge_intervals`` does)."""

from __future__ import annotations

import numpy as np

from v2g.settlement.meter_arrays import MEASURED, MeterArrays, day_bounds, decode_into, encode_row, merge_days
from v2g.settlement.periods import SettlementPeriod

MARCH = SettlementPeriod(2026, 3)


def _random(n: int, n_q: int, seed: int) -> MeterArrays:
    rng = np.random.default_rng(seed)
    a = MeterArrays.empty(n, n_q)
    a.import_e4[:] = rng.integers(0, 30_000, (n, n_q)) * (rng.random((n, n_q)) < 0.1)
    a.export_e4[:] = rng.integers(0, 3 * 10**9, (n, n_q)) * (rng.random((n, n_q)) < 0.01)  # needs 64 bits
    a.import_quality[:] = rng.integers(1, 4, (n, n_q))
    a.export_quality[:] = rng.integers(1, 4, (n, n_q))
    a.import_rules[:] = rng.integers(0, 512, (n, n_q))
    a.export_rules[:] = rng.integers(0, 512, (n, n_q))
    return a


def test_a_snapshot_row_reads_back_exactly_and_its_digest_follows_the_content() -> None:
    n_q = 2972
    a = _random(3, n_q, 1)
    back = MeterArrays.empty(3, n_q)
    digests = set()
    for i in range(3):
        blob, digest = encode_row(a, i)
        decode_into(blob, back, i)
        digests.add(digest)
        assert encode_row(back, i) == (blob, digest)
    assert all((x == y).all() for x, y in zip(a.fields, back.fields, strict=True))
    assert len(digests) == 3
    quiet = MeterArrays.empty(1, n_q)  # a month metered measured and idle: a few hundred bytes
    quiet.import_quality[:] = quiet.export_quality[:] = MEASURED
    assert len(encode_row(quiet, 0)[0]) < 500


def test_a_fresh_day_replaces_the_stored_day_unless_it_loses_quality() -> None:
    n_q = 2972
    bounds = day_bounds(MARCH)
    assert len(bounds) == 31
    assert bounds[29] - bounds[28] == 92  # 29 March: 23 hours
    stored = MeterArrays.empty(1, n_q)
    stored.import_e4[0, :200] = 7
    stored.import_quality[0, :200] = MEASURED
    stored.export_quality[0, :200] = MEASURED
    fresh = MeterArrays.empty(1, n_q)
    fresh.import_e4[0, :300] = 9
    fresh.import_quality[0, :300] = MEASURED
    fresh.export_quality[0, :300] = MEASURED
    fresh.import_quality[0, 100] = 2  # estimated: day 2 (quarters 96-191) would lose quality
    merged, changed = merge_days(stored, fresh, bounds)
    assert merged.import_e4[0, :96].tolist() == [9] * 96  # day 1: fresh
    assert merged.import_e4[0, 96:192].tolist() == [7] * 96  # day 2 kept as stored, as a whole
    assert merged.import_e4[0, 192:300].tolist() == [9] * 108  # day 3 fresh, day 4 only fresh has
    assert changed.tolist() == [3]  # days 1, 3 and 4
