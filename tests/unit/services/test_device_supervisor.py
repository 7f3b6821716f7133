"""The device supervisor against in-memory ports: what a charger gets after connecting, and liveness."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from v2g.devices import (
    DEFAULT_PROFILE_ID,
    PLAN_PROFILE_ID,
    TEST_PROFILE_ID,
    ChargerAuth,
    ChargerNotice,
    ChargingLimit,
    ChargingNeeds,
    CommandResult,
    ConnectivityStatus,
    IdTokenRecord,
    LimitPeriod,
    MeterSample,
    ProfileKind,
    ProfilePlan,
    TelemetryBatchResult,
    TokenStatus,
    TransactionEventIn,
    profile_kind,
)
from v2g.fleet.model import Charger, ChargerProtocol
from v2g.fleet.schedule import PowerSchedule
from v2g.services.devices.ports import ChargerLink
from v2g.services.devices.supervisor import DeviceSupervisor, SupervisorConfig

T0 = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


@dataclass
class FakeStore:
    """In-memory device store: one charger per id, profiles and state as plain records."""

    chargers: dict[str, Charger]
    booted: dict[str, datetime] = field(default_factory=dict)
    test_accepted: dict[str, datetime] = field(default_factory=dict)
    inactive: set[str] = field(default_factory=set)
    online: dict[str, bool] = field(default_factory=dict)
    last_seen: dict[str, datetime] = field(default_factory=dict)
    discharge: dict[str, bool] = field(default_factory=dict)
    needs: list[ChargingNeeds] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    notices: list[ChargerNotice] = field(default_factory=list)
    limits: dict[str, float | None] = field(default_factory=dict)
    tokens: list[IdTokenRecord] = field(default_factory=list)

    def auth(self, charger_id: str) -> ChargerAuth | None:
        return None

    def charger(self, charger_id: str) -> Charger:
        return self.chargers[charger_id]

    def connectivity(self, charger_id: str) -> ConnectivityStatus:
        return ConnectivityStatus(
            charger_id,
            self.booted.get(charger_id),
            self.test_accepted.get(charger_id),
            self.online.get(charger_id, False),
        )

    def inactive_among(self, charger_ids: Sequence[str]) -> list[str]:
        return [c for c in charger_ids if c in self.inactive]

    def mark_connected(self, charger_id: str, protocol: str, at: datetime) -> None:
        self.online[charger_id] = True
        self.last_seen[charger_id] = at

    def mark_disconnected(self, charger_id: str, at: datetime) -> None:
        self.online[charger_id] = False

    def mark_booted(self, charger_id: str, at: datetime, firmware_version: str | None) -> None:
        self.booted[charger_id] = at

    def mark_offline_if_silent(self, before: datetime, at: datetime) -> list[str]:
        silent = [c for c, seen in self.last_seen.items() if seen < before and self.online.get(c)]
        for c in silent:
            self.online[c] = False
        return silent

    def touch_many(self, last_seen: dict[str, datetime]) -> None:
        self.last_seen.update(last_seen)

    def set_discharge_supported(self, charger_id: str, supported: bool) -> None:
        self.discharge[charger_id] = supported

    def set_ev_connected(self, charger_id: str, connected: bool) -> None:
        pass

    def save_needs(self, needs: ChargingNeeds) -> None:
        self.needs.append(needs)

    def record_notice(self, notice: ChargerNotice, received_at: datetime) -> None:
        self.notices.append(notice)

    def set_charging_limit(self, charger_id: str, limit_kw: float | None, source: str | None, at: datetime) -> None:
        self.limits[charger_id] = limit_kw

    def id_token_records(self, id_token: str) -> list[IdTokenRecord]:
        return [t for t in self.tokens if t.id_token == id_token]

    def customer_of(self, charger_id: str) -> str | None:
        return "cust-1" if charger_id in self.chargers else None

    def stored_needs(self, charger_id: str) -> list[ChargingNeeds]:
        return [n for n in self.needs if n.charger_id == charger_id]

    def record_profile(
        self,
        charger_id: str,
        *,
        profile_id: int,
        purpose: str,
        sent_at: datetime,
        valid_to: datetime | None,
        status: str,
        detail: str = "",
        test_profile: bool = False,
    ) -> None:
        self.profiles.append({"charger_id": charger_id, "profile_id": profile_id, "purpose": purpose, "status": status})
        if test_profile and status == "accepted":
            self.test_accepted[charger_id] = sent_at

    def write_batch(
        self, samples: Sequence[MeterSample], events: Sequence[TransactionEventIn], received_at: datetime
    ) -> TelemetryBatchResult:
        return TelemetryBatchResult(len(samples), 0, len(events), 0)


class FakeLink:
    """A charger connection that records the commands it executes and answers with ``answer``."""

    def __init__(self, charger_id: str, *, declares_discharge: bool = True, answer: str = "accepted") -> None:
        self._id = charger_id
        self.discharge_supported = False
        self.booted = False
        self.declares_discharge = declares_discharge
        self.answer = answer
        self.plans: list[tuple[ProfilePlan, int]] = []
        self.defaults_kw: list[float] = []
        self.cleared: list[int | None] = []
        self.available: list[bool] = []
        self.closed: list[tuple[str, int]] = []

    @property
    def id(self) -> str:
        return self._id

    async def read_discharge_support(self) -> bool:
        return self.declares_discharge

    def plan_kind(self) -> ProfileKind:
        return profile_kind(ChargerProtocol.OCPP21, self.discharge_supported)

    async def install_plan(self, plan: ProfilePlan, *, profile_id: int, stack_level: int) -> CommandResult:
        self.plans.append((plan, profile_id))
        return CommandResult(self.answer, "" if self.answer == "accepted" else "not now")

    async def install_default(self, p_kw: float) -> CommandResult:
        self.defaults_kw.append(p_kw)
        return CommandResult("accepted")

    async def clear_profiles(self, profile_id: int | None = None) -> CommandResult:
        self.cleared.append(profile_id)
        return CommandResult("accepted")

    async def set_available(self, available: bool) -> CommandResult:
        self.available.append(available)
        return CommandResult("accepted")

    async def disconnect(self, reason: str, code: int = 1000) -> None:
        self.closed.append((reason, code))


def _charger(charger_id: str = "CP1", max_discharge_kw: float = 10.0) -> Charger:
    return Charger(charger_id, "site-1", "V", "M", ChargerProtocol.OCPP21, 11.0, max_discharge_kw)


def _supervisor(
    store: FakeStore, links: dict[str, ChargerLink], clock: FakeClock, **config: Any
) -> tuple[DeviceSupervisor, list[Any]]:
    spawned: list[Any] = []
    supervisor = DeviceSupervisor(store, links, SupervisorConfig(**config), clock=clock, spawn=spawned.append)
    return supervisor, spawned


async def test_first_boot_installs_default_plan_and_test_profile() -> None:
    store, clock = FakeStore({"CP1": _charger()}), FakeClock(T0)
    link = FakeLink("CP1")
    supervisor, _ = _supervisor(store, {"CP1": link}, clock)
    events: list[tuple[str, str, str]] = []
    supervisor.on_device_event.append(lambda cid, kind, detail: events.append((cid, kind, detail)))
    supervisor.set_schedule("CP1", PowerSchedule("ev", T0, (-20.0, 5.0, 5.0, 5.0), charger_id="CP1"))

    await supervisor.booted(link, "1.2.3")

    assert link.booted
    assert link.discharge_supported
    assert store.discharge["CP1"]
    assert link.defaults_kw == [11.0]  # nothing known about the EV: full charging power
    plan, profile_id = link.plans[0]
    assert profile_id == PLAN_PROFILE_ID
    assert plan.kind is ProfileKind.V2X_SETPOINT
    assert [p.p_kw for p in plan.periods] == [-10.0, 5.0]  # clipped to the charger's discharge rating
    assert plan.valid_to == T0 + timedelta(minutes=30)
    assert link.plans[1][1] == TEST_PROFILE_ID
    assert link.cleared == [TEST_PROFILE_ID]
    assert [e[1] for e in events] == ["boot", "test_profile_accepted"]
    assert [p["purpose"] for p in store.profiles] == ["fail_safe_default", "plan_resync", "connectivity_test"]
    assert supervisor.plan_valid_to["CP1"] == plan.valid_to

    # a reconnect re-syncs without a new test profile (the charger already proved the path)
    again = FakeLink("CP1", declares_discharge=False)
    await supervisor.resync(again)
    assert len(again.plans) == 1
    assert again.plans[0][0].kind is ProfileKind.CHARGE_ONLY
    assert again.plans[0][0].clamped_discharge


async def test_needs_resize_the_fail_safe_default() -> None:
    store, clock = FakeStore({"CP1": _charger()}), FakeClock(T0)
    link = FakeLink("CP1")
    supervisor, spawned = _supervisor(store, {"CP1": link}, clock)
    needs = ChargingNeeds("CP1", 1, T0, departure_at=T0 + timedelta(hours=8, minutes=30), energy_request_kwh=20.0)

    await supervisor.needs_received(link, needs)
    await spawned.pop()

    assert store.needs == [needs]
    # worst case 20 kWh + 10 kW x 0.5 h, over 8 h, with 10 % losses and a 25 % margin
    assert link.defaults_kw == [pytest.approx(1.25 * (25.0 / 0.9) / 8.0)]


async def test_reconnect_sizes_the_fail_safe_default_from_stored_needs() -> None:
    store, clock = FakeStore({"CP1": _charger()}), FakeClock(T0)
    needs = ChargingNeeds("CP1", 1, T0, departure_at=T0 + timedelta(hours=8, minutes=30), energy_request_kwh=20.0)
    store.needs.append(needs)  # reported on an earlier connection
    link = FakeLink("CP1")
    supervisor, _ = _supervisor(store, {"CP1": link}, clock, send_test_profile_on_first_boot=False)

    await supervisor.resync(link)

    assert link.defaults_kw == [pytest.approx(1.25 * (25.0 / 0.9) / 8.0)]  # not full power


async def test_rejected_plan_is_reported_and_not_counted_as_installed() -> None:
    store, clock = FakeStore({"CP1": _charger()}), FakeClock(T0)
    link = FakeLink("CP1", answer="rejected")
    supervisor, _ = _supervisor(store, {"CP1": link}, clock, send_test_profile_on_first_boot=False)
    told: list[tuple[str, str, str]] = []
    supervisor.on_profile_rejected.append(lambda cid, purpose, detail: told.append((cid, purpose, detail)))
    supervisor.set_schedule("CP1", PowerSchedule("ev", T0, (3.0,), charger_id="CP1"))

    await supervisor.resync(link)

    assert told == [("CP1", "plan_resync", "not now")]
    assert "CP1" not in supervisor.plan_valid_to
    assert supervisor.stats["profiles_rejected"] == 1


async def test_liveness_drops_silent_chargers_refreshes_plans_and_enforces_deactivation() -> None:
    store = FakeStore({c: _charger(c) for c in ("CP1", "CP2", "CP3")})
    clock = FakeClock(T0)
    links: dict[str, ChargerLink] = {c: FakeLink(c) for c in ("CP1", "CP2", "CP3")}
    supervisor, spawned = _supervisor(
        store, links, clock, heartbeat_interval_s=60, send_test_profile_on_first_boot=False
    )
    for cid in links:
        await supervisor.connected(cid, "ocpp2.1")
    supervisor.set_schedule("CP2", PowerSchedule("ev", T0, (4.0,) * 8, charger_id="CP2"))
    await supervisor.resync(links["CP2"])
    store.inactive.add("CP3")

    for minutes in (2, 16):  # CP1 stays silent for more than 2.5 heartbeats
        clock.at = T0 + timedelta(minutes=minutes)
        supervisor.touch("CP2")
        supervisor.touch("CP3")
    await supervisor.liveness_tick()

    cp1, cp2, cp3 = (links[c] for c in ("CP1", "CP2", "CP3"))
    assert isinstance(cp1, FakeLink)
    assert isinstance(cp2, FakeLink)
    assert isinstance(cp3, FakeLink)
    assert cp1.closed == [("heartbeat missed", 1001)]
    assert not store.online["CP1"]
    assert store.online["CP2"]
    assert cp3.cleared == [None]
    assert cp3.available == [False]
    assert cp3.closed == [("charger deactivated", 1000)]
    assert supervisor.stats["remote_deactivations"] == 1
    # CP2's plan lapses at T0 + 30 min: within half a validity window, so it is refreshed
    assert len(spawned) == 1
    await spawned.pop()
    plan, profile_id = cp2.plans[-1]
    assert profile_id == PLAN_PROFILE_ID
    assert plan.start_at == clock.at
    assert store.profiles[-1]["purpose"] == "plan_refresh"
    assert DEFAULT_PROFILE_ID in {p["profile_id"] for p in store.profiles}


async def test_local_charging_limit_is_stored_and_forwarded() -> None:
    store, clock = FakeStore({"CP1": _charger()}), FakeClock(T0)
    supervisor, _ = _supervisor(store, {}, clock)
    told: list[tuple[str, float | None]] = []
    supervisor.on_charging_limit.append(lambda cid, kw: told.append((cid, kw)))
    periods = (LimitPeriod(0, 7.0), LimitPeriod(3600, 3.5))
    limit = ChargingLimit("CP1", "EMS", T0, 1, T0 - timedelta(hours=2), periods)

    await supervisor.charging_limit(limit)
    await supervisor.charging_limit(ChargingLimit("CP1", "EMS", T0, 1, cleared=True))

    assert told == [("CP1", 3.5), ("CP1", None)]  # the period in force now, then lifted
    assert store.limits == {"CP1": None}
    assert [n.kind for n in store.notices] == ["NotifyChargingLimit", "ClearedChargingLimit"]


def test_charging_limit_in_force() -> None:
    limit = ChargingLimit("CP1", "SO", T0, start_at=T0, periods=(LimitPeriod(600, 5.0), LimitPeriod(0, 8.0)))
    assert limit.limit_kw_at(T0 - timedelta(seconds=1)) is None  # not started
    assert limit.limit_kw_at(T0) == 8.0
    assert limit.limit_kw_at(T0 + timedelta(minutes=10)) == 5.0
    assert ChargingLimit("CP1", "SO", T0).limit_kw_at(T0) is None  # the source without a value


async def test_id_tokens_are_authorised_against_the_records() -> None:
    store = FakeStore({"CP1": _charger(), "CP2": _charger("CP2")})
    store.tokens += [
        IdTokenRecord("CARD-1", TokenStatus.ACCEPTED, charger_id="CP1"),
        IdTokenRecord("CARD-2", TokenStatus.ACCEPTED, customer_id="cust-1"),
        IdTokenRecord("CARD-3", TokenStatus.BLOCKED, charger_id="CP1"),
        IdTokenRecord("CARD-3", TokenStatus.ACCEPTED, customer_id="cust-1"),
        IdTokenRecord("CARD-4", TokenStatus.ACCEPTED, customer_id="someone-else"),
        IdTokenRecord("CARD-5", TokenStatus.EXPIRED, charger_id="CP1"),
    ]
    supervisor, _ = _supervisor(store, {}, FakeClock(T0))

    assert await supervisor.authorize("CP1", "CARD-1") is TokenStatus.ACCEPTED
    assert await supervisor.authorize("CP2", "CARD-1") is TokenStatus.NOT_AT_THIS_LOCATION
    assert await supervisor.authorize("CP2", "CARD-2") is TokenStatus.ACCEPTED  # every charger of the customer
    assert await supervisor.authorize("CP1", "CARD-3") is TokenStatus.BLOCKED  # a block wins
    assert await supervisor.authorize("CP1", "CARD-4") is TokenStatus.NOT_AT_THIS_LOCATION
    assert await supervisor.authorize("CP1", "CARD-5") is TokenStatus.EXPIRED
    assert await supervisor.authorize("CP1", "NOBODY") is TokenStatus.INVALID
    assert await supervisor.authorize("CP1", "") is TokenStatus.INVALID


def test_a_token_record_has_exactly_one_scope() -> None:
    with pytest.raises(ValueError, match="exactly one of charger_id or customer_id"):
        IdTokenRecord("CARD", TokenStatus.ACCEPTED)
    with pytest.raises(ValueError, match="exactly one of charger_id or customer_id"):
        IdTokenRecord("CARD", TokenStatus.ACCEPTED, charger_id="CP1", customer_id="c")
    with pytest.raises(ValueError, match="id_token: must not be empty"):
        IdTokenRecord("", TokenStatus.ACCEPTED, charger_id="CP1")
