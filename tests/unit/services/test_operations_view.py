"""The operator's view over in-memory ports: what it gathers, and what each audience may see."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from v2g.devices.events import ChargingNeeds
from v2g.dispatch.verification import DeliveryRecord
from v2g.fleet.model import ChargerProtocol, PriceArea
from v2g.markets.bids import Bid, BiddingGroup, BidStatus, ControlMode
from v2g.markets.commitments import Commitment
from v2g.markets.rules import Product
from v2g.services.operations.status import DispatchSnapshot
from v2g.services.operations.view import Audience, OperationsView, audience_for_role, status_for
from v2g.services.planning.ports import PluggedEv, StoredPlan

NOW = datetime(2026, 12, 2, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass
class FixedClock:
    at: datetime = NOW

    def now(self) -> datetime:
        return self.at


@dataclass
class FakeMarkets:
    """Only what the view reads of the market store."""

    groups: list[BiddingGroup] = field(default_factory=list)
    bids: list[Bid] = field(default_factory=list)
    commitments: list[Commitment] = field(default_factory=list)
    delivery: list[DeliveryRecord] = field(default_factory=list)
    transactions: int = 0

    @contextmanager
    def tx(self) -> Iterator[FakeMarkets]:
        self.transactions += 1
        yield self

    def groups_of(self, bsp_org_id: str) -> list[BiddingGroup]:
        return [g for g in self.groups if g.bsp_org_id == bsp_org_id]

    def group_ids_of(self, bsp_org_id: str) -> list[str]:
        return sorted(g.id for g in self.groups_of(bsp_org_id))

    def bids_between(self, start_at: datetime, end_at: datetime) -> list[Bid]:
        return [b for b in self.bids if start_at <= b.delivery_start_at < end_at]

    def commitments_between(self, start_at: datetime, end_at: datetime) -> list[Commitment]:
        return [c for c in self.commitments if c.end_at > start_at and c.start_at < end_at]

    def delivery_between(self, start_at: datetime, end_at: datetime) -> list[DeliveryRecord]:
        return [d for d in self.delivery if start_at <= d.hour_start_at < end_at]


@dataclass
class FakePlans:
    plan: StoredPlan | None

    def latest_plan(self) -> StoredPlan | None:
        return self.plan


@dataclass
class FakeFleet:
    evs: list[PluggedEv]

    def plugged_in(self) -> list[PluggedEv]:
        return self.evs


@dataclass
class FakeChargers:
    offline: list[str]

    def offline_chargers(self) -> list[str]:
        return self.offline


def stored_plan() -> StoredPlan:
    body = {
        "energy_cost_eur": 1.5,
        "reserve_revenue_eur": 0.7,
        "evs": [
            {
                "id": "ev-a",
                "charger_id": "cp-a",
                "p_kw": [7.0, 7.0, 7.0, 7.0, -5.0, -5.0, None, 0.0],
                "soc_kwh": [30.0, 31.75, None, 36.0],
                "reserve_kw": {"fcr_n": [2.0, 3.0]},
                "energy_cost_eur": 1.5,
                "reserve_revenue_eur": 0.7,
            }
        ],
        "shortfalls": [],
        "sources": {"ev-a": {"departure_at": "owner"}},
    }
    return StoredPlan(7, NOW - HOUR, NOW, 8, "lp", "sent", "cycle", 1, -0.8, body)


def plugged(ev_id: str, soc_percent: float, departure_in: timedelta) -> PluggedEv:
    needs = ChargingNeeds(f"cp-{ev_id}", 1, NOW, departure_at=NOW + departure_in, target_soc_percent=90.0)
    return PluggedEv(
        ev_id=ev_id,
        customer_id=f"cust-{ev_id}",
        charger_id=f"cp-{ev_id}",
        site_id=f"site-{ev_id}",
        grid_area_id="GA-1",
        price_area=PriceArea.SE3,
        battery_kwh=60.0,
        ev_max_charge_kw=11.0,
        ev_max_discharge_kw=11.0,
        charger_max_charge_kw=7.4,
        charger_max_discharge_kw=7.4,
        protocol=ChargerProtocol.OCPP201,
        discharge_supported=True,
        v2g_capable=True,
        fuse_limit_kw=17.0,
        household_peak_kw=5.0,
        online=True,
        soc_percent=soc_percent,
        needs=needs,
    )


def markets() -> FakeMarkets:
    own = BiddingGroup("own", "org-bsp", PriceArea.SE3, ControlMode.LOCAL, {Product.FCR_N: 1.0})
    other = BiddingGroup("theirs", "org-other", PriceArea.SE4, ControlMode.LOCAL, {Product.FCR_N: 1.0})
    price = Decimal("12.50")
    bids = [
        Bid("b-own", "own", Product.FCR_N, PriceArea.SE3, NOW, 0.5, price, BidStatus.ACCEPTED),
        Bid("b-theirs", "theirs", Product.FCR_N, PriceArea.SE4, NOW + HOUR, 0.4, price, BidStatus.SUBMITTED),
        Bid("b-old", "own", Product.FCR_N, PriceArea.SE3, NOW - timedelta(days=5), 0.5, price, BidStatus.ACCEPTED),
    ]
    commitments = [Commitment("c-own", "b-own", "own", Product.FCR_N, PriceArea.SE3, NOW, NOW + HOUR, 0.5, price)]
    delivery = [
        DeliveryRecord(
            "theirs", Product.FCR_N, NOW - HOUR, 0.4, 0.1, 0.05, 1.0, 0.0, 0.5, Decimal("5"), Decimal("2.50"), {}
        )
    ]
    return FakeMarkets([own, other], bids, commitments, delivery)


def view(store: FakeMarkets, *, plan: StoredPlan | None = None, dispatch: DispatchSnapshot | None = None) -> Any:
    return OperationsView(
        plans=FakePlans(plan),
        fleet=FakeFleet([plugged("ev-a", 50.0, 10 * HOUR), plugged("ev-late", 10.0, HOUR)]),
        market_tx=store.tx,
        chargers=FakeChargers(["cp-z", "cp-b"]),
        last_dispatch=lambda: dispatch,
        jobs=lambda: [{"name": "plan", "last_status": "ok"}],
        clock=FixedClock(),
    )


def test_current_gathers_plan_market_fleet_dispatch_and_jobs() -> None:
    store = markets()
    dispatch = DispatchSnapshot(NOW, 49.95, {"fcr_n": 250.0}, 240.0, 12, 1)
    status = view(store, plan=stored_plan(), dispatch=dispatch).current()
    assert store.transactions == 1
    assert status.at == NOW
    assert status.plan is not None
    assert status.plan["id"] == 7
    assert status.plan["hours"] == 2
    assert status.hours[0]["import_kwh"] == 7.0
    assert status.hours[0]["committed_mw"]["fcr_n"] == 0.5
    assert status.hours[1]["export_kwh"] == 2.5
    assert [e["ev_id"] for e in status.evs] == ["ev-a"]
    assert [b["id"] for b in status.bids] == ["b-own", "b-theirs"]  # five days back is outside the window
    assert [c["id"] for c in status.commitments] == ["c-own"]
    assert status.delivery[0]["delivered_ratio"] == 0.5
    assert status.delivery[0]["repayment_eur"] == "2.50"
    assert status.chargers_offline == ["cp-b", "cp-z"]
    assert [a["ev_id"] for a in status.departures_at_risk] == ["ev-late"]  # 6 kWh + 7.4 kW x 1 h < 54 kWh
    assert status.last_dispatch is not None
    assert status.last_dispatch["delivered_kw"] == 240.0
    lines = status.summary_lines()
    assert "plan 7 (cycle): 1 EVs" in lines[1]
    assert "bids: 2 (1 submitted, 1 accepted); commitments 1" in lines[2]
    assert lines[-1] == "  job plan: ok"


def test_without_a_plan_the_view_still_reports_the_market_and_the_fleet() -> None:
    status = view(markets()).current()
    assert status.plan is None
    assert status.hours == []
    assert status.evs == []
    assert status.summary_lines()[1] == "  plan: none yet"
    assert status.last_dispatch is None


def test_a_bsp_sees_its_own_groups_and_no_per_ev_data() -> None:
    data = view(markets(), plan=stored_plan()).for_audience(Audience.BSP, organisation_id="org-bsp")
    assert data["audience"] == "bsp"
    assert [b["id"] for b in data["bids"]] == ["b-own"]
    assert data["delivery"] == []  # only the other BSP's group delivered
    assert data["plan"]["id"] == 7
    assert data["hours"][0]["offered_mw"]["fcr_n"] == 0.5
    for key in ("evs", "departures_at_risk", "chargers_offline", "jobs"):
        assert key not in data


def test_the_tso_sees_the_market_side_of_every_group_only() -> None:
    data = view(markets(), plan=stored_plan()).for_audience(Audience.TSO, organisation_id="org-tso")
    assert set(data) == {"at", "audience", "bids", "commitments", "delivery"}
    assert {b["group_id"] for b in data["bids"]} == {"own", "theirs"}
    assert "ev-a" not in repr(data)
    assert "cp-" not in repr(data)


def test_the_operator_sees_everything() -> None:
    status = view(markets(), plan=stored_plan()).current()
    data = status_for(status, Audience.OPERATOR)
    assert data["evs"][0]["charger_id"] == "cp-a"
    assert data["chargers_offline"] == ["cp-b", "cp-z"]
    assert data["at"] == NOW.isoformat()


@pytest.mark.parametrize(
    ("role", "audience"),
    [
        ("aggregator_operator", Audience.OPERATOR),
        ("bsp", Audience.BSP),
        ("tso", Audience.TSO),
        ("owner", None),
        ("dso", None),
        ("installer", None),
    ],
)
def test_roles_map_to_audiences(role: str, audience: Audience | None) -> None:
    assert audience_for_role(role) is audience
