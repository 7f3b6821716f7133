"""`v2g plan` and `v2g plan check` on real files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from v2g.cli import app

FLEET = {
    "start_at": "2026-11-25T12:00:00Z",
    "n_intervals": 8,
    "rules": {"include_tariffs": False},
    "grid_areas": [{"id": "ga1", "price_area": "SE3", "import_limit_kw": 200, "export_limit_kw": 200}],
    "sites": [
        {"id": f"s{i}", "grid_area_id": "ga1", "fuse_limit_kw": 17.3, "household_load_kw": 1.0} for i in range(14)
    ],
    "evs": [
        {
            "id": f"ev{i}",
            "site_id": f"s{i}",
            "battery_kwh": 60,
            "soc_kwh": 30,
            "min_soc_kwh": 12,
            "target_soc_kwh": 36,
            "arrival_at": "2026-11-25T12:00:00Z",
            "departure_at": "2026-11-25T14:00:00Z",
            "max_charge_kw": 11,
            "max_discharge_kw": 11,
            "charger_id": f"cp{i}",
        }
        for i in range(14)
    ],
}
PRICES = "start_at,SE3\n2026-11-25T12:00:00Z,80.5\n2026-11-25T13:00:00Z,20.0\n"
FCR = "hour_start_at,fcr_n,fcr_d_up,fcr_d_down\n2026-11-25T12:00:00Z,40,10,5\n2026-11-25T13:00:00Z,35,12,6\n"


def write(tmp_path: Path, fleet: object = FLEET) -> tuple[Path, Path, Path]:
    paths = tmp_path / "fleet.json", tmp_path / "prices.csv", tmp_path / "fcr.csv"
    paths[0].write_text(json.dumps(fleet), encoding="utf-8")
    paths[1].write_text(PRICES, encoding="utf-8")
    paths[2].write_text(FCR, encoding="utf-8")
    return paths


def test_plan_then_check(tmp_path: Path) -> None:
    fleet, prices, fcr = write(tmp_path)
    out = tmp_path / "plan.json"
    runner = CliRunner()
    args = ["plan", "--fleet", str(fleet), "--prices", str(prices), "--reserve-prices", str(fcr)]
    result = runner.invoke(app, [*args, "--strategy", "v2g-reserves", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "0 violations" in result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["strategy"] == "v2g-reserves"
    assert len(doc["evs"]) == 14
    assert len(doc["evs"][0]["p_kw"]) == 8
    assert {b["product"] for b in doc["bids"]} <= {"fcr_n", "fcr_d_up", "fcr_d_down"}
    assert doc["bids"]
    assert all(b["mw"] >= 0.1 for b in doc["bids"])
    check = runner.invoke(
        app, ["plan", "check", str(out), "--fleet", str(fleet), "--prices", str(prices), "--reserve-prices", str(fcr)]
    )
    assert check.exit_code == 0, check.output
    assert "0 violations" in check.output
    # the run sub-command is the same as the default form
    again = runner.invoke(app, ["plan", "run", *args[1:], "--strategy", "smart", "--out", str(out), "--workers", "1"])
    assert again.exit_code == 0, again.output


def test_check_rejects_a_tampered_plan(tmp_path: Path) -> None:
    fleet, prices, fcr = write(tmp_path)
    out = tmp_path / "plan.json"
    runner = CliRunner()
    args = ["--fleet", str(fleet), "--prices", str(prices), "--reserve-prices", str(fcr)]
    assert runner.invoke(app, ["plan", *args, "--out", str(out), "--workers", "1"]).exit_code == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    doc["evs"][3]["p_kw"][0] = 25.0
    doc["bids"] = [dict(doc["bids"][0], mw=0.15)] if doc["bids"] else []
    out.write_text(json.dumps(doc), encoding="utf-8")
    check = runner.invoke(app, ["plan", "check", str(out), *args])
    assert check.exit_code == 1
    assert "power: ev[ev3] at 0" in check.output
    assert "bid_granularity" in check.output or "bid_deliverable" in check.output


def test_malformed_fleet_gives_a_clear_error(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(FLEET))
    bad["evs"][2]["soc_kwh"] = "full"
    fleet, prices, _ = write(tmp_path, bad)
    result = CliRunner().invoke(
        app, ["plan", "--fleet", str(fleet), "--prices", str(prices), "--out", str(tmp_path / "p.json")]
    )
    assert result.exit_code == 2
    assert "ev[ev2].soc_kwh: 'full' is not a number" in result.output
    bad = json.loads(json.dumps(FLEET))
    bad["evs"][0]["departure_at"] = "2026-11-25T11:00:00Z"
    fleet, prices, _ = write(tmp_path, bad)
    result = CliRunner().invoke(
        app, ["plan", "--fleet", str(fleet), "--prices", str(prices), "--out", str(tmp_path / "p.json")]
    )
    assert result.exit_code == 2
    assert "ev[ev0].departure_at" in result.output
    (tmp_path / "prices.csv").write_text("start_at,SE3\n2026-11-25T12:00:00Z,80\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["plan", "--fleet", str(fleet), "--prices", str(prices), "--out", str(tmp_path / "p.json")]
    )
    assert result.exit_code == 2
    assert "prices.SE3: no price for 2026-11-25T13:00:00+00:00" in result.output
