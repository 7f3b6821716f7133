"""A period's metering, economics, ledger and statements for many EVs at once, exactly once.

EVs go in chunks (``SettlementService.batch_size``, in id order). Per chunk: the chargers' register
readings are read in bulk and metered with numpy (:func:`~v2g.settlement.meter_arrays.meter_registers`);
an EV whose data need more than the register rules (a gap with an advance, power integration, a
reset, no reading before the window) is metered alone by :func:`~v2g.settlement.metering.meter_intervals`,
which gives the same intervals. Then one database transaction: the stored snapshots are read and
merged day by day (a day that would lose quality keeps its stored version), changed snapshots are
stored as a new version, and, for a run, the owners' lines are computed in integers
(:func:`~v2g.settlement.vectorised.settle_month_details`), the difference to what is posted is
inserted in bulk under ``settle/<period>/<ev>/<n>``, and changed statement summaries are stored.
A chunk is all or nothing: a run killed at any point resumes with the chunks not committed, and a
chunk that meets a key or version another run stored first is read again and retried once.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from v2g.fleet.model import PriceArea
from v2g.services.settlement.ports import (
    ConcurrentPostingError,
    EvAccount,
    NewMeterMonth,
    NewStatement,
    SettlementStore,
)
from v2g.services.settlement.summary import statement_summary
from v2g.settlement.canonical import digest as content_digest
from v2g.settlement.economics import ContractTerms, EvPeriodSettlement
from v2g.settlement.ledger import LedgerTransaction, dso_account, line_postings, owner_account, settlement_transaction
from v2g.settlement.meter_arrays import MeterArrays, day_bounds, decode_into, encode_row, merge_days, meter_registers
from v2g.settlement.metering import meter_intervals
from v2g.settlement.money import ZERO, SettlementInputError
from v2g.settlement.periods import SettlementPeriod
from v2g.settlement.vectorised import MeteredMonth, quarters_of, settle_month_details
from v2g.units import QUARTER

if TYPE_CHECKING:
    from v2g.services.settlement.service import SettlementService, SubjectResult


@dataclass(frozen=True, slots=True)
class _Chunk:
    accounts: list[EvAccount]
    dso_keys: list[str]
    fresh: MeterArrays


class BatchRun:
    """One capture or run of ``period`` up to ``end_at`` over the service's ports."""

    def __init__(
        self,
        service: SettlementService,
        period: SettlementPeriod,
        end_at: datetime,
        *,
        post: bool,
        reserve: Mapping[str, Decimal] | None = None,
    ) -> None:
        self.service = service
        self.period = period
        self.end_at = end_at
        self.post = post
        self.reserve = reserve or {}
        self.n_q = quarters_of(period)
        self.bounds = day_bounds(period)
        self.spot: dict[PriceArea, list[Decimal]] = {}
        self.changed_days = 0
        self.fast_evs = 0

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.service.timings[name] += time.perf_counter() - started

    def run(self, accounts: Sequence[EvAccount]) -> list[SubjectResult]:
        from v2g.services.settlement.service import SubjectResult

        results: list[SubjectResult] = []
        size = max(self.service.batch_size, 1)
        for lo in range(0, len(accounts), size):
            part = accounts[lo : lo + size]
            failed: list[SubjectResult] = []
            chosen, keys = [], []
            for ev in part:
                try:
                    key = self.service.config.tariff_of(ev)
                    self.service.tariffs.dso(key)  # an unknown tariff fails before any work
                except SettlementInputError as exc:
                    failed.append(SubjectResult(ev.ev_id, "failed", error=str(exc)))
                    continue
                chosen.append(ev)
                keys.append(key)
            with self.phase("read_meter_s"):
                chunk, errors = self._meter(chosen, keys)
            failed += errors
            try:
                try:
                    done = self._store(chunk)
                except ConcurrentPostingError:
                    done = self._store(chunk)
            except SettlementInputError as exc:
                done = [SubjectResult(ev.ev_id, "failed", error=str(exc)) for ev in chunk.accounts]
            for result in sorted(done + failed, key=lambda r: r.subject):
                results.append(result)
                if self.service.on_subject_done is not None:
                    self.service.on_subject_done(result)
        return results

    # ------------------------------------------------------------------ metering
    def _meter(self, accounts: list[EvAccount], keys: list[str]) -> tuple[_Chunk, list[SubjectResult]]:
        from v2g.services.settlement.service import SubjectResult

        start = self.period.start_at
        n_window = int((self.end_at - start) / QUARTER)
        rules = self.service.tariffs.metering
        readings = self.service.sources.register_readings(accounts, start, self.end_at)
        window, fast = meter_registers(readings, len(accounts), start, n_window, rules.max_measured_span_s)
        self.fast_evs += int(fast.sum())
        fresh = MeterArrays.empty(len(accounts), self.n_q)
        for mine, theirs in zip(fresh.fields, window.fields, strict=True):
            mine[:, :n_window] = theirs
        failed: list[SubjectResult] = []
        keep = np.ones(len(accounts), dtype=np.bool_)
        for i in np.flatnonzero(~fast).tolist():
            ev = accounts[i]
            try:
                data = self.service.sources.meter_data(ev, start, self.end_at)
                fresh.set_intervals(i, self.period, meter_intervals(data, start, self.end_at, rules))
            except SettlementInputError as exc:
                failed.append(SubjectResult(ev.ev_id, "failed", error=str(exc)))
                keep[i] = False
        rows = np.flatnonzero(keep)
        kept = fresh.take(rows)
        return _Chunk([accounts[i] for i in rows], [keys[i] for i in rows], kept), failed

    # ------------------------------------------------------------------ one transaction
    def _store(self, chunk: _Chunk) -> list[SubjectResult]:
        from v2g.services.settlement.service import SubjectResult

        now = self.service.clock.now()
        ev_ids = [ev.ev_id for ev in chunk.accounts]
        with self.service.tx() as store:
            with self.phase("snapshots_s"):
                merged = self._snapshots(store, chunk, now)
            if not self.post:
                return []
            with self.phase("economics_s"):
                settled, contracts = self._economics(store, chunk, merged)
            with self.phase("ledger_s"):
                txs = self._ledger(store, chunk, settled)
            with self.phase("statements_s"):
                self._statements(store, chunk, settled, contracts, now)
        out = []
        for ev_id, s in zip(ev_ids, settled, strict=True):
            tx = txs.get(ev_id)
            quality = dict(s.quality)
            if tx is None:
                out.append(SubjectResult(ev_id, "unchanged", quality=quality))
            else:
                out.append(SubjectResult(ev_id, "posted", tx.key, tx.kind.value, tx.period.code, quality=quality))
        return out

    def _snapshots(self, store: SettlementStore, chunk: _Chunk, now: datetime) -> MeterArrays:
        ev_ids = [ev.ev_id for ev in chunk.accounts]
        stored = store.meter_months(self.period, ev_ids)
        old = MeterArrays.empty(len(ev_ids), self.n_q)
        for i, ev_id in enumerate(ev_ids):
            if ev_id in stored:
                decode_into(stored[ev_id].data, old, i)
        merged, changed = merge_days(old, chunk.fresh, self.bounds)
        self.changed_days += int(changed.sum())
        rows = []
        for i in np.flatnonzero(changed).tolist():
            ev = chunk.accounts[i]
            blob, digest = encode_row(merged, i)
            before = stored.get(ev.ev_id)
            if before is None or before.digest != digest:
                version = before.version + 1 if before is not None else 1
                rows.append(NewMeterMonth(ev.ev_id, ev.charger_id, version, self.n_q, digest, blob))
        store.save_meter_months(self.period, rows, now)
        return merged

    def _spot(self, area: PriceArea) -> list[Decimal]:
        if area not in self.spot:
            self.spot[area] = self.service.spot_eur_per_mwh(area, self.period)
        return self.spot[area]

    def _economics(
        self, store: SettlementStore, chunk: _Chunk, merged: MeterArrays
    ) -> tuple[list[EvPeriodSettlement], list[ContractTerms]]:
        period = self.period
        own = store.contract_terms_of(sorted({ev.customer_id for ev in chunk.accounts}), period.first_day)
        default = ContractTerms.default(self.service.tariffs, period.first_day)
        contracts = [own.get(ev.customer_id, default) for ev in chunk.accounts]
        by_area: dict[PriceArea, list[int]] = defaultdict(list)
        for i, ev in enumerate(chunk.accounts):
            by_area[ev.price_area].append(i)
        settled: list[EvPeriodSettlement | None] = [None] * len(chunk.accounts)
        for area, rows in by_area.items():
            idx = np.asarray(rows)
            month = MeteredMonth(
                period,
                [chunk.accounts[i].ev_id for i in rows],
                [chunk.accounts[i].customer_id for i in rows],
                [chunk.dso_keys[i] for i in rows],
                merged.import_e4[idx],
                merged.export_e4[idx],
            )
            details = settle_month_details(
                month,
                self._spot(area),
                self.service.tariffs,
                [contracts[i] for i in rows],
                [self.reserve.get(chunk.accounts[i].ev_id, ZERO) for i in rows],
                [merged.quality_counts(i) for i in rows],
            )
            for i, s in zip(rows, details, strict=True):
                settled[i] = s
        return [s for s in settled if s is not None], contracts

    def _ledger(
        self, store: SettlementStore, chunk: _Chunk, settled: Sequence[EvPeriodSettlement]
    ) -> dict[str, LedgerTransaction]:
        period = self.period
        posted = store.postings_of_subjects(period, [ev.ev_id for ev in chunk.accounts])
        closed = store.closed_periods()
        txs: dict[str, LedgerTransaction] = {}
        for ev, key, s in zip(chunk.accounts, chunk.dso_keys, settled, strict=True):
            target = line_postings(s.lines, owner=owner_account(ev.customer_id), dso=dso_account(key), subject=ev.ev_id)
            have, count = posted.get(ev.ev_id, ([], 0))
            tx = settlement_transaction(
                settles=period,
                subject=ev.ev_id,
                target=target,
                posted=have,
                posted_count=count,
                closed=closed,
                reason="the data or rules changed",
            )
            if tx is not None:
                txs[ev.ev_id] = tx
        store.append_many(list(txs.values()), self.service.clock.now())
        return txs

    def _statements(
        self,
        store: SettlementStore,
        chunk: _Chunk,
        settled: Sequence[EvPeriodSettlement],
        contracts: Sequence[ContractTerms],
        now: datetime,
    ) -> None:
        latest = store.latest_statement_digests(self.period, [ev.ev_id for ev in chunk.accounts])
        rows = []
        for ev, s, contract in zip(chunk.accounts, settled, contracts, strict=True):
            summary = statement_summary(s, contract, self.service.tariffs)
            digest = content_digest(summary)
            before = latest.get(ev.ev_id)
            if before is None or before[1] != digest:
                version = before[0] + 1 if before is not None else 1
                rows.append(
                    NewStatement(ev.ev_id, ev.customer_id, version, digest, json.dumps(summary, sort_keys=True))
                )
        store.save_statements(self.period, rows, now)
