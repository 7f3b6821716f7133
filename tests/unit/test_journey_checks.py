"""Selection-stage checks with hand-computed numbers: fuse headroom, compatibility, DSO feasibility."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from v2g.fleet.model import GridArea, PriceArea
from v2g.journey.eligibility import (
    Feasibility,
    check_compatibility,
    compatibility_matrix,
    ev_models,
    feasibility_indication,
    fuse_check,
    wallboxes,
)
from v2g.journey.rules import load_rules

RULES = load_rules()
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_fuse_check_three_phase_hand_computed() -> None:
    # 25 A fuse, 10 % margin -> 22.5 A usable; 4.6 kW peak over 3 x 230 V -> 6.667 A; 16 A charger
    result = fuse_check(
        main_fuse_a=25,
        phases=3,
        voltage_v=230,
        household_peak_kw=4.6,
        charger_current_a=16,
        charger_phases=3,
        rules=RULES,
    )
    assert result.usable_current_a == pytest.approx(22.5)
    assert result.household_current_a == pytest.approx(6.667, abs=1e-3)
    assert result.safe_charge_current_a == pytest.approx(15.833, abs=1e-3)  # 22.5 - 6.667 < 16
    assert result.safe_charge_kw == pytest.approx(15.833 * 230 * 3 / 1000, abs=1e-2)  # 10.925 kW
    assert result.safe_discharge_current_a == 16  # no PV: the charger rating binds
    assert any("limited" in w for w in result.warnings)


def test_fuse_check_small_fuse_blocks_charging_at_peak_and_pv_limits_discharge() -> None:
    # 16 A fuse -> 14.4 A usable; 8 kW peak -> 11.594 A; 2.806 A left < 6 A minimum -> 0
    # PV 6.9 kW -> 10 A export per phase; discharge = min(16, 14.4 - 10) = 4.4 A
    result = fuse_check(
        main_fuse_a=16,
        phases=3,
        voltage_v=230,
        household_peak_kw=8.0,
        pv_kw=6.9,
        charger_current_a=16,
        charger_phases=3,
        rules=RULES,
    )
    assert result.safe_charge_current_a == 0.0
    assert result.safe_discharge_current_a == pytest.approx(4.4)
    assert result.safe_discharge_kw == pytest.approx(4.4 * 230 * 3 / 1000)
    assert any("below the 6 A minimum" in w for w in result.warnings)


def test_fuse_check_single_phase_charger_on_three_phase_site() -> None:
    # 20 A -> 18 A usable; 2.3 kW over 3 phases -> 3.333 A; 32 A single-phase charger -> 14.667 A on one phase
    result = fuse_check(
        main_fuse_a=20,
        phases=3,
        voltage_v=230,
        household_peak_kw=2.3,
        charger_current_a=32,
        charger_phases=1,
        rules=RULES,
    )
    assert result.safe_charge_current_a == pytest.approx(14.667, abs=1e-3)
    assert result.safe_charge_kw == pytest.approx(14.667 * 230 / 1000, abs=1e-3)
    assert result.phases == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"main_fuse_a": 0}, "main_fuse_a"), ({"phases": 2}, "phases"), ({"charger_phases": 2}, "phases")],
)
def test_fuse_check_refuses_impossible_input_naming_the_field(kwargs: dict[str, float], field: str) -> None:
    base: dict[str, float] = {
        "main_fuse_a": 20,
        "phases": 3,
        "voltage_v": 230,
        "household_peak_kw": 1,
        "charger_current_a": 16,
        "charger_phases": 3,
    }
    with pytest.raises(ValueError, match=f"^{field}:"):
        fuse_check(**(base | kwargs), rules=RULES)  # type: ignore[arg-type]


def test_compatibility_matrix_is_data_with_real_models() -> None:
    assert len(ev_models()) >= 5
    assert any(b.vendor == "Wallbox" and b.model == "Quasar 2" for b in wallboxes())
    matrix = compatibility_matrix()
    assert len(matrix) == len(ev_models()) * len(wallboxes())
    assert all(
        m.compatible
        for m in matrix
        if m.ev_model and m.ev_model.max_dc_discharge_kw > 0 and m.wallbox and m.wallbox.coupling == "dc"
    )


def test_compatibility_lookup() -> None:
    ok = check_compatibility("Volkswagen", "ID.4 Pro", "Wallbox", "Quasar 2")
    assert ok.compatible
    assert ok.max_discharge_kw == 10  # min(ID.4 DC discharge 10 kW, Quasar 2 11.5 kW)
    assert not check_compatibility("Tesla", "Model S", None, None).compatible
    unknown_box = check_compatibility("Kia", "Niro", "Acme", "Nope")
    assert not unknown_box.compatible
    assert "not certified" in unknown_box.reason
    any_box = check_compatibility("Kia", "Niro", None, None)
    assert any_box.compatible
    assert any_box.wallbox is not None
    assert not any_box.wallbox.demo


def test_feasibility_from_hosting_capacity_and_queue() -> None:
    area = GridArea("GA", "A", "dso", PriceArea.SE3, 800, 600, hosting_capacity_kw=100, connection_queue_length=4)
    ok = feasibility_indication(
        area, requested_export_kw=11, committed_export_kw=50, queued_before=2, now=NOW, rules=RULES
    )
    assert ok.result is Feasibility.FEASIBLE
    assert ok.queue_position == 7  # 4 external + 2 on the platform + this one
    assert ok.preliminary_connection_at == NOW + timedelta(days=49)  # max(42, 7 x 7)
    assert ok.latest_connection_at == NOW + timedelta(days=49 + 42)
    conditional = feasibility_indication(
        area, requested_export_kw=11, committed_export_kw=75, queued_before=0, now=NOW, rules=RULES
    )
    assert conditional.result is Feasibility.CONDITIONAL  # 86 kW > 80 % of 100 kW
    assert conditional.preliminary_connection_at == NOW + timedelta(days=42)  # the minimum lead time
    full = feasibility_indication(
        replace(area, connection_queue_length=0),
        requested_export_kw=11,
        committed_export_kw=95,
        queued_before=0,
        now=NOW,
        rules=RULES,
    )
    assert full.result is Feasibility.NOT_FEASIBLE
    assert "exceed the hosting capacity" in full.reason
    with pytest.raises(ValueError, match=r"^requested_export_kw"):
        feasibility_indication(
            area, requested_export_kw=-1, committed_export_kw=0, queued_before=0, now=NOW, rules=RULES
        )
