"""Opt-in rules for utility and DSO signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from v2g.services.planning.grid_signals import OptRules, SignalInterval

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RULES = OptRules({"GA-1": 800.0}, min_limit_kw=300.0, min_notice=timedelta(minutes=10))


def iv(value: float, minutes_ahead: int = 30) -> list[SignalInterval]:
    return [SignalInterval(NOW + timedelta(minutes=minutes_ahead), timedelta(hours=1), value)]


def test_levels_map_to_fractions_of_the_area_limit() -> None:
    d = RULES.decide(signal_name="simple", signal_type="level", grid_area_id="GA-1", intervals=iv(2), now=NOW)
    assert d.opt == "optIn"
    assert d.limits[0].import_limit_kw == 400.0
    d = RULES.decide(signal_name="simple", signal_type="level", grid_area_id="GA-1", intervals=iv(3), now=NOW)
    assert d.opt == "optOut"
    assert "below" in d.reason


def test_short_notice_unknown_area_and_unsupported_signals_opt_out() -> None:
    short = RULES.decide(
        signal_name="LOAD_DISPATCH", signal_type="setpoint", grid_area_id="GA-1", intervals=iv(500, 5), now=NOW
    )
    assert short.opt == "optOut"
    assert "notice" in short.reason
    assert (
        RULES.decide(
            signal_name="ELECTRICITY_PRICE", signal_type="price", grid_area_id="GA-9", intervals=iv(0.1), now=NOW
        ).opt
        == "optOut"
    )
    assert (
        RULES.decide(signal_name="BID_LOAD", signal_type="setpoint", grid_area_id="GA-1", intervals=iv(1), now=NOW).opt
        == "optOut"
    )


def test_capacity_fraction_and_prices() -> None:
    d = RULES.decide(
        signal_name="LOAD_CONTROL", signal_type="x-loadControlCapacity", grid_area_id="GA-1", intervals=iv(0.5), now=NOW
    )
    assert d.limits[0].import_limit_kw == 400.0
    p = RULES.decide(
        signal_name="ELECTRICITY_PRICE", signal_type="price", grid_area_id="GA-1", intervals=iv(0.2), now=NOW
    )
    assert p.opt == "optIn"
    assert p.prices[0].price_eur_per_mwh == 200.0
