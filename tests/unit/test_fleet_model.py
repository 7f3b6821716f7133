from __future__ import annotations

from datetime import UTC, datetime

import pytest

from v2g.fleet import Customer, PriceArea, Site, Vehicle
from v2g.fleet.model import FleetValueError


def test_site_fuse_limit_three_phase() -> None:
    site = Site("s1", "c1", "Gatan 1", PriceArea.SE3, "GA1", main_fuse_a=20)
    assert site.fuse_limit_kw == pytest.approx(13.8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"main_fuse_a": 0}, r"site\[s1\].main_fuse_a: must be > 0"),
        ({"main_fuse_a": 16, "phases": 2}, r"site\[s1\].phases: must be 1 or 3"),
    ],
)
def test_site_refuses_impossible_values(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(FleetValueError, match=message):
        Site("s1", "c1", "Gatan 1", PriceArea.SE3, "GA1", **kwargs)


def test_vehicle_that_cannot_v2g_cannot_discharge() -> None:
    with pytest.raises(FleetValueError, match=r"vehicle\[v1\].max_discharge_kw"):
        Vehicle("v1", "c1", "Make", "Model", 60.0, 11.0, 5.0, v2g_capable=False)


def test_customer_needs_aware_time_and_email() -> None:
    with pytest.raises(FleetValueError, match="email"):
        Customer("c1", "Ann", "not-an-email", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="created_at: naive"):
        Customer("c1", "Ann", "ann@example.se", datetime(2026, 1, 1))
