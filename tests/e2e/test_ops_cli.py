"""`v2g ops status` prints the operator's status from the same use case as the API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from v2g.adapters.db.market_repo import SqlMarketStore
from v2g.adapters.db.operations_repo import SqlPlanStore
from v2g.cli import app
from v2g.fleet.model import PriceArea
from v2g.markets.bids import Bid, BiddingGroup, BidStatus, ControlMode
from v2g.markets.rules import Product


def test_ops_status_prints_the_plan_and_the_bids(engine: Engine) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as conn:
        store = SqlMarketStore(conn)
        store.add_group(BiddingGroup("g1", "bsp", PriceArea.SE3, ControlMode.LOCAL, {Product.FCR_N: 1.0}), now)
        store.save_bids(
            [
                Bid(
                    "b1",
                    "g1",
                    Product.FCR_N,
                    PriceArea.SE3,
                    now + timedelta(hours=2),
                    0.5,
                    Decimal("9"),
                    BidStatus.SUBMITTED,
                )
            ]
        )
    SqlPlanStore(engine).save_plan(
        created_at=now,
        start_at=now,
        n_intervals=4,
        strategy="lp",
        status="sent",
        trigger="plug_in",
        n_evs=0,
        objective_eur=1.25,
        plan={"evs": []},
    )
    env = {"V2G_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    result = CliRunner().invoke(app, ["ops", "status"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("operations at ")
    assert "(plug_in): 0 EVs" in lines[1]
    assert "objective 1.25 EUR" in lines[1]
    assert lines[2] == "  bids: 1 (1 submitted, 0 accepted); commitments 0"
    as_json = CliRunner().invoke(app, ["ops", "status", "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["audience"] == "operator"
    assert [b["id"] for b in data["bids"]] == ["b1"]


def test_ops_status_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = {"V2G_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"}
    result = CliRunner().invoke(app, ["ops", "status"], env=env)
    assert result.exit_code == 2
    assert "v2g db upgrade" in result.output
