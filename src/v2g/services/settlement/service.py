"""Run a settlement period for a set of EVs from stored telemetry, exactly once.

The EVs go in chunks of ``batch_size`` (in id order), each chunk one database transaction
(:mod:`v2g.services.settlement.batch`): the period's metering intervals are computed from the
chargers' registers in bulk and merged into the stored month snapshots day by day (a day that would
lose quality keeps its stored version; telemetry removed by retention never degrades a snapshot),
the owners' economics are computed in integers, and only the difference between what that yields
and what the ledger already holds for each EV and period is posted, under the key
``settle/<period>/<ev>/<n>``, with the statement summaries. So a re-run posts nothing, a run killed
at any point resumes where it stopped (a chunk is either fully stored or not at all), and late data
becomes a correction in the next open period. Reserve revenue nobody earned is posted per bidding
group (subject ``group:<id>``), one transaction each.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from v2g.fleet.model import PriceArea
from v2g.services.clock import Clock
from v2g.services.settlement.batch import BatchRun
from v2g.services.settlement.ports import (
    ConcurrentPostingError,
    DayAheadPrices,
    EvAccount,
    SettlementSources,
    SettlementStore,
    SettlementTx,
)
from v2g.settlement.allocation import ReserveAllocation, ReserveHour, allocate_reserve_hour
from v2g.settlement.economics import (
    eur_to_sek,
    spot_ore_per_kwh,
)
from v2g.settlement.ledger import (
    LedgerTransaction,
    PeriodClose,
    close_period,
    settlement_transaction,
    unallocated_postings,
)
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
    fast_metered: int = 0  # EVs metered by the bulk register path (the rest one by one)

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
        batch_size: int = 1000,
    ) -> None:
        self.sources = sources
        self.prices = prices
        self.tx = tx
        self.tariffs = tariffs
        self.clock = clock
        self.config = config or SettlementConfig()
        self.on_subject_done = on_subject_done  # called after each committed subject (progress, tests)
        self.batch_size = batch_size  # EVs per database transaction of a run
        self.timings: defaultdict[str, float] = defaultdict(float)  # wall seconds per phase, summed

    # ------------------------------------------------------------------ metering
    def capture_metering(self, period: SettlementPeriod, ev_ids: Sequence[str]) -> int:
        """Compute the period's intervals so far and store the snapshots that changed (no posting).

        Run it at least daily: telemetry is kept for a limited time, the snapshots for good.
        Returns how many EV-days changed.
        """
        end_at = min(period.end_at, floor_quarter(self.clock.now()))
        if end_at <= period.start_at:
            return 0
        run = BatchRun(self, period, end_at, post=False)
        run.run(self.sources.ev_accounts(ev_ids))
        return run.changed_days

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
        run = BatchRun(self, period, period.end_at, post=True, reserve=reserve.per_ev_sek)
        report.results += run.run(accounts)
        report.fast_metered = run.fast_evs
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

    def spot_eur_per_mwh(self, area: PriceArea, period: SettlementPeriod) -> list[Decimal]:
        """The period's day-ahead price of every quarter in EUR/MWh, exact."""
        n = int((period.end_at - period.start_at) / QUARTER)
        values = self.prices.day_ahead_eur_per_mwh(area, period.start_at, n)
        if len(values) != n:
            msg = f"day_ahead_eur_per_mwh: {len(values)} prices for the {n} quarters of {period} in {area}"
            raise SettlementInputError(msg)
        return [
            decimal_of(value, field=f"day_ahead_eur_per_mwh[{area} {(period.start_at + k * QUARTER).isoformat()}]")
            for k, value in enumerate(values)
        ]

    def spot_prices(self, area: PriceArea, period: SettlementPeriod) -> dict[datetime, Decimal]:
        """The period's day-ahead price of every quarter in öre/kWh."""
        out = {}
        for k, eur in enumerate(self.spot_eur_per_mwh(area, period)):
            at = period.start_at + k * QUARTER
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
