"""`v2g prequal run` and `v2g dispatch replay` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.shared_data import FREQUENCY_2015_01_01
from v2g.cli import app


@pytest.mark.slow
def test_prequal_run_writes_the_protocol(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "prequal",
            "run",
            "--product",
            "fcr-d-up",
            "--group",
            "G1",
            "--out",
            str(tmp_path),
            "--no-sine",
            "--units",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "PASSED: fcr_d_up group G1" in result.output
    assert (tmp_path / "G1_fcr_d_up_report.html").is_file()
    assert [p.name.split("_")[:5] for p in tmp_path.glob("G1_*.csv")] == [
        ["G1", "FcrdUp", "RampEndurance", "SE3", "UTC"]
    ]


@pytest.mark.slow
def test_prequal_run_fails_a_slow_central_loop_on_stability(tmp_path: Path) -> None:
    args = ["prequal", "run", "--product", "fcr-d-up", "--group", "C", "--out", str(tmp_path), "--units", "2"]
    result = CliRunner().invoke(app, [*args, "--delay-s", "2", "--setpoint-interval-s", "1"])
    assert result.exit_code == 1, result.output
    assert "req8" in result.output
    assert "left of -1" in result.output


@pytest.mark.slow
def test_prequal_run_fails_a_slow_group_with_exit_code_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "prequal",
            "run",
            "--product",
            "fcr-d-down",
            "--group",
            "slow",
            "--out",
            str(tmp_path),
            "--no-sine",
            "--units",
            "2",
            "--ramp-kw-per-s",
            "0.5",
        ],
    )
    assert result.exit_code == 1
    assert "req2" in result.output
    assert "FAILED" in result.output


def test_prequal_run_names_a_bad_product(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["prequal", "run", "--product", "ffr", "--group", "G", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a known product" in result.output


@pytest.mark.slow
def test_dispatch_replay_prints_the_delivery_report() -> None:
    path = FREQUENCY_2015_01_01
    result = CliRunner().invoke(app, ["dispatch", "replay", "--frequency", str(path), "--evs", "40", "--hours", "2.5"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["seconds"] == 9000
    assert abs(figures["delivered_vs_required"] - 1.0) <= 0.02
    assert figures["missed_departure_targets"] == 0
    assert "fcr_n" in result.output


@pytest.mark.slow
def test_markets_season_replays_auctions_on_recorded_prices(shared_data: Path) -> None:
    prices = shared_data / "ancillary" / "energinet_fcr_dk2_2021_jan-sep.csv"
    args = ["markets", "season", "--fcr-prices", str(prices), "--first-day", "2021-03-27", "--days", "3"]
    result = CliRunner().invoke(app, [*args, "--price", "10", "--products", "fcr-n"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["bids"] == 24 + 23 + 24  # 28 March 2021 is the 23-hour day (summer time)
    assert figures["refused"] == 0
    assert figures["accepted"] + figures["rejected"] == figures["bids"]
    assert float(figures["revenue_eur_total"]) > 0
    bad = CliRunner().invoke(app, [*args, "--products", "mfrr"])
    assert bad.exit_code == 2
    assert "only FCR products" in bad.output
