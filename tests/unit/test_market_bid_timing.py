"""Bids are made while the gate is open, before the EVs arrive, at the provider's cost; unsold
capacity goes to the next auction."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from v2g.adapters.db.market_repo import sql_market_tx
from v2g.fleet.model import PriceArea
from v2g.markets.availability import OwnerHabit, PlugSession, forecast_availability, synthetic_history
from v2g.markets.bids import Bid, BiddingGroup, BidStatus, ControlMode
from v2g.markets.offer_price import offer_price_eur_per_mw_h
from v2g.markets.prices import PriceSeries
from v2g.markets.rules import FCR_PRODUCTS, Product, default_rules
from v2g.markets.simulator import TsoMarketSimulator, replay_season
from v2g.services.markets.forecast import ForecastOffers
from v2g.services.markets.ports import MarketStore
from v2g.services.operations.market_calendar import MarketCalendar

RULES = default_rules()
TZ = RULES.tz
EVS = [f"ev{i:03d}" for i in range(60)]
KW = dict.fromkeys(EVS, 10.0)
DELIVERY = date(2026, 3, 4)  # a Wednesday
HISTORY = synthetic_history(EVS, date(2026, 1, 5), 57, TZ, seed=7)  # to the evening of 2026-03-02


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=TZ).astimezone(UTC)


def night_hours(day: date) -> list[datetime]:
    return [local(day, h) for h in range(6)]


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def test_home_charging_plugs_in_3_to_5_nights_a_week() -> None:
    weeks = 57 / 7
    nights = {ev: sum(1 for s in HISTORY if s.ev_id == ev) / weeks for ev in EVS}
    mean = sum(nights.values()) / len(nights)
    assert 3.0 <= mean <= 5.0
    assert min(nights.values()) >= 1.5
    assert max(nights.values()) <= 6.5
    weekday = sum(1 for s in HISTORY if s.plugged_at.astimezone(TZ).weekday() < 5) / (57 * 5 / 7)
    weekend = sum(1 for s in HISTORY if s.plugged_at.astimezone(TZ).weekday() >= 5) / (57 * 2 / 7)
    assert weekday > weekend  # the weekday pattern


def test_the_forecast_uses_only_what_was_known_when_it_was_made() -> None:
    made_at = local(DELIVERY - timedelta(days=1), 0, 5)  # before the 00:30 gate of the day before
    hours = night_hours(DELIVERY)
    known = forecast_availability(HISTORY, KW, hours, made_at=made_at, tz=TZ)
    # sessions that start after the forecast (the delivery night itself) change nothing
    later = [PlugSession(ev, local(DELIVERY - timedelta(days=1), 18), local(DELIVERY, 7)) for ev in EVS]
    assert forecast_availability([*HISTORY, *later], KW, hours, made_at=made_at, tz=TZ) == known
    assert 0 < min(known.firm_kw) < max(known.mean_kw) < 600.0  # never the whole fleet
    with pytest.raises(ValueError, match="starts before the forecast is made"):
        forecast_availability(HISTORY, KW, [made_at - timedelta(hours=1)], made_at=made_at, tz=TZ)


def test_correlated_evs_give_a_smaller_firm_offer() -> None:
    made_at = local(DELIVERY - timedelta(days=1), 0, 5)
    hours = night_hours(DELIVERY)
    together = synthetic_history(EVS, date(2026, 1, 5), 57, TZ, seed=3, shared_day_weight=0.95)
    apart = synthetic_history(EVS, date(2026, 1, 5), 57, TZ, seed=3, shared_day_weight=0.0)
    corr = forecast_availability(together, KW, hours, made_at=made_at, tz=TZ)
    ind = forecast_availability(apart, KW, hours, made_at=made_at, tz=TZ)
    assert corr.correlation > ind.correlation + 0.1
    spread = [m - f for m, f in zip(corr.mean_kw, corr.firm_kw, strict=True)]
    spread_ind = [m - f for m, f in zip(ind.mean_kw, ind.firm_kw, strict=True)]
    assert sum(spread) > 1.5 * sum(spread_ind)


def test_owner_stated_absence_is_not_offered() -> None:
    made_at = local(DELIVERY - timedelta(days=1), 0, 5)
    hours = [local(DELIVERY, 5), local(DELIVERY, 7)]
    habits = {ev: OwnerHabit(ev, leaves_local=time(6, 30), returns_local=time(17)) for ev in EVS}
    free = forecast_availability(HISTORY, KW, hours, made_at=made_at, tz=TZ)
    told = forecast_availability(HISTORY, KW, hours, made_at=made_at, tz=TZ, habits=habits)
    assert told.mean_kw[0] == free.mean_kw[0]
    assert told.mean_kw[1] == 0.0 < free.mean_kw[1] + 1  # 07:00-08:00: the owners said the cars are away


def _group() -> BiddingGroup:
    return BiddingGroup("bsp-se3", "bsp", PriceArea.SE3, ControlMode.LOCAL, dict.fromkeys(FCR_PRODUCTS, 5.0))


def _calendar(
    engine: Engine, clock: Clock, prices: dict[str, PriceSeries]
) -> tuple[MarketCalendar, Callable[[], AbstractContextManager[MarketStore]]]:
    tx = sql_market_tx(engine)
    with tx() as store:
        store.add_group(_group(), datetime(2026, 1, 1, tzinfo=UTC))
    forecaster = ForecastOffers(
        rules=RULES,
        history=lambda made_at: [s for s in HISTORY if s.plugged_at < made_at],
        ev_kw=lambda: KW,
        price_area=PriceArea.SE3,
        day_ahead_eur_per_mwh=lambda _hour: 50.0,
    )
    market = TsoMarketSimulator(RULES, prices["total"], auction_prices=prices)
    calendar = MarketCalendar(
        rules=RULES,
        market_tx=tx,
        market=market,
        latest_plan=lambda: None,  # no EV of the delivery day is plugged in, no plan covers it
        bsp_org_id="bsp",
        clock=clock,
        products=(Product.FCR_N,),
        forecaster=forecaster,
    )
    return calendar, tx


def _series(price: str) -> PriceSeries:
    hours = [local(DELIVERY, 0) + timedelta(hours=h) for h in range(24)]
    return PriceSeries({Product.FCR_N: dict.fromkeys(hours, Decimal(price))}, f"flat {price}")


def _bids(tx: Callable[[], AbstractContextManager[MarketStore]]) -> list[Bid]:
    with tx() as store:
        return [b for b in store.bids("bsp-se3") if b.delivery_start_at.astimezone(TZ).date() == DELIVERY]


@pytest.mark.parametrize("clearing", ["40", "4"])
def test_bids_go_in_at_the_first_gate_before_the_evs_arrive_priced_at_cost(engine: Engine, clearing: str) -> None:
    clock = Clock(local(DELIVERY - timedelta(days=1), 0, 5))
    calendar, tx = _calendar(engine, clock, {"total": _series(clearing)})
    run = calendar.run_once()
    assert run.offered, run.skipped
    bids = _bids(tx)
    assert bids
    assert {b.auction for b in bids} == {"auction_1"}
    assert all(b.submitted_at == clock.at for b in bids)
    # the provider's cost of the hour (FCR-N: activation throughput x wear and losses), whatever the market pays
    cost = offer_price_eur_per_mw_h(RULES.offer_cost, Product.FCR_N, 50.0)
    assert {b.price_eur_per_mw_h for b in bids} == {cost}
    assert Decimal("4") < cost < Decimal("40")


def test_unsold_capacity_goes_to_the_second_auction(engine: Engine) -> None:
    clock = Clock(local(DELIVERY - timedelta(days=1), 0, 5))
    prices = {"total": _series("20"), "auction_1": _series("4"), "auction_2": _series("20")}
    calendar, tx = _calendar(engine, clock, prices)
    calendar.run_once()
    first = _bids(tx)
    clock.at = local(DELIVERY - timedelta(days=1), 0, 35)  # the first auction clears: its price is below the cost
    calendar.run_once()
    assert {b.status for b in _bids(tx)} == {BidStatus.REJECTED}
    clock.at = local(DELIVERY - timedelta(days=1), 17, 45)
    calendar.run_once()
    second = [b for b in _bids(tx) if b.auction == "auction_2"]
    assert sorted((b.delivery_start_at, b.volume_mw) for b in second) == sorted(
        (b.delivery_start_at, b.volume_mw) for b in first
    )
    clock.at = local(DELIVERY - timedelta(days=1), 18, 5)
    calendar.run_once()
    with tx() as store:
        commitments = store.commitments("bsp-se3", local(DELIVERY, 0), local(DELIVERY + timedelta(days=1), 0))
    assert len(commitments) == len(first)
    assert {c.price_eur_per_mw_h for c in commitments} == {Decimal("20")}


def test_a_season_offers_the_first_auctions_leftovers_in_the_second() -> None:
    day = date(2025, 5, 6)
    hours = [local(day, 0) + timedelta(hours=h) for h in range(24)]
    low = PriceSeries({Product.FCR_N: dict.fromkeys(hours, Decimal(2))}, "a1")
    high = PriceSeries({Product.FCR_N: dict.fromkeys(hours, Decimal(30))}, "a2")
    sim = TsoMarketSimulator(RULES, high, auction_prices={"auction_1": low, "auction_2": high})

    def bids_for(d: date) -> list[Bid]:
        return [
            Bid(f"n-{d}-{h}", "bsp-se3", Product.FCR_N, PriceArea.SE3, hours[h], 0.5, Decimal(10)) for h in range(24)
        ]

    summary = replay_season(sim, _group(), bids_for, day, 1)
    assert summary.accepted == 24
    assert summary.rejected == 0
    assert {c.price_eur_per_mw_h for c in summary.commitments} == {Decimal(30)}
    assert all(c.bid_id.endswith("-2") for c in summary.commitments)


def test_fcr_d_down_is_not_offered_before_it_existed() -> None:
    offers = ForecastOffers(rules=RULES, history=lambda _t: HISTORY, ev_kw=lambda: KW, price_area=PriceArea.SE3)
    made_at = datetime(2021, 6, 1, tzinfo=UTC)
    assert offers.offers(Product.FCR_D_DOWN, date(2021, 6, 3), made_at) == []
    assert RULES.product_exists(Product.FCR_D_DOWN, datetime(2022, 1, 1, tzinfo=UTC))
    assert RULES.reference().eur_per_mw_h[Product.FCR_N] == pytest.approx(27.47)
    assert RULES.reference("dk2_2021").eur_per_mw_h[Product.FCR_D_DOWN] is None
