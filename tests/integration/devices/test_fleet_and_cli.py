"""A simulated fleet provisioned in the database follows a plan; operator CLI; telemetry retention."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.integration.devices.conftest import SITE_ID, Platform, wait_for
from v2g.adapters.db.provisioning import provision_simulated, read_credentials, write_credentials
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.adapters.ocpp.session import PLAN_PROFILE_ID
from v2g.cli import app as cli_app
from v2g.devices import MeterSample
from v2g.fleet.schedule import PowerSchedule
from v2g.services.devices.ports import AckStatus
from v2g.sim.fleet import start_fleet
from v2g.units import floor_quarter, utc_now


def alternating_schedule(ev_id: str, charger_id: str, start_at: datetime) -> PowerSchedule:
    """Four hours that alternate charging 7 kW and discharging 6 kW by the quarter."""
    return PowerSchedule(ev_id, start_at, tuple(-6.0 if i % 2 else 7.0 for i in range(16)), charger_id=charger_id)


async def test_provisioned_fleet_follows_the_demo_plan(platform: Platform, tmp_path: Path) -> None:
    creds = provision_simulated(platform.store, 12, "2.1", hasher=Argon2Hasher(simulated=True), prefix="T")
    write_credentials(tmp_path / "creds.csv", creds)
    assert read_credentials(tmp_path / "creds.csv") == creds
    run = await start_fleet(creds, platform.url, "2.1", seed=7, meter_interval_s=0.2)
    try:
        assert len(run.chargers) == 12
        assert not run.failed
        await wait_for(lambda: len(platform.store.needs(creds[0].charger_id)) == 1)
        # every wallbox has told the platform it can discharge (until then a plan reaches it charge-only)
        sessions = platform.server.sessions
        await wait_for(
            lambda: all(c.charger_id in sessions and sessions[c.charger_id].discharge_supported for c in creds)
        )
        start = floor_quarter(utc_now())
        acks = await platform.gateway.send_schedules(
            [alternating_schedule(f"ev-{c.charger_id}", c.charger_id, start) for c in creds]
        )
        assert {a.status for a in acks} == {AckStatus.ACCEPTED}
        now = utc_now()  # one instant for the expectation and every wallbox (a quarter may end meanwhile)
        expected = alternating_schedule("x", "x", start).at(now)
        for charger in run.chargers:  # every wallbox holds the plan as its stack-1 profile and runs it
            plan = charger.wallbox.profiles[PLAN_PROFILE_ID]
            period = plan.period_at(now)
            assert period is not None
            assert period.setpoint_kw == pytest.approx(expected)
            # the connectivity test profile sits above the plan until the platform removes it after acceptance
            await wait_for(lambda w=charger.wallbox, p=plan: w.active_profile(utc_now()) is p)
        await wait_for(lambda: run.summary()["meter_values_sent"] >= 24)
        assert platform.store.state(creds[0].charger_id)["measured_at"] is not None
    finally:
        await run.stop()
    # provisioning again re-keys the same chargers instead of duplicating them
    again = provision_simulated(platform.store, 12, "2.1", hasher=Argon2Hasher(simulated=True), prefix="T")
    assert [c.charger_id for c in again] == [c.charger_id for c in creds]
    assert again[0].password != creds[0].password


def test_cli_register_state_and_retention(platform_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("V2G_DATABASE_URL", platform_db)
    runner = CliRunner()
    result = runner.invoke(cli_app, ["charger", "register", "--site", SITE_ID, "--protocol", "2.0.1", "--id", "CP-CLI"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["charger_id"] == "CP-CLI"
    assert out["v2g_site_id"].startswith("SE-V2G-")
    bad = runner.invoke(cli_app, ["charger", "register", "--site", SITE_ID, "--protocol", "3.0"])
    assert bad.exit_code == 2
    assert "protocol" in bad.output
    state = runner.invoke(cli_app, ["charger", "state", "CP-CLI"])
    assert json.loads(state.output)["online"] is False
    assert runner.invoke(cli_app, ["charger", "state", "CP-NONE"]).exit_code == 2

    from v2g.adapters.db.devices_repo import SqlDeviceStore
    from v2g.adapters.db.engine import make_engine

    engine = make_engine(platform_db)
    store = SqlDeviceStore(engine)
    now = utc_now().replace(microsecond=0)
    old, fresh = now - timedelta(days=15), now - timedelta(days=1)
    store.write_batch([MeterSample("CP-CLI", 1, "Power.Active.Import", at, 1.0, "W") for at in (old, fresh)], [], now)
    purged = runner.invoke(cli_app, ["charger", "purge-telemetry"])
    assert purged.exit_code == 0, purged.output
    assert "deleted 1 telemetry rows older than 14 days" in purged.output
    assert [s.measured_at for s in store.telemetry("CP-CLI")] == [fresh]
    engine.dispose()
