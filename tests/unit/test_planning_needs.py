"""Assembling a plugged-in EV's needs: every source, their precedence, and the planner honouring overrides."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest

from tests.planning_helpers import bare_rules
from v2g.fleet.model import Charger, ChargerProtocol, PriceArea, Vehicle
from v2g.fleet.preferences import OwnerPreferences
from v2g.planning import GridAreaLimits, PlanningProblem, Product, SiteLimits, check_schedule, plan
from v2g.planning.needs import Iso15118Needs, NeedsDefaults, PluggedInEv, SocReading, Source, assemble_needs

NOW = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # Tuesday 18:00 in Stockholm
VEHICLE = Vehicle("ev1", "c1", "Kia", "EV9", battery_kwh=100.0, max_charge_kw=11.0, max_discharge_kw=10.0)
CHARGER = Charger("cp1", "site1", "Ambibox", "ambiCHARGE", ChargerProtocol.OCPP21, 11.0, 11.0)
WEEKDAYS_0730 = (time(7, 30),) * 5 + (None, None)


def plugged(**kwargs: object) -> PluggedInEv:
    return PluggedInEv(VEHICLE, CHARGER, NOW - timedelta(minutes=20), **kwargs)  # type: ignore[arg-type]


def test_nothing_known_gives_the_documented_defaults() -> None:
    needs = assemble_needs(plugged(), NOW)
    s = needs.session
    assert s.departure_at == datetime(2026, 12, 2, 6, 0, tzinfo=UTC)  # 07:00 local next morning
    assert (s.target_soc_kwh, s.min_soc_kwh, s.soc_kwh) == (80.0, 20.0, 20.0)  # SoC unknown: the minimum
    assert (s.max_charge_kw, s.max_discharge_kw, s.battery_kwh) == (11.0, 10.0, 100.0)
    assert needs.sources["departure_at"] == Source.DEFAULT
    assert needs.sources["target_soc_kwh"] == Source.DEFAULT
    assert needs.sources["soc_kwh"] == Source.DEFAULT
    assert needs.sources["battery_kwh"] == Source.VEHICLE
    assert needs.sources["max_discharge_kw"] == Source.VEHICLE
    assert s.arrival_at == NOW - timedelta(minutes=20)
    assert s.charger_id == "cp1"
    assert s.site_id == "site1"
    assert s.discharge_allowed
    assert s.reserves_allowed
    assert needs.reasons[0].startswith("leaves Wed 07:00 (default), target 80 % (default)")


def test_preferences_replace_the_defaults() -> None:
    prefs = OwnerPreferences("ev1", WEEKDAYS_0730, target_soc_percent=90, min_soc_percent=30)
    needs = assemble_needs(plugged(preferences=prefs, soc=SocReading(55.0, NOW - timedelta(minutes=5))), NOW)
    s = needs.session
    assert s.departure_at == datetime(2026, 12, 2, 6, 30, tzinfo=UTC)
    assert (s.target_soc_kwh, s.min_soc_kwh, s.soc_kwh) == pytest.approx((90.0, 30.0, 55.0))
    assert needs.sources["departure_at"] == Source.PREFERENCES
    assert needs.sources["soc_kwh"] == Source.TELEMETRY


def test_an_earlier_car_departure_wins_a_later_one_does_not() -> None:
    prefs = OwnerPreferences("ev1", WEEKDAYS_0730)
    early = Iso15118Needs(NOW, departure_at=datetime(2026, 12, 2, 5, 0, tzinfo=UTC))
    needs = assemble_needs(plugged(preferences=prefs, iso15118=early), NOW)
    assert needs.session.departure_at == datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    assert needs.sources["departure_at"] == Source.ISO15118
    late = Iso15118Needs(NOW, departure_at=datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    needs = assemble_needs(plugged(preferences=prefs, iso15118=late), NOW)
    assert needs.session.departure_at == datetime(2026, 12, 2, 6, 30, tzinfo=UTC)
    assert needs.sources["departure_at"] == Source.PREFERENCES
    # without preferences the car's time is used even when later than the default
    needs = assemble_needs(plugged(iso15118=late), NOW)
    assert needs.session.departure_at == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    # a departure in the past is ignored, and said so
    past = Iso15118Needs(NOW, departure_at=NOW - timedelta(hours=1))
    needs = assemble_needs(plugged(iso15118=past), NOW)
    assert needs.sources["departure_at"] == Source.DEFAULT
    assert any("has passed" in r for r in needs.reasons)


def test_the_higher_target_and_minimum_win_and_the_car_knows_its_battery_and_limits() -> None:
    prefs = OwnerPreferences("ev1", target_soc_percent=70, min_soc_percent=40)
    iso = Iso15118Needs(
        NOW,
        soc_percent=30.0,
        energy_request_kwh=55.0,  # 30 % of 95 kWh + 55 kWh = 83.5 kWh
        min_energy_request_kwh=5.0,  # 28.5 + 5 = 33.5 kWh, below the owner's 40 %
        battery_kwh=95.0,
        max_charge_kw=7.0,
        max_discharge_kw=12.0,
    )
    needs = assemble_needs(plugged(preferences=prefs, iso15118=iso), NOW)
    s = needs.session
    assert s.battery_kwh == 95.0
    assert s.target_soc_kwh == pytest.approx(83.5)
    assert needs.sources["target_soc_kwh"] == Source.ISO15118
    assert s.min_soc_kwh == pytest.approx(38.0)  # the owner's 40 % of 95 kWh
    assert needs.sources["min_soc_kwh"] == Source.PREFERENCES
    assert s.max_charge_kw == 7.0
    assert needs.sources["max_charge_kw"] == Source.ISO15118
    assert s.max_discharge_kw == 10.0  # the vehicle record is lower than the car's report
    assert needs.sources["max_discharge_kw"] == Source.VEHICLE
    # an owner's target above the car's request wins; a target never lies below the minimum
    high = OwnerPreferences("ev1", target_soc_percent=95, min_soc_percent=40)
    assert assemble_needs(plugged(preferences=high, iso15118=iso), NOW).session.target_soc_kwh == pytest.approx(90.25)
    low_target = Iso15118Needs(NOW, soc_percent=10, target_soc_percent=30, min_soc_percent=50)
    s = assemble_needs(plugged(iso15118=low_target), NOW).session
    assert (s.min_soc_kwh, s.target_soc_kwh) == (50.0, 50.0)


def test_the_most_recent_soc_wins() -> None:
    iso = Iso15118Needs(NOW - timedelta(minutes=30), soc_percent=40.0)
    newer = SocReading(45.0, NOW - timedelta(minutes=2))
    needs = assemble_needs(plugged(iso15118=iso, soc=newer), NOW)
    assert (needs.session.soc_kwh, needs.sources["soc_kwh"]) == (45.0, Source.TELEMETRY)
    older = SocReading(35.0, NOW - timedelta(hours=2))
    needs = assemble_needs(plugged(iso15118=iso, soc=older), NOW)
    assert (needs.session.soc_kwh, needs.sources["soc_kwh"]) == (40.0, Source.ISO15118)


def test_no_discharge_without_a_bidirectional_charger_or_a_v2g_vehicle() -> None:
    uni = replace(CHARGER, max_discharge_kw=0.0)
    needs = assemble_needs(PluggedInEv(VEHICLE, uni, NOW), NOW)
    assert (needs.session.max_discharge_kw, needs.sources["max_discharge_kw"]) == (0.0, Source.CHARGER)
    plain = replace(VEHICLE, v2g_capable=False, max_discharge_kw=0.0)
    needs = assemble_needs(PluggedInEv(plain, CHARGER, NOW), NOW)
    assert (needs.session.max_discharge_kw, needs.sources["max_discharge_kw"]) == (0.0, Source.VEHICLE)


def test_charge_now_overrides_everything() -> None:
    prefs = OwnerPreferences(
        "ev1", WEEKDAYS_0730, charge_now_until=NOW + timedelta(hours=2), opt_out_on=date(2026, 12, 1)
    )
    needs = assemble_needs(plugged(preferences=prefs), NOW)
    s = needs.session
    assert s.charge_now_until == NOW + timedelta(hours=2)
    assert not s.allow_discharge
    assert not s.allow_reserves
    assert needs.sources["allow_discharge"] == Source.CHARGE_NOW
    # once its time has passed it no longer applies (the opt-out for the day then does)
    later = assemble_needs(plugged(preferences=prefs), NOW + timedelta(hours=3))
    assert later.session.charge_now_until is None
    assert later.sources["allow_discharge"] == Source.OPT_OUT


def test_opt_out_today_means_smart_charging_only() -> None:
    prefs = OwnerPreferences("ev1", opt_out_on=date(2026, 12, 1))
    needs = assemble_needs(plugged(preferences=prefs), NOW)
    assert not needs.session.allow_discharge
    assert not needs.session.allow_reserves
    assert needs.session.charge_now_until is None
    assert any("opted out" in r for r in needs.reasons)
    tomorrow = assemble_needs(plugged(preferences=prefs), NOW + timedelta(days=1))
    assert tomorrow.session.allow_discharge


def test_defaults_can_be_configured() -> None:
    d = NeedsDefaults(departure_local=time(6, 15), target_soc_percent=90, min_soc_percent=10)
    s = assemble_needs(plugged(), NOW, d).session
    assert s.departure_at == datetime(2026, 12, 2, 5, 15, tzinfo=UTC)
    assert (s.target_soc_kwh, s.min_soc_kwh) == (90.0, 10.0)


# ------------------------------------------------------------------ the planner honours the overrides


def _problem(*sessions: object, import_kw: float = 1e6) -> PlanningProblem:
    start = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    n = 16
    prices = tuple(float(p) for p in (300, 20, 250, 10, 400, 30, 350, 5, 300, 20, 250, 10, 400, 30, 350, 5))
    evs = tuple(replace(s, departure_at=start + timedelta(hours=4)) for s in sessions)  # type: ignore[type-var]
    return PlanningProblem(
        start_at=start,
        n_intervals=n,
        evs=evs,  # type: ignore[arg-type]
        sites=tuple(SiteLimits(e.site_id, "ga", 50.0) for e in evs),  # type: ignore[attr-defined]
        grid_areas=(GridAreaLimits("ga", PriceArea.SE3, (import_kw,), (1e6,)),),
        day_ahead_eur_per_mwh={PriceArea.SE3: prices},
        reserve_eur_per_mw_h=dict.fromkeys((Product.FCR_N, Product.FCR_D_UP, Product.FCR_D_DOWN), (500.0,) * 4),
        rules=bare_rules(),
    )


def _session(ev_id: str, prefs: OwnerPreferences | None) -> object:
    vehicle = replace(VEHICLE, id=ev_id)
    charger = replace(CHARGER, id=f"cp-{ev_id}", site_id=f"site-{ev_id}")
    soc = SocReading(50.0, NOW)
    return assemble_needs(PluggedInEv(vehicle, charger, NOW, soc=soc, preferences=prefs), NOW).session


def test_the_planner_honours_charge_now_and_opt_out() -> None:
    free = _session("free", OwnerPreferences("free", target_soc_percent=55))
    rush = _session("rush", OwnerPreferences("rush", charge_now_until=NOW + timedelta(hours=1), target_soc_percent=80))
    out = _session("out", OwnerPreferences("out", opt_out_on=date(2026, 12, 1)))
    pr = _problem(free, rush, out)
    result = plan(pr)
    assert check_schedule(pr, result) == []
    plans = {p.ev_id: p for p in result.ev_plans}
    # the free EV is used for V2G: it discharges or holds reserves
    free_reserve = max(v.max() for v in plans["free"].reserve_kw.values())
    assert plans["free"].p_kw.min() < -1.0 or free_reserve > 1.0
    # charge now: full power for the first hour, never discharging, no reserves
    np.testing.assert_allclose(plans["rush"].p_kw[:4], 11.0)
    for name in ("rush", "out"):
        assert plans[name].p_kw.min() >= -1e-9
        assert all(v.max() <= 1e-9 for v in plans[name].reserve_kw.values())


def test_charge_now_stops_at_the_target_and_fits_the_grid_area() -> None:
    near = OwnerPreferences("near", charge_now_until=NOW + timedelta(hours=2), target_soc_percent=55)
    pr = _problem(_session("near", near))
    p = plan(pr).ev_plans[0].p_kw
    # 5 kWh to go at 92 % efficiency: 11 kW for 1.8 quarters, then the planner is free (but no discharge)
    assert p[0] == pytest.approx(11.0)
    assert p[1] >= 5.0 / 0.92 / 0.25 - 11.0 - 1e-6
    assert p.min() >= -1e-9
    two = OwnerPreferences("a", charge_now_until=NOW + timedelta(hours=1))
    pr = _problem(_session("a", two), _session("b", replace(two, ev_id="b")), import_kw=15.0)
    result = plan(pr)
    assert check_schedule(pr, result) == []
    total = sum(pl.p_kw for pl in result.ev_plans)
    np.testing.assert_allclose(total[:4], 15.0)  # both forced, shared within the area limit
