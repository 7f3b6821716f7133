"""Run a settlement period for a set of EVs from stored telemetry, exactly once.

For each EV (in id order), in one database transaction: the period's metering intervals are
computed from the charger's registers and merged into the stored day snapshots (a better-or-equal
quality value replaces a stored one; telemetry removed by retention never degrades a snapshot), the
owner's economics are computed, and only the difference between what that yields and what the
ledger already holds for the EV and period is posted, under the key ``settle/<period>/<ev>/<n>``.
So a re-run posts nothing, a run killed at any point resumes where it stopped (an EV is either
fully posted or not at all), and late data becomes a correction in the next open period. Reserve
revenue nobody earned is posted the same way per bidding group (subject ``group:<id>``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from v2g.fleet.model import PriceArea
from v2g.services.clock import Clock
from v2g.services.settlement.ports import (
    ConcurrentPostingError,
    DayAheadPrices,
    EvAccount,
    SettlementSources,
    SettlementStore,
    SettlementTx,
)
from v2g.services.settlement.summary import statement_summary
from v2g.settlement.allocation import ReserveAllocation, ReserveHour, allocate_reserve_hour
from v2g.settlement.canonical import digest as content_digest
from v2g.settlement.canonical import intervals_digest
from v2g.settlement.economics import (
    ContractTerms,
    eur_to_sek,
    settle_ev_period,
    spot_ore_per_kwh,
)
from v2g.settlement.ledger import (
    LedgerTransaction,
    PeriodClose,
    close_period,
    dso_account,
    line_postings,
    owner_account,
    settlement_transaction,
    unallocated_postings,
)
from v2g.settlement.metering import MeterInterval, merge_intervals, meter_intervals
from v2g.settlement.money import ZERO, SettlementInputError, decimal_of
from v2g.settlement.periods import SettlementPeriod, local_date
from v2g.settlement.tariffs import TariffBook
from v2g.units import QUARTER, floor_quarter


@dataclass(frozen=True, slots=True)
class SettlementConfig:
    """Which DSO tariff (``tariffs.yaml`` key) bills each DSO organisation's grid areas."""

    dso_tariffs: Mapping[str, str] = field(default_factory=dict)
    default_dso_tariff: str = ""

    def tariff_of(self, ev: EvAccount) -> str:
        return self.tariff_of_org(ev.dso_org_id, ev.grid_area_id, where=f"ev[{ev.ev_id}]")

    def tariff_of_org(self, dso_org_id: str | None, grid_area_id: str, *, where: str = "site") -> str:
        """The tariff key billing a grid area's DSO organisation; an error naming both when none."""
        if dso_org_id and dso_org_id in self.dso_tariffs:
            return self.dso_tariffs[dso_org_id]
        if self.default_dso_tariff:
            return self.default_dso_tariff
        msg = (
            f"{where}.dso_tariff: grid area {grid_area_id} (DSO organisation {dso_org_id!r}) has no "
            "tariff; map it in V2G_SETTLEMENT_DSO_TARIFFS"
        )
        raise SettlementInputError(msg)


@dataclass(frozen=True, slots=True)
class SubjectResult:
    """What a run did for one EV (or one group's unallocated reserve money)."""

    subject: str
    status: str  # "posted", "unchanged" or "failed"
    key: str | None = None
    kind: str | None = None
    period: str | None = None  # where it was posted
    error: str | None = None
    quality: Mapping[str, int] = field(default_factory=dict)


@dataclass
class RunReport:
    """The outcome of one run of a period."""

    period: SettlementPeriod
    results: list[SubjectResult] = field(default_factory=list)

    def _with(self, status: str) -> list[SubjectResult]:
        return [r for r in self.results if r.status == status]

    @property
    def posted(self) -> list[SubjectResult]:
        return self._with("posted")

    @property
    def unchanged(self) -> list[SubjectResult]:
        return self._with("unchanged")

    @property
    def failed(self) -> list[SubjectResult]:
        return self._with("failed")


@dataclass(frozen=True, slots=True)
class _Reserve:
    per_ev_sek: Mapping[str, Decimal]
    unallocated_by_group_sek: Mapping[str, Decimal]


