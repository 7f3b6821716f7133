"""Settlement storage: the append-only ledger and its companions (one transaction per unit of work),
and the read side settlement needs (the fleet, telemetry, transactions, delivery records, plans).

The store has no UPDATE or DELETE statement; the database refuses them on the ledger tables anyway
(triggers of migration 0011_settlement). A transaction's idempotency key is unique: a second insert of the
same key fails and the whole unit of work is rolled back.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, and_, func, or_, select, text
from sqlalchemy.exc import IntegrityError

from v2g.adapters.db.tables.devices import charging_transactions, telemetry
from v2g.adapters.db.tables.fleet import chargers, customers, grid_areas, sites, vehicles
from v2g.adapters.db.tables.markets import bidding_group_members, bidding_groups, delivery_records
from v2g.adapters.db.tables.operations import operating_plans
from v2g.adapters.db.tables.settlement import (
    ledger_period_closes,
    ledger_postings,
    ledger_transactions,
    meter_month_snapshots,
    owner_contracts,
    settlement_statements,
)
from v2g.fleet.model import PriceArea
from v2g.services.settlement.ports import (
    AccountPosting,
    ConcurrentPostingError,
    EvAccount,
    MarketReserveHour,
    NewMeterMonth,
    NewStatement,
    StoredMeterMonth,
)
from v2g.settlement.allocation import EvContribution
from v2g.settlement.canonical import digest as content_digest
from v2g.settlement.economics import ContractTerms
from v2g.settlement.ledger import Account, LedgerTransaction, PeriodClose, Posting, TxKind
from v2g.settlement.meter_arrays import BoolArray, IntArray, RegisterReadings
from v2g.settlement.metering import MeterData, PluggedPeriod, Reading
from v2g.settlement.money import KWH_QUANTUM, ORE, SettlementInputError, decimal_of
from v2g.settlement.periods import SettlementPeriod
from v2g.units import HOUR, QUARTER

IMPORT_REGISTER = "Energy.Active.Import.Register"
EXPORT_REGISTER = "Energy.Active.Export.Register"
IMPORT_POWER = "Power.Active.Import"
EXPORT_POWER = "Power.Active.Export"
_KW_QUANTUM = Decimal("0.001")


class SqlSettlementStore:
    """The settlement store on one connection (the caller's transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # ------------------------------------------------------------------ ledger
    def closed_periods(self) -> set[SettlementPeriod]:
        rows = self.conn.execute(select(ledger_period_closes.c.period))
        return {SettlementPeriod.parse(r.period) for r in rows}

    def _advisory_lock(self, period: SettlementPeriod, *, shared: bool) -> None:
        if self.conn.dialect.name == "postgresql":
            fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
            self.conn.execute(text(f"SELECT {fn}(hashtext(:k))"), {"k": f"v2g-ledger-period:{period.code}"})

    def lock_period(self, period: SettlementPeriod) -> None:
        """Exclusive until the transaction ends (a close); postings take the same lock shared."""
        self._advisory_lock(period, shared=False)

    def subject_postings(self, settles: SettlementPeriod, subject: str) -> tuple[list[Posting], int]:
        t, p = ledger_transactions.c, ledger_postings.c
        count = self.conn.execute(
            select(func.count()).where(t.settles_period == settles.code, t.subject == subject)
        ).scalar_one()
        rows = self.conn.execute(
            select(p.account, p.amount_sek, p.line, p.subject)
            .join(ledger_transactions, t.id == p.transaction_id)
            .where(t.settles_period == settles.code, t.subject == subject)
            .order_by(t.id, p.seq)
        )
        return [_posting(r) for r in rows], int(count)

    def append(self, tx: LedgerTransaction, at: datetime) -> None:
        self._advisory_lock(tx.period, shared=True)
        if tx.period in self.closed_periods():
            msg = f"transaction[{tx.key}]: period {tx.period} was closed meanwhile"
            raise ConcurrentPostingError(msg)
        try:
            result = self.conn.execute(
                ledger_transactions.insert().values(
                    idempotency_key=tx.key,
                    kind=tx.kind.value,
                    period=tx.period.code,
                    settles_period=tx.settles.code,
                    subject=tx.subject,
                    description=tx.description[:400],
                    digest=tx.digest,
                    created_at=at,
                )
            )
        except IntegrityError as exc:
            msg = f"transaction[{tx.key}]: the key was posted by another run"
            raise ConcurrentPostingError(msg) from exc
        key = result.inserted_primary_key
        assert key is not None
        self.conn.execute(
            ledger_postings.insert(),
            [
                {
                    "transaction_id": key[0],
                    "seq": i,
                    "account": p.account.code,
                    "line": p.line,
                    "subject": p.subject,
                    "amount_sek": p.amount_sek,
                }
                for i, p in enumerate(tx.postings)
            ],
        )

    def postings_of_subjects(
        self, settles: SettlementPeriod, subjects: Sequence[str]
    ) -> dict[str, tuple[list[Posting], int]]:
        """:meth:`subject_postings` for many subjects in two queries (subjects with nothing are absent)."""
        t, p = ledger_transactions.c, ledger_postings.c
        where = and_(t.settles_period == settles.code, t.subject.in_(list(subjects)))
        counts: dict[str, int] = {
            r[0]: r[1] for r in self.conn.execute(select(t.subject, func.count()).where(where).group_by(t.subject))
        }
        out: dict[str, tuple[list[Posting], int]] = {s: ([], int(n)) for s, n in counts.items()}
        rows = self.conn.execute(
            select(p.account, p.amount_sek, p.line, p.subject, t.subject.label("tx_subject"))
            .join(ledger_transactions, t.id == p.transaction_id)
            .where(where)
            .order_by(t.id, p.seq)
        )
        for r in rows:
            out[r.tx_subject][0].append(_posting(r))
        return out

    def append_many(self, txs: Sequence[LedgerTransaction], at: datetime) -> None:
        """:meth:`append` for many transactions in bulk (one statement per table)."""
        if not txs:
            return
        for period in sorted({tx.period for tx in txs}):
            self._advisory_lock(period, shared=True)
        closed = self.closed_periods()
        late = sorted({tx.period.code for tx in txs if tx.period in closed})
        if late:
            msg = f"transactions: period {', '.join(late)} was closed meanwhile"
            raise ConcurrentPostingError(msg)
        t = ledger_transactions
        try:
            result = self.conn.execute(
                t.insert().returning(t.c.idempotency_key, t.c.id, sort_by_parameter_order=True),
                [
                    {
                        "idempotency_key": tx.key,
                        "kind": tx.kind.value,
                        "period": tx.period.code,
                        "settles_period": tx.settles.code,
                        "subject": tx.subject,
                        "description": tx.description[:400],
                        "digest": tx.digest,
                        "created_at": at,
                    }
                    for tx in txs
                ],
            )
            ids = {str(r[0]): int(r[1]) for r in result}
        except IntegrityError as exc:
            msg = "transactions: a key was posted by another run"
            raise ConcurrentPostingError(msg) from exc
        self.conn.execute(
            ledger_postings.insert(),
            [
                {
                    "transaction_id": ids[tx.key],
                    "seq": i,
                    "account": p.account.code,
                    "line": p.line,
                    "subject": p.subject,
                    "amount_sek": p.amount_sek,
                }
                for tx in txs
                for i, p in enumerate(tx.postings)
            ],
        )

    def contract_terms_of(self, customer_ids: Sequence[str], day: date) -> dict[str, ContractTerms]:
        """:meth:`contract_terms` for many customers in one query (customers on default terms are absent)."""
        c = owner_contracts.c
        rows = self.conn.execute(
            select(c.customer_id, c.owner_revenue_share, c.wear_allowance_ore_per_kwh, c.valid_from)
            .where(c.customer_id.in_(list(customer_ids)), c.valid_from <= day.isoformat())
            .order_by(c.customer_id, c.valid_from)
        )
        out = {}
        for r in rows:  # ascending valid_from: the last one per customer stays
            out[r.customer_id] = ContractTerms(
                Decimal(r.owner_revenue_share),
                Decimal(r.wear_allowance_ore_per_kwh),
                f"the owner's contract from {r.valid_from}",
            )
        return out

    def transaction(self, key: str) -> LedgerTransaction | None:
        rows = self._transactions(ledger_transactions.c.idempotency_key == key)
        return rows[0] if rows else None

    def transactions_in(self, period: SettlementPeriod) -> list[LedgerTransaction]:
        return self._transactions(ledger_transactions.c.period == period.code)

    def transactions_settling(self, settles: SettlementPeriod, subject: str) -> list[LedgerTransaction]:
        t = ledger_transactions.c
        return self._transactions(and_(t.settles_period == settles.code, t.subject == subject))

    def _transactions(self, where: Any) -> list[LedgerTransaction]:
        t, p = ledger_transactions.c, ledger_postings.c
        heads = self.conn.execute(select(ledger_transactions).where(where).order_by(t.id)).all()
        if not heads:
            return []
        legs: dict[int, list[Posting]] = defaultdict(list)
        ids = [h.id for h in heads]
        for r in self.conn.execute(
            select(ledger_postings).where(p.transaction_id.in_(ids)).order_by(p.transaction_id, p.seq)
        ):
            legs[r.transaction_id].append(_posting(r))
        return [
            LedgerTransaction(
                key=h.idempotency_key,
                kind=TxKind(h.kind),
                period=SettlementPeriod.parse(h.period),
                settles=SettlementPeriod.parse(h.settles_period),
                subject=h.subject,
                postings=tuple(legs[h.id]),
                description=h.description,
            )
            for h in heads
        ]

    def periods_with_postings(self) -> set[SettlementPeriod]:
        rows = self.conn.execute(select(ledger_transactions.c.period).distinct())
        return {SettlementPeriod.parse(r.period) for r in rows}

    def account_balances(self, period: SettlementPeriod | None = None) -> dict[str, Decimal]:
        """The net of each account over every period (or one), zeros dropped."""
        t, p = ledger_transactions.c, ledger_postings.c
        query = select(p.account, func.sum(p.amount_sek).label("net")).group_by(p.account)
        if period is not None:
            query = query.join(ledger_transactions, t.id == p.transaction_id).where(t.period == period.code)
        rows = self.conn.execute(query.order_by(p.account))
        return {r.account: Decimal(r.net).quantize(ORE) for r in rows if Decimal(r.net) != 0}

    def postings_settling(self, settles: SettlementPeriod) -> list[Posting]:
        """Every posting of every transaction settling ``settles`` (settlements and corrections)."""
        t, p = ledger_transactions.c, ledger_postings.c
        rows = self.conn.execute(
            select(p.account, p.amount_sek, p.line, p.subject)
            .join(ledger_transactions, t.id == p.transaction_id)
            .where(t.settles_period == settles.code, t.kind.in_([TxKind.SETTLEMENT.value, TxKind.CORRECTION.value]))
            .order_by(t.id, p.seq)
        )
        return [_posting(r) for r in rows]

    def account_postings(self, account: str) -> list[AccountPosting]:
        """Every posting on one account, oldest first, with its transaction."""
        t, p = ledger_transactions.c, ledger_postings.c
        rows = self.conn.execute(
            select(t.idempotency_key, t.kind, t.period, t.settles_period, p.line, p.subject, p.amount_sek)
            .join(ledger_transactions, t.id == p.transaction_id)
            .where(p.account == account)
            .order_by(t.id, p.seq)
        )
        return [
            AccountPosting(
                r.idempotency_key,
                r.kind,
                r.period,
                r.settles_period,
                r.line,
                r.subject,
                Decimal(r.amount_sek).quantize(ORE),
            )
            for r in rows
        ]

    def account_balance(self, account: str, through: SettlementPeriod | None = None) -> Decimal:
        """The net of one account over the transactions posted in periods up to ``through`` (all without)."""
        t, p = ledger_transactions.c, ledger_postings.c
        query = (
            select(func.coalesce(func.sum(p.amount_sek), 0))
            .join(ledger_transactions, t.id == p.transaction_id)
            .where(p.account == account)
        )
        if through is not None:
            query = query.where(t.period <= through.code)  # YYYY-MM sorts as it reads
        return Decimal(self.conn.execute(query).scalar_one()).quantize(ORE)

    def owner_customers(self) -> list[str]:
        """Customers with any posting on their owner account."""
        p = ledger_postings.c
        rows = self.conn.execute(select(p.account).where(p.account.like("owner:%")).distinct())
        return sorted(str(r.account).partition(":")[2] for r in rows)

    def statements_of(self, customer_id: str, period: SettlementPeriod) -> list[dict[str, Any]]:
        """The latest statement summary of each of the customer's EVs for the period (EVs in id order)."""
        s = settlement_statements.c
        rows = self.conn.execute(
            select(s.ev_id, s.version, s.summary_json, s.created_at)
            .where(s.period == period.code, s.customer_id == customer_id)
            .order_by(s.ev_id, s.version)
        )
        latest: dict[str, Any] = {}
        for r in rows:
            latest[r.ev_id] = r
        return [
            {**json.loads(latest[ev].summary_json), "created_at": latest[ev].created_at.isoformat()}
            for ev in sorted(latest)
        ]

    def statement_owner(self, period: SettlementPeriod, ev_id: str) -> str | None:
        s = settlement_statements.c
        row = self.conn.execute(select(s.customer_id).where(s.period == period.code, s.ev_id == ev_id).limit(1)).first()
        return None if row is None else str(row.customer_id)

    def record_close(self, close: PeriodClose) -> None:
        try:
            self.conn.execute(
                ledger_period_closes.insert().values(
                    period=close.period.code,
                    closed_at=close.closed_at,
                    transactions=close.transactions,
                    trial_balance_json=json.dumps({k: str(v) for k, v in close.trial_balance.items()}),
                )
            )
        except IntegrityError as exc:
            msg = f"period: {close.period} is already closed"
            raise SettlementInputError(msg) from exc

    # ------------------------------------------------------------------ metering snapshots
    def meter_months(self, period: SettlementPeriod, ev_ids: Sequence[str]) -> dict[str, StoredMeterMonth]:
        """The latest stored snapshot of each EV for ``period`` (EVs without one are absent)."""
        if not ev_ids:
            return {}
        m = meter_month_snapshots.c
        latest = (
            select(m.ev_id, func.max(m.version).label("version"))
            .where(m.period == period.code, m.ev_id.in_(list(ev_ids)))
            .group_by(m.ev_id)
            .subquery()
        )
        rows = self.conn.execute(
            select(m.ev_id, m.version, m.digest, m.data).join(
                latest,
                and_(m.ev_id == latest.c.ev_id, m.version == latest.c.version, m.period == period.code),
            )
        )
        return {r.ev_id: StoredMeterMonth(r.ev_id, int(r.version), str(r.digest), bytes(r.data)) for r in rows}

    def save_meter_months(self, period: SettlementPeriod, rows: Sequence[NewMeterMonth], at: datetime) -> None:
        """Insert new snapshot versions in bulk; a version stored meanwhile raises ConcurrentPostingError."""
        if not rows:
            return
        try:
            self.conn.execute(
                meter_month_snapshots.insert(),
                [
                    {
                        "ev_id": r.ev_id,
                        "period": period.code,
                        "version": r.version,
                        "charger_id": r.charger_id,
                        "n_quarters": r.n_quarters,
                        "digest": r.digest,
                        "data": r.data,
                        "captured_at": at,
                    }
                    for r in rows
                ],
            )
        except IntegrityError as exc:
            msg = f"meter snapshots of {period}: a version was stored by another run"
            raise ConcurrentPostingError(msg) from exc

    # ------------------------------------------------------------------ statements and contracts
    def latest_statement_digests(self, period: SettlementPeriod, ev_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
        """The latest statement version and digest of each EV, in one query (EVs without one are absent)."""
        if not ev_ids:
            return {}
        s = settlement_statements.c
        latest = (
            select(s.ev_id, func.max(s.version).label("version"))
            .where(s.period == period.code, s.ev_id.in_(list(ev_ids)))
            .group_by(s.ev_id)
            .subquery()
        )
        rows = self.conn.execute(
            select(s.ev_id, s.version, s.digest).join(
                latest, and_(s.ev_id == latest.c.ev_id, s.version == latest.c.version, s.period == period.code)
            )
        )
        return {r.ev_id: (int(r.version), str(r.digest)) for r in rows}

    def save_statements(self, period: SettlementPeriod, rows: Sequence[NewStatement], at: datetime) -> None:
        """Insert statement versions in bulk; a version stored meanwhile raises ConcurrentPostingError."""
        if not rows:
            return
        try:
            self.conn.execute(
                settlement_statements.insert(),
                [
                    {
                        "period": period.code,
                        "ev_id": r.ev_id,
                        "version": r.version,
                        "customer_id": r.customer_id,
                        "digest": r.digest,
                        "summary_json": r.summary_json,
                        "created_at": at,
                    }
                    for r in rows
                ],
            )
        except IntegrityError as exc:
            msg = f"statements of {period}: a version was stored by another run"
            raise ConcurrentPostingError(msg) from exc

    def save_statement(
        self,
        period: SettlementPeriod,
        ev_id: str,
        customer_id: str,
        version: int,
        summary: Mapping[str, object],
        at: datetime,
    ) -> None:
        try:
            self.conn.execute(
                settlement_statements.insert().values(
                    period=period.code,
                    ev_id=ev_id,
                    version=version,
                    customer_id=customer_id,
                    digest=content_digest(summary),
                    summary_json=json.dumps(summary, sort_keys=True),
                    created_at=at,
                )
            )
        except IntegrityError as exc:
            msg = f"statement {period} {ev_id}: version {version} was stored by another run"
            raise ConcurrentPostingError(msg) from exc

    def statement(self, period: SettlementPeriod, ev_id: str) -> dict[str, Any] | None:
        """The latest statement summary of an EV and period."""
        s = settlement_statements.c
        row = self.conn.execute(
            select(s.summary_json).where(s.period == period.code, s.ev_id == ev_id).order_by(s.version.desc()).limit(1)
        ).first()
        return None if row is None else dict(json.loads(row.summary_json))

    def contract_terms(self, customer_id: str, day: date) -> ContractTerms | None:
        c = owner_contracts.c
        row = self.conn.execute(
            select(c.owner_revenue_share, c.wear_allowance_ore_per_kwh, c.valid_from)
            .where(c.customer_id == customer_id, c.valid_from <= day.isoformat())
            .order_by(c.valid_from.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return ContractTerms(
            Decimal(row.owner_revenue_share),
            Decimal(row.wear_allowance_ore_per_kwh),
            f"the owner's contract from {row.valid_from}",
        )

    def add_contract(self, customer_id: str, valid_from: date, terms: ContractTerms, at: datetime) -> None:
        """Record an owner's contract terms from a date (a change is a new row from a later date)."""
        self.conn.execute(
            owner_contracts.insert().values(
                customer_id=customer_id,
                valid_from=valid_from.isoformat(),
                owner_revenue_share=terms.owner_revenue_share,
                wear_allowance_ore_per_kwh=terms.wear_allowance_ore_per_kwh,
                created_at=at,
            )
        )


def _posting(row: Any) -> Posting:
    return Posting(Account.parse(row.account), Decimal(row.amount_sek).quantize(ORE), row.line, row.subject)


def sql_settlement_tx(engine: Engine) -> Callable[[], AbstractContextManager[SqlSettlementStore]]:
    """A unit of work over ``engine``: each ``with`` block is one transaction (rolled back on error)."""

    @contextmanager
    def settlement_tx() -> Iterator[SqlSettlementStore]:
        with engine.begin() as conn:
            yield SqlSettlementStore(conn)

    return settlement_tx


# ---------------------------------------------------------------------------------------------- read side
def _kwh(value: float, unit: str, field: str) -> Decimal:
    wh = decimal_of(value, field=field) * (Decimal(1000) if unit.lower() == "kwh" else Decimal(1))
    return (wh / Decimal(1000)).quantize(KWH_QUANTUM, rounding=ROUND_HALF_UP)


def _kw(value: float, unit: str, field: str) -> Decimal:
    kw = decimal_of(value, field=field) / (Decimal(1) if unit.lower() == "kw" else Decimal(1000))
    return max(kw, Decimal(0)).quantize(_KW_QUANTUM, rounding=ROUND_HALF_UP)


class SqlSettlementSources:
    """The fleet, telemetry, charging transactions, delivery records and plans, read for settlement.

    One EV per charger and one charger per EV, as the planner pairs them: chargers by id, each with
    the first vehicle (by id) registered at its site and not yet paired. A charger's registers are
    those of its lowest EVSE id that reported any.
    """

    def __init__(self, engine: Engine, *, power_hold: timedelta = timedelta(minutes=5)) -> None:
        self.engine = engine
        self.power_hold = power_hold

    def ev_accounts(self, ev_ids: Sequence[str]) -> list[EvAccount]:
        wanted = set(ev_ids)
        query = (
            select(
                chargers.c.id.label("charger_id"),
                vehicles.c.id.label("ev_id"),
                vehicles.c.customer_id,
                sites.c.price_area,
                sites.c.grid_area_id,
                grid_areas.c.dso_org_id,
                vehicles.c.make,
                vehicles.c.model,
                vehicles.c.max_charge_kw.label("vehicle_kw"),
                chargers.c.max_charge_kw.label("charger_kw"),
            )
            .join(sites, sites.c.id == chargers.c.site_id)
            .join(vehicles, vehicles.c.site_id == sites.c.id)
            .join(grid_areas, grid_areas.c.id == sites.c.grid_area_id)
            .order_by(chargers.c.id, vehicles.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        seen: set[str] = set()
        accounts = []
        for r in rows:
            if r.charger_id in seen or r.ev_id in seen:
                continue
            seen.update((r.charger_id, r.ev_id))
            if r.ev_id in wanted:
                kw = decimal_of(min(r.vehicle_kw, r.charger_kw), field=f"ev[{r.ev_id}].max_charge_kw")
                accounts.append(
                    EvAccount(
                        r.ev_id,
                        r.customer_id,
                        r.charger_id,
                        PriceArea(r.price_area),
                        r.grid_area_id,
                        r.dso_org_id,
                        label=f"{r.make} {r.model} ({r.ev_id})",
                        max_charge_kw=kw.quantize(_KW_QUANTUM, rounding=ROUND_HALF_UP),
                    )
                )
        return sorted(accounts, key=lambda a: a.ev_id)

    def all_ev_ids(self) -> list[str]:
        """Every vehicle paired with a charger, as :meth:`ev_accounts` pairs them."""
        with self.engine.connect() as conn:
            ids = [r.id for r in conn.execute(select(vehicles.c.id).order_by(vehicles.c.id))]
        return [a.ev_id for a in self.ev_accounts(ids)]

    def plugged_periods(self, ev: EvAccount, start_at: datetime, end_at: datetime) -> list[PluggedPeriod]:
        tx = charging_transactions.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tx.started_at, tx.ended_at)
                .where(
                    tx.charger_id == ev.charger_id,
                    tx.started_at.is_not(None),
                    tx.started_at < end_at,
                    or_(tx.ended_at.is_(None), tx.ended_at > start_at),
                )
                .order_by(tx.started_at)
            ).all()
        return [PluggedPeriod(r.started_at, r.ended_at) for r in rows]

    def customer_name(self, customer_id: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(customers.c.name).where(customers.c.id == customer_id)).first()
        return None if row is None else str(row.name)

    def group_bsps(self) -> dict[str, str]:
        g = bidding_groups.c
        with self.engine.connect() as conn:
            return {r.id: r.bsp_org_id for r in conn.execute(select(g.id, g.bsp_org_id))}

    def meter_data(self, ev: EvAccount, start_at: datetime, end_at: datetime) -> MeterData:
        t = telemetry.c
        where = f"meter[{ev.ev_id}]"
        with self.engine.connect() as conn:
            evse = conn.execute(
                select(func.min(t.evse_id)).where(
                    t.charger_id == ev.charger_id,
                    t.measurand.in_([IMPORT_REGISTER, EXPORT_REGISTER]),
                    t.measured_at >= start_at - timedelta(days=1),
                    t.measured_at < end_at + timedelta(days=1),
                )
            ).scalar_one_or_none()
            registers: dict[str, list[Reading]] = {IMPORT_REGISTER: [], EXPORT_REGISTER: []}
            for measurand in registers:
                base = select(t.measured_at, t.value, t.unit).where(
                    t.charger_id == ev.charger_id, t.measurand == measurand, t.evse_id == (evse or 0)
                )
                rows = list(conn.execute(base.where(t.measured_at >= start_at, t.measured_at < end_at)))
                before = conn.execute(
                    base.where(t.measured_at < start_at).order_by(t.measured_at.desc()).limit(1)
                ).first()
                after = conn.execute(base.where(t.measured_at >= end_at).order_by(t.measured_at).limit(1)).first()
                rows += [r for r in (before, after) if r is not None]
                registers[measurand] = [
                    Reading(r.measured_at, _kwh(r.value, r.unit, f"{where}.{measurand}")) for r in rows
                ]
            power: dict[str, list[Reading]] = {IMPORT_POWER: [], EXPORT_POWER: []}
            samples = conn.execute(
                select(t.measurand, t.measured_at, t.value, t.unit).where(
                    t.charger_id == ev.charger_id,
                    t.measurand.in_(list(power)),
                    t.measured_at >= start_at - self.power_hold,
                    t.measured_at < end_at,
                )
            )
            for sample in samples:
                reading = Reading(sample.measured_at, _kw(sample.value, sample.unit, f"{where}.{sample.measurand}"))
                power[sample.measurand].append(reading)
            tx = charging_transactions.c
            transactions = conn.execute(
                select(tx.started_at, tx.ended_at, tx.meter_start_wh, tx.meter_stop_wh).where(
                    tx.charger_id == ev.charger_id,
                    tx.started_at.is_not(None),
                    tx.started_at < end_at,
                    or_(tx.ended_at.is_(None), tx.ended_at > start_at),
                )
            ).all()
        plugged = [PluggedPeriod(x.started_at, x.ended_at) for x in transactions]
        for x in transactions:  # a transaction's meter start and stop are import register readings too
            if x.meter_start_wh is not None:
                registers[IMPORT_REGISTER].append(Reading(x.started_at, _kwh(x.meter_start_wh, "Wh", where)))
            if x.meter_stop_wh is not None and x.ended_at is not None:
                registers[IMPORT_REGISTER].append(Reading(x.ended_at, _kwh(x.meter_stop_wh, "Wh", where)))
        return MeterData(
            charger_id=ev.charger_id,
            ev_id=ev.ev_id,
            import_register=registers[IMPORT_REGISTER],
            export_register=registers[EXPORT_REGISTER],
            import_power=power[IMPORT_POWER],
            export_power=power[EXPORT_POWER],
            plugged=plugged,
        )

    def register_readings(
        self, accounts: Sequence[EvAccount], start_at: datetime, end_at: datetime
    ) -> RegisterReadings:
        """The register readings :meth:`meter_data` reads, for many EVs in three set-based queries:
        every register reading of their chargers in ``[start_at - 1 day, end_at + 1 day)`` at each
        charger's lowest EVSE that reported one there, and their transactions' meter start and stop.
        Row ``i`` of the result is ``accounts[i]``; the caller picks the last reading before the
        window and the first after it (:func:`v2g.settlement.meter_arrays.meter_registers`)."""
        row_of = {a.charger_id: i for i, a in enumerate(accounts)}
        if not row_of:
            return _no_readings()
        lo, hi = start_at - timedelta(days=1), end_at + timedelta(days=1)
        with self.engine.connect() as conn:
            dialect = conn.dialect.name
            m = _mark(dialect)
            cursor = conn.connection.cursor()
            try:
                marks = ",".join([m] * len(row_of))
                cursor.execute(
                    f"SELECT charger_id, evse_id, measurand = {m}, lower(unit) = 'kwh', count(*),"
                    f" {_concat_times(dialect)}, {_concat_values(dialect)}"
                    f" FROM telemetry WHERE charger_id IN ({marks}) AND measurand IN ({m}, {m})"
                    f" AND measured_at >= {m} AND measured_at < {m}"
                    " GROUP BY charger_id, evse_id, measurand, lower(unit) = 'kwh'",
                    [EXPORT_REGISTER, *row_of, IMPORT_REGISTER, EXPORT_REGISTER, _at(dialect, lo), _at(dialect, hi)],
                )
                telemetry_rows = cursor.fetchall()
                cursor.execute(
                    f"SELECT charger_id, {_epoch_us_sql(dialect, 'started_at')}, {_epoch_us_sql(dialect, 'ended_at')},"
                    f" meter_start_wh, meter_stop_wh FROM charging_transactions WHERE charger_id IN ({marks})"
                    f" AND started_at IS NOT NULL AND started_at < {m} AND (ended_at IS NULL OR ended_at > {m})",
                    [*row_of, _at(dialect, end_at), _at(dialect, start_at)],
                )
                tx_rows = cursor.fetchall()
            finally:
                cursor.close()
        return _readings(row_of, [_group(dialect, *r) for r in telemetry_rows], tx_rows)

    def reserve_hours(self, start_at: datetime, end_at: datetime) -> list[MarketReserveHour]:
        """Each delivery record with each EV's part: capacity-hours held = the reserve the plan in force
        at the hour's start gave the EV x the share of the hour its charger had a transaction open (the
        rest is its shortfall); activated energy = its verified contribution in the required direction."""
        d = delivery_records.c
        with self.engine.connect() as conn:
            records = conn.execute(
                select(delivery_records)
                .where(d.hour_start_at >= start_at, d.hour_start_at < end_at)
                .order_by(d.hour_start_at, d.group_id, d.product)
            ).all()
            if not records:
                return []
            plans = _PlansInForce(conn)
            members = _members(conn, {r.group_id for r in records})
            plugged = _plugged_by_charger(conn, start_at, end_at + HOUR)
            return [self._hour(r, plans, members, plugged) for r in records]

    def _hour(
        self,
        r: Any,
        plans: _PlansInForce,
        members: Mapping[str, list[Any]],
        plugged: Mapping[str, list[tuple[datetime, datetime | None]]],
    ) -> MarketReserveHour:
        planned = plans.reserve_kw(r.hour_start_at, r.product)
        group = members.get(r.group_id)
        if group is not None:
            planned = {ev: v for ev, v in planned.items() if any(_member_at(m, ev, r.hour_start_at) for m in group)}
        activated = {
            ev: _kwh_of_mwh(mwh, f"delivery[{r.group_id}].ev_contribution[{ev}]")
            for ev, mwh in json.loads(r.ev_contribution_json).items()
        }
        contributions = []
        for ev_id in sorted(set(planned) | {ev for ev, kwh in activated.items() if kwh > 0}):
            kw, charger_id = planned.get(ev_id, (Decimal(0), None))
            share = _share_plugged(plugged.get(charger_id or "", []), r.hour_start_at)
            held = (kw * share).quantize(KWH_QUANTUM, rounding=ROUND_HALF_UP)
            short = kw - held if kw > held else Decimal(0)
            contributions.append(EvContribution(ev_id, held, activated.get(ev_id, Decimal(0)), short))
        return MarketReserveHour(
            group_id=r.group_id,
            product=r.product,
            hour_start_at=r.hour_start_at,
            capacity_payment_eur=Decimal(r.capacity_payment_eur),
            activation_payment_eur=Decimal(0),  # FCR capacity records: no activation energy is recorded yet
            repayment_eur=Decimal(r.repayment_eur),
            contributions=tuple(contributions),
        )


def _kwh_of_mwh(mwh: float, field: str) -> Decimal:
    """Energy delivered in the required direction (a negative contribution counts as none)."""
    return max(decimal_of(mwh, field=field) * 1000, Decimal(0)).quantize(KWH_QUANTUM, rounding=ROUND_HALF_UP)


class _PlansInForce:
    """The plan in force at an hour: the newest made at or before it whose horizon covers it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.cache: dict[int, dict[str, Any]] = {}

    def reserve_kw(self, hour: datetime, product: str) -> dict[str, tuple[Decimal, str | None]]:
        o = operating_plans.c
        row = self.conn.execute(
            select(o.id, o.start_at, o.n_intervals)
            .where(o.created_at <= hour, o.start_at <= hour)
            .order_by(o.created_at.desc(), o.id.desc())
            .limit(1)
        ).first()
        if row is None or hour >= row.start_at + row.n_intervals * QUARTER:
            return {}
        if row.id not in self.cache:
            doc = self.conn.execute(select(o.plan_json).where(o.id == row.id)).scalar_one()
            self.cache[row.id] = json.loads(doc)
        h = int((hour - row.start_at) / HOUR)
        out: dict[str, tuple[Decimal, str | None]] = {}
        for ev in self.cache[row.id].get("evs", []):
            series = ev.get("reserve_kw", {}).get(product) or []
            value = series[h] if h < len(series) else None
            if value is not None and value > 0:
                kw = decimal_of(value, field=f"plan[{row.id}].reserve_kw").quantize(_KW_QUANTUM, rounding=ROUND_HALF_UP)
                if kw > 0:
                    out[str(ev["id"])] = (kw, ev.get("charger_id"))
        return out


def _members(conn: Connection, group_ids: Collection[str]) -> dict[str, list[Any]]:
    m = bidding_group_members.c
    out: dict[str, list[Any]] = defaultdict(list)
    for r in conn.execute(select(bidding_group_members).where(m.group_id.in_(list(group_ids)))):
        out[r.group_id].append(r)
    return dict(out)


def _member_at(row: Any, ev_id: str, at: datetime) -> bool:
    return bool(row.ev_id == ev_id and row.joined_at <= at and (row.left_at is None or row.left_at > at))


def _plugged_by_charger(
    conn: Connection, start_at: datetime, end_at: datetime
) -> dict[str, list[tuple[datetime, datetime | None]]]:
    tx = charging_transactions.c
    out: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    rows = conn.execute(
        select(tx.charger_id, tx.started_at, tx.ended_at).where(
            tx.started_at.is_not(None), tx.started_at < end_at, or_(tx.ended_at.is_(None), tx.ended_at > start_at)
        )
    )
    for r in rows:
        out[r.charger_id].append((r.started_at, r.ended_at))
    return dict(out)


def _share_plugged(spans: Sequence[tuple[datetime, datetime | None]], hour: datetime) -> Decimal:
    """The share of ``[hour, hour + 1 h)`` covered by the transactions (overlaps counted once)."""
    end = hour + HOUR
    clipped = sorted((max(s, hour), min(e or end, end)) for s, e in spans if s < end and (e is None or e > hour))
    covered = timedelta(0)
    cursor = hour
    for s, e in clipped:
        s = max(s, cursor)
        if e > s:
            covered += e - s
            cursor = e
    return Decimal(int(covered.total_seconds())) / Decimal(3600)


# ---------------------------------------------------------------------------------------------- bulk reads
def _mark(dialect: str) -> str:
    return "?" if dialect == "sqlite" else "%s"


def _epoch_us_sql(dialect: str, column: str) -> str:
    """Microseconds since the epoch of a UTC timestamp column, as an integer, exactly."""
    if dialect == "sqlite":  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)
        return f"(CAST(strftime('%s', {column}) AS INTEGER) * 1000000 + CAST(substr({column}, 21, 6) AS INTEGER))"
    return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"


def _at(dialect: str, at: datetime) -> Any:
    utc = at.astimezone(UTC)
    if dialect == "sqlite":
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f")
    return utc


def _no_readings() -> RegisterReadings:
    empty = np.zeros(0, dtype=np.int64)
    return RegisterReadings(empty, empty.astype(np.bool_), empty, empty, empty.astype(np.bool_))


def _e4_of(values: npt.NDArray[np.float64], per_unit: npt.NDArray[np.float64]) -> tuple[IntArray, BoolArray]:
    """Meter values (Wh or kWh floats) in whole 0.1 Wh, as :func:`_kwh` rounds them: exact where the
    float's shortest repr has at most the places of 0.1 Wh (checked), else through Decimal."""
    finite = np.isfinite(values) & (np.abs(values) < 1e12)
    scaled = np.where(finite, values * per_unit, 0.0)
    units = np.rint(scaled)
    exact = finite & (units / per_unit == values)
    out = units.astype(np.int64)
    for k in np.flatnonzero(finite & ~exact).tolist():
        unit = "kWh" if per_unit[k] == 10_000 else "Wh"
        out[k] = int(_kwh(float(values[k]), unit, "meter value").scaleb(4))
    return out, ~finite


def _concat_times(dialect: str) -> str:
    """A group's timestamps as one string (SQLite: the stored fixed-width text; PostgreSQL: µs)."""
    if dialect == "sqlite":
        return "group_concat(measured_at, '')"
    return "string_agg(CAST(EXTRACT(EPOCH FROM measured_at) * 1000000 AS BIGINT)::text, ',')"


def _concat_values(dialect: str) -> str:
    """A group's values as one string, each exact (17 significant digits; PostgreSQL's shortest)."""
    if dialect == "sqlite":
        return "group_concat(printf('%!.17g', value), ',')"
    return "string_agg(value::text, ',')"


_DIGIT_WEIGHTS = {"year": (0, 4), "month": (5, 2), "day": (8, 2), "hour": (11, 2), "minute": (14, 2)}


def _epoch_us_of_text(text_: str, n: int) -> IntArray:
    """n timestamps 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC, concatenated) as µs since the epoch."""
    if len(text_) != 26 * n:
        return np.asarray(
            [_epoch_us_of(datetime.fromisoformat(text_[k : k + 26])) for k in range(0, len(text_), 26)], dtype=np.int64
        )
    d = (np.frombuffer(text_.encode("ascii"), dtype=np.uint8).reshape(n, 26) - 48).astype(np.int64)

    def num(at: int, width: int) -> IntArray:
        out = np.zeros(n, dtype=np.int64)
        for k in range(width):
            out = out * 10 + d[:, at + k]
        return out

    y, m, day = num(0, 4), num(5, 2), num(8, 2)
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    seconds = ((days * 24 + num(11, 2)) * 60 + num(14, 2)) * 60 + num(17, 2)
    out: IntArray = (seconds * 1_000_000 + num(20, 6)).astype(np.int64)
    return out


def _epoch_us_of(at: datetime) -> int:
    return (at.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _group(
    dialect: str, charger: str, evse: int, is_export: Any, is_kwh: Any, n: int, times: str, values: str
) -> tuple[str, int, bool, bool, IntArray, npt.NDArray[np.float64]]:
    at = _epoch_us_of_text(times, int(n)) if dialect == "sqlite" else np.asarray(times.split(","), dtype=np.int64)
    return str(charger), int(evse), bool(is_export), bool(is_kwh), at, np.asarray(values.split(","), dtype=np.float64)


def _readings(
    row_of: Mapping[str, int],
    groups: Sequence[tuple[str, int, bool, bool, IntArray, npt.NDArray[np.float64]]],
    tx_rows: Sequence[Any],
) -> RegisterReadings:
    lowest: dict[str, int] = {}
    for charger, evse, *_ in groups:
        lowest[charger] = min(evse, lowest.get(charger, evse))
    kept = [g for g in groups if g[1] == lowest[g[0]]]
    if kept:
        sizes = [g[4].size for g in kept]
        t_rows = np.repeat(np.asarray([row_of[g[0]] for g in kept], dtype=np.int64), sizes)
        t_export = np.repeat(np.asarray([g[2] for g in kept], dtype=np.bool_), sizes)
        per_unit = np.repeat(np.asarray([10_000.0 if g[3] else 10.0 for g in kept]), sizes)
        t_at = np.concatenate([g[4] for g in kept])
        t_values, t_bad = _e4_of(np.concatenate([g[5] for g in kept]), per_unit)
    else:
        t_rows = t_at = t_values = np.zeros(0, dtype=np.int64)
        t_export = t_bad = np.zeros(0, dtype=np.bool_)
    x_rows, x_at, x_wh = [], [], []
    for charger_id, started_us, ended_us, start_wh, stop_wh in tx_rows:
        if start_wh is not None:
            x_rows.append(row_of[charger_id])
            x_at.append(started_us)
            x_wh.append(start_wh)
        if stop_wh is not None and ended_us is not None:
            x_rows.append(row_of[charger_id])
            x_at.append(ended_us)
            x_wh.append(stop_wh)
    x_values, x_bad = _e4_of(np.asarray(x_wh, dtype=np.float64), np.full(len(x_wh), 10.0))
    n_x = len(x_rows)
    unreadable = {int(r) for r in t_rows[t_bad].tolist()} | {x_rows[k] for k in np.flatnonzero(x_bad).tolist()}
    return RegisterReadings(
        ev_row=np.concatenate([t_rows, np.asarray(x_rows, dtype=np.int64)]),
        export=np.concatenate([t_export, np.zeros(n_x, dtype=np.bool_)]),
        at_us=np.concatenate([t_at, np.asarray(x_at, dtype=np.int64)]),
        value_e4=np.concatenate([t_values, x_values]),
        from_tx=np.concatenate([np.zeros(t_rows.size, dtype=np.bool_), np.ones(n_x, dtype=np.bool_)]),
        unreadable=frozenset(unreadable),
    )


__all__ = ["SqlSettlementSources", "SqlSettlementStore", "sql_settlement_tx"]
