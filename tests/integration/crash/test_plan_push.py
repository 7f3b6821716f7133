"""SIGKILL while the planning cycle sends its schedules: what the chargers run is on record, and stays so.

The platform (``v2g serve``'s composition, :mod:`platform_main`) runs as a child process against the
test's database; four households' wallboxes (OCPP 2.1, 2.0.1 and 1.6) connect over real sockets.
Two of them answer profiles slowly (a poor mobile link), so a plan push to the fleet is still under
way when the fast ones already run the new plan: the platform is killed at that moment. Then:

* every plan row on record is whole (its JSON reads back and agrees with the row);
* no charger runs a plan profile the platform has no record of: each one is the schedule of a
  stored plan for that charger;
* after a restart on the same database, every charger gets the plan in force again (or a fresh
  one), and what each runs is the latest stored plan's schedule for it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.integration.crash.households import (
    ShiftedClock,
    follows,
    platform_process,
    plug_in,
    reconnect_all,
    seed_households,
    simulators,
    stored_plans,
)
from tests.integration.crash.support import wait_until
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.operations_repo import SqlFleetState
from v2g.devices import PLAN_PROFILE_ID

pytestmark = pytest.mark.slow

SLOW_REPLY_S = 60.0  # longer than the CSMS waits for an answer: the push is under way until it gives up


async def test_a_plan_push_killed_midway_leaves_no_charger_on_a_plan_without_a_record(
    engine: Engine, tmp_path: Path
) -> None:
    homes = seed_households(engine, 4)
    clock = ShiftedClock()
    platform = platform_process(engine, clock, tmp_path, replan_check_s="5", tso_market="none")
    store, fleet = SqlDeviceStore(engine), SqlFleetState(engine)
    await platform.start()
    sims = simulators(homes, platform.ocpp_url, clock.now)
    by_id = {s.charger_id: s for s in sims}
    slow = [by_id["DEMO-16-00001"], by_id["DEMO-21-00002"]]
    fast = [s for s in sims if s not in slow]
    home = {h.charger_id: h for h in homes}

    def plugged() -> set[str]:
        return {ev.charger_id for ev in fleet.plugged_in()}

    try:
        await asyncio.gather(*(s.start() for s in sims))
        # the boot re-sync is over when the connectivity test profile was answered
        await wait_until(
            lambda: all(any(p["purpose"] == "connectivity_test" for p in store.profiles(s.charger_id)) for s in sims),
            what=platform.log_tail,
        )
        # the slow chargers' EVs arrive first; from then on every plan that includes the fast ones
        # includes them, so every push to the fast ones is still waiting for the slow ones
        for s in slow:
            await plug_in(s, home[s.charger_id], clock.now())
        await wait_until(lambda: {s.charger_id for s in slow} <= plugged())
        for s in slow:
            s.faults.reply_delay_s = SLOW_REPLY_S
        for s in fast:
            await plug_in(s, home[s.charger_id], clock.now())
        await wait_until(lambda: all(PLAN_PROFILE_ID in s.wallbox.profiles for s in fast), what=platform.log_tail)
        await platform.kill()

        plans = stored_plans(engine)  # every row whole
        running = {
            s.charger_id: s.wallbox.profiles[PLAN_PROFILE_ID] for s in sims if PLAN_PROFILE_ID in s.wallbox.profiles
        }
        unknown = sorted(cid for cid, profile in running.items() if not any(follows(profile, p, cid) for p in plans))
        assert not unknown, f"chargers run plans the platform has no record of: {unknown} ({len(plans)} plans stored)"

        # restart: the chargers come back, the platform sends them the plan in force (or a fresh one)
        for s in slow:
            s.faults.reply_delay_s = 0.0
        received = {s.charger_id: s.stats.profiles_received for s in sims}
        await platform.start()
        await reconnect_all(sims)

        def consistent() -> bool:
            latest = stored_plans(engine)[-1]
            return all(
                s.stats.profiles_received > received[s.charger_id]
                and PLAN_PROFILE_ID in s.wallbox.profiles
                and follows(s.wallbox.profiles[PLAN_PROFILE_ID], latest, s.charger_id)
                for s in sims
            )

        await wait_until(consistent, 60, what=platform.log_tail)
        latest = stored_plans(engine)[-1]
        assert {e["charger_id"] for e in latest["evs"]} == set(by_id)
    finally:
        await asyncio.gather(*(s.stop() for s in sims), return_exceptions=True)
        await platform.stop()
