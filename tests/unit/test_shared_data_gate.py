"""The reference data gate: a fresh clone skips (with the reason) the tests on the large data sets, CI
can never skip them, and nothing is found by a path relative to the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shared_data import FREQUENCY_2015_01_01, REPO, shared_data_dir


def test_without_the_variable_the_test_is_skipped_with_the_reason() -> None:
    with pytest.raises(pytest.skip.Exception, match="set V2G_SHARED_DATA"):
        shared_data_dir({})


def test_a_folder_beside_the_checkout_is_not_used_without_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    with pytest.raises(pytest.skip.Exception):
        shared_data_dir({})


def test_ci_fails_instead_of_skipping() -> None:
    with pytest.raises(pytest.fail.Exception, match="V2G_REQUIRE_SHARED_DATA=1"):
        shared_data_dir({"V2G_REQUIRE_SHARED_DATA": "1"})


def test_a_named_folder_that_is_missing_fails(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="reference data not found"):
        shared_data_dir({"V2G_SHARED_DATA": str(tmp_path / "nowhere")})


def test_a_relative_folder_is_taken_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    env = {"V2G_SHARED_DATA": "../shared/data", "V2G_REQUIRE_SHARED_DATA": "1"}
    assert shared_data_dir(env) == (tmp_path / "shared" / "data").resolve()


def test_ci_sets_the_data_folder_and_requires_it() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert 'export V2G_SHARED_DATA="${V2G_SHARED_DATA:-../shared/data}"' in ci
    assert "export V2G_REQUIRE_SHARED_DATA=1" in ci
    assert ci.index("V2G_REQUIRE_SHARED_DATA") < ci.index("make test")


def test_the_excerpts_the_tests_use_are_in_the_repository() -> None:
    assert FREQUENCY_2015_01_01.is_file()
    assert (REPO / "tests" / "fixtures" / "feeds" / "se_dayahead_hourly_2015-12-31_2016-01-02.csv").is_file()