class SettlementService:
    """Metering capture, period runs and period closes over the settlement ports."""

    def __init__(
        self,
        *,
        sources: SettlementSources,
        prices: DayAheadPrices,
        tx: SettlementTx,
        tariffs: TariffBook,
        clock: Clock,
        config: SettlementConfig | None = None,
        on_subject_done: Callable[[SubjectResult], None] | None = None,
    ) -> None:
        self.sources = sources
        self.prices = prices
        self.tx = tx
        self.tariffs = tariffs
        self.clock = clock
        self.config = config or SettlementConfig()
        self.on_subject_done = on_subject_done  # called after each committed subject (progress, tests)

    # ------------------------------------------------------------------ metering
    def capture_metering(self, period: SettlementPeriod, ev_ids: Sequence[str]) -> int:
        """Compute the period's intervals so far and store the days that changed (no posting).

        Run it at least daily: telemetry is kept for a limited time, the snapshots for good.
        Returns how many EV-days got a new snapshot version.
        """
        end_at = min(period.end_at, floor_quarter(self.clock.now()))
        if end_at <= period.start_at:
            return 0
        changed = 0
        for ev in self.sources.ev_accounts(ev_ids):
            fresh = self._fresh_intervals(ev, period.start_at, end_at)
            with self.tx() as store:
                _, n = self._merge_days(store, ev, fresh)
                changed += n
        return changed

    def _fresh_intervals(self, ev: EvAccount, start_at: datetime, end_at: datetime) -> list[MeterInterval]:
        data = self.sources.meter_data(ev, start_at, end_at)
        return meter_intervals(data, start_at, end_at, self.tariffs.metering)

    def _merge_days(
        self, store: SettlementStore, ev: EvAccount, fresh: Sequence[MeterInterval]
    ) -> tuple[list[MeterInterval], int]:
        by_day: dict[date, list[MeterInterval]] = defaultdict(list)
        for iv in fresh:
            by_day[local_date(iv.start_at)].append(iv)
        stored = store.meter_days(ev.ev_id, by_day.keys())
        merged_all: list[MeterInterval] = []
        changed = 0
        for day in sorted(by_day):
            old = stored.get(day)
            merged = merge_intervals(old.intervals if old is not None else (), by_day[day])
            if old is None or intervals_digest(merged) != old.digest:
                version = old.version + 1 if old is not None else 1
                store.save_meter_day(ev.ev_id, ev.charger_id, day, version, merged, self.clock.now())
                changed += 1
            merged_all.extend(merged)
        return merged_all, changed

    # ------------------------------------------------------------------ a period
    def run_period(self, period: SettlementPeriod, ev_ids: Sequence[str]) -> RunReport:
        """Settle ``period`` for ``ev_ids`` (the period must have ended); see the module docstring."""
        now = self.clock.now()
        if now < period.end_at:
            msg = f"period: {period} has not ended yet (it ends {period.end_at.isoformat()}); capture metering instead"
            raise SettlementInputError(msg)
        report = RunReport(period)
        accounts = self.sources.ev_accounts(ev_ids)
        known = {ev.ev_id for ev in accounts}
        for ev_id in sorted(set(ev_ids) - known):
            report.results.append(
                SubjectResult(ev_id, "failed", error=f"ev_id: {ev_id!r} has no vehicle with a charger")
            )
        reserve = self._reserve(period)
        spot: dict[PriceArea, dict[datetime, Decimal]] = {}
        for ev in accounts:
            if ev.price_area not in spot:
                spot[ev.price_area] = self.spot_prices(ev.price_area, period)
            work = partial(self._settle_ev, period, ev, spot[ev.price_area], reserve)
            report.results.append(self._once(work, ev.ev_id))
        for group_id in sorted(reserve.unallocated_by_group_sek):
            amount = reserve.unallocated_by_group_sek[group_id]
            subject = f"group:{group_id}"
            report.results.append(self._once(partial(self._post_group, period, subject, amount), subject))
        return report

    def _once(self, work: Callable[[], SubjectResult], subject: str) -> SubjectResult:
        """Run one subject's transaction; a concurrent run's key collision is retried once."""
        try:
            try:
                result = work()
            except ConcurrentPostingError:
                result = work()
        except SettlementInputError as exc:
            result = SubjectResult(subject, "failed", error=str(exc))
        if self.on_subject_done is not None:
            self.on_subject_done(result)
        return result

    def _settle_ev(
        self, period: SettlementPeriod, ev: EvAccount, spot: Mapping[datetime, Decimal], reserve: _Reserve
    ) -> SubjectResult:
        dso_key = self.config.tariff_of(ev)
        self.tariffs.dso(dso_key)  # an unknown tariff fails before any work
        fresh = self._fresh_intervals(ev, period.start_at, period.end_at)
        with self.tx() as store:
            intervals, _ = self._merge_days(store, ev, fresh)
            contract = store.contract_terms(ev.customer_id, period.first_day) or ContractTerms.default(
                self.tariffs, period.first_day
            )
            settled = settle_ev_period(
                period=period,
                ev_id=ev.ev_id,
                customer_id=ev.customer_id,
                intervals=intervals,
                spot_ore_per_kwh=spot,
                tariffs=self.tariffs,
                dso_key=dso_key,
                contract=contract,
                reserve_net_sek=reserve.per_ev_sek.get(ev.ev_id, ZERO),
            )
            target = line_postings(
                settled.lines, owner=owner_account(ev.customer_id), dso=dso_account(dso_key), subject=ev.ev_id
            )
            tx = self._post(store, period, ev.ev_id, target)
            summary = statement_summary(settled, contract, self.tariffs)
            digest = content_digest(summary)
            latest = store.latest_statement_digest(period, ev.ev_id)
            if latest is None or latest[1] != digest:
                version = latest[0] + 1 if latest is not None else 1
                store.save_statement(period, ev.ev_id, ev.customer_id, version, summary, self.clock.now())
        return _result(ev.ev_id, tx, settled.quality)

    def _post_group(self, period: SettlementPeriod, subject: str, amount_sek: Decimal) -> SubjectResult:
        with self.tx() as store:
            tx = self._post(store, period, subject, unallocated_postings(amount_sek, subject))
        return _result(subject, tx, {})

    def _post(
        self, store: SettlementStore, period: SettlementPeriod, subject: str, target: Sequence[Any]
    ) -> LedgerTransaction | None:
        posted, count = store.subject_postings(period, subject)
        tx = settlement_transaction(
            settles=period,
            subject=subject,
            target=target,
            posted=posted,
            posted_count=count,
            closed=store.closed_periods(),
            reason="the data or rules changed",
        )
        if tx is not None:
            store.append(tx, self.clock.now())
        return tx

    def reserve_allocations(self, period: SettlementPeriod) -> list[ReserveAllocation]:
        """Every verified market hour of the period in SEK (rounded once per hour), split over its EVs."""
        out = []
        for h in self.sources.reserve_hours(period.start_at, period.end_at):
            rate = self.tariffs.sek_per_eur.at(local_date(h.hour_start_at))
            hour = ReserveHour(
                group_id=h.group_id,
                product=h.product,
                hour_start_at=h.hour_start_at,
                capacity_payment_sek=eur_to_sek(h.capacity_payment_eur, rate),
                activation_payment_sek=eur_to_sek(h.activation_payment_eur, rate),
                repayment_sek=eur_to_sek(h.repayment_eur, rate),
                contributions=h.contributions,
            )
            out.append(allocate_reserve_hour(hour))
        return out

    def reserve_per_ev(self, period: SettlementPeriod) -> Mapping[str, Decimal]:
        """Each EV's net reserve money of the period (SEK, öre-exact)."""
        return self._reserve(period).per_ev_sek

    def _reserve(self, period: SettlementPeriod) -> _Reserve:
        """The period's market money summed per EV and, what no EV earned, per group."""
        per_ev: dict[str, Decimal] = defaultdict(lambda: ZERO)
        unallocated: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for alloc in self.reserve_allocations(period):
            for ev_id in alloc.ev_ids:
                per_ev[ev_id] += alloc.net_sek(ev_id)
            unallocated[alloc.hour.group_id] += alloc.unallocated_sek
        return _Reserve(dict(per_ev), {g: a for g, a in unallocated.items() if a != 0})

    def spot_prices(self, area: PriceArea, period: SettlementPeriod) -> dict[datetime, Decimal]:
        """The period's day-ahead price of every quarter in öre/kWh."""
        n = int((period.end_at - period.start_at) / QUARTER)
        values = self.prices.day_ahead_eur_per_mwh(area, period.start_at, n)
        if len(values) != n:
            msg = f"day_ahead_eur_per_mwh: {len(values)} prices for the {n} quarters of {period} in {area}"
            raise SettlementInputError(msg)
        out = {}
        for k, value in enumerate(values):
            at = period.start_at + k * QUARTER
            eur = decimal_of(value, field=f"day_ahead_eur_per_mwh[{area} {at.isoformat()}]")
            out[at] = spot_ore_per_kwh(eur, self.tariffs.sek_per_eur.at(local_date(at)))
        return out

    # ------------------------------------------------------------------ close
    def close_period(self, period: SettlementPeriod) -> PeriodClose:
        """Close ``period``: nothing more is posted in it; later corrections go to the next open period."""
        with self.tx() as store:
            store.lock_period(period)
            close = close_period(
                period,
                store.transactions_in(period),
                store.closed_periods(),
                self.clock.now(),
                earlier_open_with_postings=store.periods_with_postings(),
            )
            store.record_close(close)
        return close


def _result(subject: str, tx: LedgerTransaction | None, quality: Mapping[str, int]) -> SubjectResult:
    if tx is None:
        return SubjectResult(subject, "unchanged", quality=dict(quality))
    return SubjectResult(subject, "posted", tx.key, tx.kind.value, tx.period.code, quality=dict(quality))
