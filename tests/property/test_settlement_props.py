"""Settlement properties: splits add up exactly, every transaction balances, a re-run is identical,
metered quarters add up to the register advance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from v2g.settlement.allocation import EvContribution, ReserveHour, allocate_reserve_hour, largest_remainder
from v2g.settlement.economics import ContractTerms, settle_ev_period
from v2g.settlement.ledger import (
    LedgerTransaction,
    Posting,
    TxKind,
    difference,
    dso_account,
    line_postings,
    net_by_key,
    owner_account,
    settlement_transaction,
)
from v2g.settlement.metering import MeterData, PluggedPeriod, Reading, meter_intervals
from v2g.settlement.money import KWH_QUANTUM, ORE
from v2g.settlement.periods import SettlementPeriod
from v2g.settlement.tariffs import load_tariffs

BOOK = load_tariffs()
JAN = SettlementPeriod(2026, 1)
START = datetime(2026, 1, 10, 8, tzinfo=UTC)

ore = st.integers(-(10**9), 10**9).map(lambda n: Decimal(n) * ORE)
weights = st.lists(st.decimals(0, 10**6, places=4), min_size=1, max_size=30).filter(lambda w: sum(w) > 0)


@settings(max_examples=300, deadline=None)
@given(ore, weights)
def test_largest_remainder_sums_exactly_and_stays_within_one_ore(total: Decimal, ws: list[Decimal]) -> None:
    parts = largest_remainder(total, ws)
    assert sum(parts, Decimal(0)) == total
    w_sum = sum((Fraction(w) for w in ws), Fraction(0))
    for part, w in zip(parts, ws, strict=True):
        assert part == part.quantize(ORE)
        assert abs(Fraction(part) - Fraction(total) * Fraction(w) / w_sum) < Fraction(ORE)
        assert part == 0 or (part > 0) == (total > 0)


contribution = st.tuples(
    st.decimals(0, 1000, places=3), st.decimals(0, 100, places=4), st.decimals(0, 1000, places=3)
).map(lambda t: EvContribution("", *t))
money = st.integers(0, 10**8).map(lambda n: Decimal(n) * ORE)


@settings(max_examples=300, deadline=None)
@given(money, money, money, st.lists(contribution, max_size=25))
def test_reserve_allocations_always_sum_to_the_market_revenue(
    capacity: Decimal, activation: Decimal, repayment: Decimal, contributions: list[EvContribution]
) -> None:
    evs = tuple(
        EvContribution(f"ev-{i:03d}", c.held_kwh, c.activated_kwh, c.shortfall_kwh) for i, c in enumerate(contributions)
    )
    hour = ReserveHour("g", "fcr_n", START, capacity, activation, repayment, evs)
    alloc = allocate_reserve_hour(hour)
    assert sum((alloc.net_sek(ev) for ev in alloc.ev_ids), Decimal(0)) + alloc.unallocated_sek == hour.net_sek
    assert sum(alloc.capacity_sek.values(), Decimal(0)) in (capacity, Decimal(0))
    assert alloc == allocate_reserve_hour(hour)  # the same inputs give the same split


quarter_energy = st.tuples(st.decimals(0, 3, places=4), st.decimals(0, 3, places=4), st.decimals(-50, 400, places=2))


@settings(max_examples=120, deadline=None)
@given(
    st.lists(quarter_energy, min_size=1, max_size=40), money, st.decimals(0, 1, places=2), st.decimals(0, 80, places=1)
)
def test_every_settlement_balances_and_a_rerun_is_identical(
    quarters: list[tuple[Decimal, Decimal, Decimal]], reserve: Decimal, share: Decimal, wear: Decimal
) -> None:
    from v2g.settlement.metering import FillRule, MeterInterval, Quality

    intervals = [
        MeterInterval(
            START + k * timedelta(minutes=15), i, e, Quality.MEASURED, Quality.MEASURED, (FillRule.REGISTER,), ()
        )
        for k, (i, e, _) in enumerate(quarters)
    ]
    spot = {iv.start_at: p for iv, (_, _, p) in zip(intervals, quarters, strict=True)}

    def run() -> LedgerTransaction | None:
        s = settle_ev_period(
            period=JAN,
            ev_id="ev-1",
            customer_id="c-1",
            intervals=intervals,
            spot_ore_per_kwh=spot,
            tariffs=BOOK,
            dso_key="ellevio",
            contract=ContractTerms(share, wear),
            reserve_net_sek=reserve - Decimal("5000.00"),
        )
        target = line_postings(s.lines, owner=owner_account("c-1"), dso=dso_account("ellevio"), subject="ev-1")
        return settlement_transaction(settles=JAN, subject="ev-1", target=target, posted=[], posted_count=0, closed=())

    first, second = run(), run()
    assert first == second
    if first is not None:  # LedgerTransaction refuses unbalanced postings on construction; check anyway
        assert sum(p.amount_sek for p in first.postings) == 0
        assert first.digest == second.digest  # type: ignore[union-attr]


posting = st.tuples(
    st.sampled_from(["owner:c-1", "supplier:energy", "tax:vat", "market:reserve", "dso:ellevio"]),
    st.sampled_from(["energy.spot", "tax.vat", "reserve.owner_share"]),
    st.integers(-(10**6), 10**6).filter(bool),
)


def balanced(raw: list[tuple[str, str, int]]) -> list[Posting]:
    from v2g.settlement.ledger import Account

    postings = [Posting(Account.parse(a), Decimal(n) * ORE, line, "ev-1") for a, line, n in raw]
    rest = -sum((p.amount_sek for p in postings), Decimal(0))
    if rest:
        postings.append(Posting(Account.parse("aggregator:reserve_share"), rest, "energy.spot", "ev-1"))
    return postings


@settings(max_examples=200, deadline=None)
@given(st.lists(posting, max_size=12), st.lists(posting, max_size=12), st.booleans())
def test_a_correction_balances_and_brings_the_posted_totals_to_the_target(
    target_raw: list[tuple[str, str, int]], posted_raw: list[tuple[str, str, int]], closed: bool
) -> None:
    target, posted = balanced(target_raw), balanced(posted_raw)
    tx = settlement_transaction(
        settles=JAN, subject="ev-1", target=target, posted=posted, posted_count=1, closed={JAN} if closed else set()
    )
    if tx is None:
        assert net_by_key(target) == net_by_key(posted)
        return
    assert tx.kind is TxKind.CORRECTION
    assert tx.period == (JAN.next() if closed else JAN)
    assert sum(p.amount_sek for p in tx.postings) == 0
    assert difference(target, [*posted, *tx.postings]) == []


@st.composite
def registers(draw: st.DrawFn) -> list[Reading]:
    """Monotone register readings from 0 to 6 h after START, at irregular times, always at both ends."""
    offsets = sorted(set(draw(st.lists(st.integers(1, 6 * 3600 - 1), max_size=30))))
    times = [0, *offsets, 6 * 3600]
    steps = draw(st.lists(st.integers(0, 30_000), min_size=len(times), max_size=len(times)))
    value = Decimal(draw(st.integers(0, 10**7))) * KWH_QUANTUM
    readings = []
    for s, step in zip(times, steps, strict=True):
        value += Decimal(step) * KWH_QUANTUM
        readings.append(Reading(START + timedelta(seconds=s), value))
    return readings


@settings(max_examples=150, deadline=None)
@given(registers(), st.booleans(), st.randoms(use_true_random=False))
def test_quarters_add_up_to_the_register_advance_whatever_fills_the_gaps(
    readings: list[Reading], plugged: bool, rnd: object
) -> None:
    end = START + timedelta(hours=6)
    spans = [PluggedPeriod(START + timedelta(hours=1), START + timedelta(hours=3))] if plugged else []
    data = MeterData("cp", "ev", import_register=readings, plugged=spans)
    intervals = meter_intervals(data, START, end, BOOK.metering)
    assert len(intervals) == 24
    assert sum((iv.import_kwh for iv in intervals), Decimal(0)) == readings[-1].value - readings[0].value
    assert all(iv.import_kwh >= 0 for iv in intervals)
    shuffled = list(readings)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    again = meter_intervals(MeterData("cp", "ev", import_register=shuffled, plugged=spans), START, end, BOOK.metering)
    assert again == intervals
