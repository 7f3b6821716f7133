"""SIGKILL during a meter-value burst: what the CSMS acknowledged is stored, exactly once, after a restart.

``v2g csms`` runs as a child process on a real port against the test's database (SQLite file or
PostgreSQL). Six chargers (OCPP 1.6, 2.0.1 and 2.1; MeterValues and TransactionEvent) send a
burst of readings with unique message ids, one CALL at a time each, and note which got a
CALLRESULT. The process is killed mid-burst. Every acknowledged reading must then be in storage;
after a restart the chargers send what was not acknowledged again, plus a few acknowledged ones
(as real chargers do after a reconnect), and storage holds every reading exactly once.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from tests.integration.crash.support import V2G, PlatformProcess, RawCharger, iso, wait_until
from tests.integration.devices.conftest import HASHER, SITE_ID, seed_site
from v2g.adapters.db.devices_repo import SqlDeviceStore
from v2g.adapters.db.tables.devices import charger_state, charging_transactions, telemetry, transaction_events
from v2g.fleet.model import ChargerProtocol
from v2g.runtime.workers import free_port
from v2g.services.devices.installation import register_charger
from v2g.units import utc_now

pytestmark = pytest.mark.slow

FRAMES = 50  # per charger
KILL_AFTER = 120  # acknowledged frames (of 6 x 50) before the SIGKILL
RESEND_ACKED = 5  # acknowledged frames each charger sends again after the reconnect

Key = tuple[str, int, str, datetime]  # charger, evse, measurand, measured at


@dataclass
class Burst:
    """One charger's burst: the frames it sends, which were acknowledged, what they carry."""

    charger: RawCharger
    kind: str  # "MeterValues" or "TransactionEvent"
    t0: datetime
    acked: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    sent: int = 0

    def frame(self, i: int) -> dict[str, Any]:
        at = iso(self.t0 + timedelta(seconds=i))
        wh, w = 10_000.0 + 25.0 * i, 3000.0 + i
        if self.charger.protocol == "1.6":
            values: list[dict[str, Any]] = [
                {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": str(w), "measurand": "Power.Active.Import", "unit": "W"},
            ]
            return {"connectorId": 1, "meterValue": [{"timestamp": at, "sampledValue": values}]}
        values = [
            {"value": wh, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}},
            {"value": w, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
        ]
        meter = [{"timestamp": at, "sampledValue": values}]
        if self.kind == "MeterValues":
            return {"evseId": 1, "meterValue": meter}
        return {
            "eventType": "Updated",
            "timestamp": at,
            "triggerReason": "MeterValuePeriodic",
            "seqNo": i,
            "transactionInfo": {"transactionId": f"TX-{self.charger.charger_id}"},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": meter,
        }

    def samples(self, i: int) -> dict[Key, float]:
        at = self.t0 + timedelta(seconds=i)
        cid = self.charger.charger_id
        return {
            (cid, 1, "Energy.Active.Import.Register", at): 10_000.0 + 25.0 * i,
            (cid, 1, "Power.Active.Import", at): 3000.0 + i,
        }

    async def send(self, frames: list[int], tag: str) -> None:
        """Send ``frames`` one CALL at a time; stop at the first closed connection."""
        for i in frames:
            try:
                answer = await self.charger.call(f"{tag}-{i}", self.kind, self.frame(i))
            except (ConnectionError, TimeoutError):
                return
            self.sent += 1
            if answer[0] == 3:
                self.acked.add(i)
            else:
                self.errors.append(f"{self.charger.charger_id} frame {i}: {answer}")


def _stored(engine: Engine, ids: list[str]) -> dict[Key, float]:
    t = telemetry.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.charger_id, t.evse_id, t.measurand, t.measured_at, t.value).where(t.charger_id.in_(ids))
        )
        out: dict[Key, float] = {}
        for r in rows:
            key = (r.charger_id, r.evse_id, r.measurand, r.measured_at)
            assert key not in out, f"stored twice: {key}"
            out[key] = r.value
        return out


def _count(engine: Engine, table: Any, ids: list[str]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(table).where(table.c.charger_id.in_(ids))).scalar_one()
        )


