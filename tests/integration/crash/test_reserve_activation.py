"""SIGKILL during frequency dispatch of a committed hour: nothing sold or delivered is lost or doubled.

The platform (``v2g serve``'s composition, :mod:`platform_main`) runs as a child process with the
recorded frequency day as its frequency input; the BSP's SE3 group has sold FCR-N for the hour under
way; five households' wallboxes (OCPP 2.1, 2.0.1, 1.6) connect over real sockets and their EVs are
plugged in. Once dispatch sends setpoints and has stored the hour's delivery so far, the platform is killed.
Then:

* the setpoint profiles the chargers hold expire at the end of the hour (a charger never follows a
  dead platform's setpoint into an hour nothing was sold for);
* after a restart on the same database the dispatch resumes in the same hour: every charger gets a
  new setpoint from the restarted platform;
* the commitments are the same rows, and the hour's delivery record is one row per group and product
  that continues from what was stored before the crash (its seconds grow from there; they are
  neither reset nor counted twice).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from tests.integration.crash.households import (
    Household,
    ShiftedClock,
    platform_process,
    plug_in,
    reconnect_all,
    seed_households,
    simulators,
)
from tests.integration.crash.support import wait_until
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.market_repo import sql_market_tx
from v2g.adapters.db.operations_repo import SqlFleetState
from v2g.adapters.db.tables.markets import delivery_records, market_commitments
from v2g.devices import SETPOINT_PROFILE_ID
from v2g.fleet.model import PriceArea
from v2g.markets.bids import Bid, BidStatus
from v2g.markets.commitments import Commitment
from v2g.markets.rules import Product
from v2g.services.markets.groups import join_bidding_group
from v2g.units import HOUR

pytestmark = pytest.mark.slow

SOLD_MW = 0.01  # FCR-N, SE3, the hour under way
CHECKPOINT_S = 2  # the platform stores the delivery of the hour under way this often


@dataclass(frozen=True)
class Kept:
    seconds: int
    required_mwh: float


def _delivery(engine: Engine, hour: datetime) -> dict[tuple[str, str], Kept]:
    t = delivery_records.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.group_id, t.product, t.seconds, t.required_mwh).where(t.hour_start_at == hour)
        ).all()
    out: dict[tuple[str, str], Kept] = {}
    for r in rows:
        assert (r.group_id, r.product) not in out, f"two delivery records of {r.group_id} {r.product} {hour}"
        out[(r.group_id, r.product)] = Kept(r.seconds, r.required_mwh)
    return out


def _commitments(engine: Engine) -> list[tuple[str, str, float]]:
    t = market_commitments.c
    with engine.connect() as conn:
        return sorted((r.group_id, r.id, r.mw) for r in conn.execute(select(t.group_id, t.id, t.mw)))


def _sell(engine: Engine, homes: list[Household], hour: datetime) -> str:
    """The SE3 V2X EVs join the BSP's group, which has sold FCR-N for ``hour``; returns the group's id."""
    sellers = [h for h in homes if h.price_area is PriceArea.SE3 and h.max_discharge_kw > 0]
    assert len(sellers) >= 3
    with sql_market_tx(engine)() as market:
        for h in sellers:
            group, _ = join_bidding_group(
                market, bsp_org_id="bsp", price_area=PriceArea.SE3, ev_id=h.ev_id, charger_id=h.charger_id, now=hour
            )
        bid = Bid("crash-fcr-n", group.id, Product.FCR_N, PriceArea.SE3, hour, SOLD_MW, Decimal(30), BidStatus.ACCEPTED)
        market.save_bids([bid])
        sold = Commitment(
            "crash-c1", bid.id, group.id, Product.FCR_N, PriceArea.SE3, hour, hour + HOUR, SOLD_MW, Decimal(30)
        )
        market.save_commitments([sold])
    return group.id


async def test_a_platform_killed_in_a_committed_hour_resumes_it_without_losing_or_doubling_delivery(
    engine: Engine, tmp_path: Path
) -> None:
    homes = seed_households(engine, 5)
    clock = ShiftedClock()
    hour = clock.hour_start_at
    platform = platform_process(
        engine,
        clock,
        tmp_path,
        replan_check_s="5",
        tso_market="none",
        frequency_source="recorded",
        dispatch_checkpoint_s=str(CHECKPOINT_S),
    )
    store, fleet = SqlDeviceStore(engine), SqlFleetState(engine)
    await platform.start()
    sims = simulators(homes, platform.ocpp_url, clock.now)
    try:
        await asyncio.gather(*(s.start() for s in sims))
        await wait_until(
            lambda: all(any(p["purpose"] == "connectivity_test" for p in store.profiles(s.charger_id)) for s in sims),
            what=platform.log_tail,
        )
        for s, h in zip(sims, homes, strict=True):
            await plug_in(s, h, clock.now())
        # the EVs are home before the hour's reserve is sold (the pool of an hour is the plan's EVs when
        # the hour opens; one that plugs in later joins at the next hour); this first platform is
        # killed with nothing sold, and the one started next opens the hour with every EV planned
        await wait_until(lambda: len(fleet.plugged_in()) == len(homes), what=platform.log_tail)
        await platform.kill()
        group_id = _sell(engine, homes, hour)
        sold = _commitments(engine)
        key = (group_id, Product.FCR_N.value)
        await platform.start()
        await reconnect_all(sims)

        # dispatch answers the frequency: every charger of the plan got a setpoint, and the hour's
        # delivery so far is on record
        await wait_until(
            lambda: (
                all(SETPOINT_PROFILE_ID in s.wallbox.profiles for s in sims)
                and _delivery(engine, hour).get(key, Kept(0, 0.0)).seconds >= 2 * CHECKPOINT_S
            ),
            60,
            what=lambda: f"{_delivery(engine, hour)}\n{platform.log_tail()}",
        )
        await platform.kill()
        before = _delivery(engine, hour)
        assert set(before) == {key}
        setpoints = {s.charger_id: s.wallbox.profiles[SETPOINT_PROFILE_ID] for s in sims}
        late = {cid: p.valid_to for cid, p in setpoints.items() if p.valid_to is None or p.valid_to > hour + HOUR}
        assert not late, f"setpoints outlive the committed hour: {late}"

        restarted_at = clock.now()  # a setpoint valid from now on comes from the restarted platform
        await platform.start()

        # the hour resumes before the chargers are back (they reconnect with a delay, as real ones do):
        # the first record stored after the restart continues the one stored before the crash
        kept = before[key].seconds
        await wait_until(
            lambda: _delivery(engine, hour).get(key, Kept(kept, 0.0)).seconds != kept,
            60,
            what=lambda: f"{_delivery(engine, hour)}\n{platform.log_tail()}",
        )
        first = _delivery(engine, hour)[key].seconds
        assert first >= kept + CHECKPOINT_S, f"the hour's record started again at {first} s (had {kept} s)"

        # the chargers come back: each takes its share again and gets a setpoint from the restarted platform
        await reconnect_all(sims)

        def resumed() -> bool:
            return all(
                (p := s.wallbox.profiles.get(SETPOINT_PROFILE_ID)) is not None
                and p.valid_from is not None
                and p.valid_from >= restarted_at
                for s in sims
            )

        await wait_until(resumed, 60, what=platform.log_tail)
        after = _delivery(engine, hour)
        elapsed_s = (clock.now() - restarted_at).total_seconds()
        assert set(after) == {key}
        assert after[key].seconds - before[key].seconds <= elapsed_s + 1, "seconds before the crash counted twice"
        assert after[key].required_mwh >= before[key].required_mwh
        assert _commitments(engine) == sold
        for s in sims:
            profile = s.wallbox.profiles[SETPOINT_PROFILE_ID]
            assert profile.valid_to is not None
            assert profile.valid_to <= hour + HOUR, s.charger_id
    finally:
        await asyncio.gather(*(s.stop() for s in sims), return_exceptions=True)
        await platform.stop()
