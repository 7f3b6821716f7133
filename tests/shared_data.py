"""Where the large reference data sets are, and the recorded excerpts the repository ships.

The large sets (years of prices, behaviour statistics, the blueprint's seed) are not part of the
repository. A test that needs them takes the ``shared_data`` fixture, which asks :func:`shared_data_dir`:

* ``V2G_SHARED_DATA`` names their folder (a relative path is taken from the working directory);
  ``.ci/run`` sets it, so CI always runs these tests;
* without it the test is skipped with the reason, unless ``V2G_REQUIRE_SHARED_DATA=1`` (CI sets it
  too), which makes a missing folder a failure, never a silent skip;
* a folder that is named but missing is always a failure.

Nothing is looked up by a path relative to the checkout, so a clone anywhere passes ``make test``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from v2g.adapters.feeds.frequency import SHIPPED_FREQUENCY

SHARED_ENV = "V2G_SHARED_DATA"
REQUIRE_ENV = "V2G_REQUIRE_SHARED_DATA"
REPO = Path(__file__).resolve().parents[1]
SHIPPED_FEEDS = REPO / "src" / "v2g" / "adapters" / "feeds" / "data"
FREQUENCY_2015_01_01 = SHIPPED_FEEDS / SHIPPED_FREQUENCY
"""Statnett's 1 s Nordic frequency of 2015-01-01, shipped with the platform (see its ATTRIBUTION.md)."""
FIXTURES = REPO / "tests" / "fixtures"


def shared_data_dir(env: Mapping[str, str]) -> Path:
    """The reference data folder named by ``env``; skips or fails the test as described above."""
    value = env.get(SHARED_ENV, "").strip()
    if not value:
        if env.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{SHARED_ENV} must name the reference data folder when {REQUIRE_ENV}=1")
        pytest.skip(f"needs the large reference data sets: set {SHARED_ENV} to their folder (CI does)")
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        pytest.fail(f"reference data not found at {path} ({SHARED_ENV}={value})")
    return path