async def test_acknowledged_readings_survive_a_sigkill_mid_burst_and_are_stored_once(
    engine: Engine, tmp_path: Path
) -> None:
    seed_site(engine)
    store = SqlDeviceStore(engine)
    layout = [("1.6", "MeterValues"), ("2.0.1", "MeterValues"), ("2.0.1", "TransactionEvent")]
    layout += [("2.1", "MeterValues"), ("2.1", "TransactionEvent"), ("2.1", "TransactionEvent")]
    protocols = {"1.6": ChargerProtocol.OCPP16, "2.0.1": ChargerProtocol.OCPP201, "2.1": ChargerProtocol.OCPP21}
    regs = [
        register_charger(
            store,
            HASHER,
            site_id=SITE_ID,
            vendor="Burst",
            model="B-1",
            protocol=protocols[protocol],
            max_charge_kw=11.0,
            max_discharge_kw=11.0,
            charger_id=f"BURST-{k}",
            security_profile=1,
        )
        for k, (protocol, _kind) in enumerate(layout)
    ]
    ids = [r.charger.id for r in regs]
    port = free_port("127.0.0.1")
    env = {
        **os.environ,
        "V2G_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "V2G_LOG_LEVEL": "WARNING",
    }
    platform = PlatformProcess(
        [V2G, "csms", "--host", "127.0.0.1", "--port", str(port)], env, port, tmp_path / "csms.log"
    )
    t0 = utc_now().replace(microsecond=0) - timedelta(hours=1)
    bursts = [
        Burst(RawCharger(platform.ocpp_url, reg.charger.id, reg.password, protocol), kind, t0)
        for reg, (protocol, kind) in zip(regs, layout, strict=True)
    ]
    try:
        await platform.start()
        for b in bursts:
            await b.charger.connect()
        tasks = [asyncio.create_task(b.send(list(range(FRAMES)), "a")) for b in bursts]
        await wait_until(lambda: sum(len(b.acked) for b in bursts) >= KILL_AFTER, what=platform.log_tail)
        await platform.kill()
        await asyncio.gather(*tasks)
        for b in bursts:
            await b.charger.close()
        assert not [e for b in bursts for e in b.errors]
        acked_at_kill = sum(len(b.acked) for b in bursts)
        assert acked_at_kill < len(bursts) * FRAMES, "the burst ended before the kill: not a mid-burst crash"

        # every acknowledged reading is in storage, with its value
        stored = _stored(engine, ids)
        missing = [k for b in bursts for i in sorted(b.acked) for k, v in b.samples(i).items() if stored.get(k) != v]
        assert not missing, f"{len(missing)} acknowledged readings lost by the crash, e.g. {missing[:3]}"

        # restart on the same database and port; the chargers reconnect and send again what was not
        # acknowledged, and the last few acknowledged frames as well (under new message ids)
        await platform.start()
        for b in bursts:
            await b.charger.connect()
        resend = {id(b): sorted(set(range(FRAMES)) - b.acked) + sorted(b.acked)[-RESEND_ACKED:] for b in bursts}
        await asyncio.gather(*(b.send(resend[id(b)], "b") for b in bursts))
        assert not [e for b in bursts for e in b.errors]
        assert all(b.acked == set(range(FRAMES)) for b in bursts), [len(b.acked) for b in bursts]

        expected = {k: v for b in bursts for i in range(FRAMES) for k, v in b.samples(i).items()}
        assert _stored(engine, ids) == expected  # each reading exactly once, none extra
        assert _count(engine, telemetry, ids) == len(expected)
        # transaction events: one row per (transaction, seqNo), and the counters are not inflated
        tx_chargers = [b.charger.charger_id for b in bursts if b.kind == "TransactionEvent"]
        assert _count(engine, transaction_events, tx_chargers) == FRAMES * len(tx_chargers)
        with engine.connect() as conn:
            rows = conn.execute(
                select(charging_transactions.c.events_seen, charging_transactions.c.max_seq_no).where(
                    charging_transactions.c.charger_id.in_(tx_chargers)
                )
            ).all()
            latest = dict(
                conn.execute(
                    select(charger_state.c.charger_id, charger_state.c.energy_import_wh).where(
                        charger_state.c.charger_id.in_(ids)
                    )
                ).all()
            )
        assert sorted(tuple(r) for r in rows) == [(FRAMES, FRAMES - 1)] * len(tx_chargers)
        # the latest reading on record is the newest one, not the last one re-sent
        assert latest == dict.fromkeys(ids, 10_000.0 + 25.0 * (FRAMES - 1))
    finally:
        for b in bursts:
            await b.charger.close()
        await platform.stop()
