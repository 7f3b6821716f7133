"""Accepted grid signals become per-quarter planner inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from v2g.services.planning.grid_signals import LimitSignal, PriceSignal
from v2g.services.planning.signal_book import GridSignalBook

T0 = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


def test_a_limit_tightens_only_the_quarters_it_covers_and_the_newest_wins() -> None:
    book = GridSignalBook()
    changed: list[str] = []
    book.listeners.append(changed.append)
    book.limits([LimitSignal("GA1", T0 + timedelta(minutes=15), T0 + timedelta(minutes=45), 120.0)])
    assert book.import_limits_kw("GA1", 500.0, T0, 4) == (500.0, 120.0, 120.0, 500.0)
    book.limits([LimitSignal("GA1", T0 + timedelta(minutes=30), T0 + timedelta(minutes=45), 800.0)])
    # a newer, looser signal replaces the older one where it applies, but never lifts the static limit
    assert book.import_limits_kw("GA1", 500.0, T0, 4) == (500.0, 120.0, 500.0, 500.0)
    assert book.import_limits_kw("GA2", 300.0, T0, 2) == (300.0, 300.0)
    assert changed == ["GA1", "GA1"]


def test_prices_override_their_quarters() -> None:
    book = GridSignalBook()
    book.prices([PriceSignal("GA1", T0, T0 + timedelta(minutes=30), 250.0)])
    assert book.price_overrides("GA1", T0 - timedelta(minutes=15), 4) == {1: 250.0, 2: 250.0}


def test_bad_limits_are_refused_naming_the_field() -> None:
    book = GridSignalBook()
    with pytest.raises(ValueError, match=r"limit\[GA1\]\.end_at"):
        book.limits([LimitSignal("GA1", T0, T0, 10.0)])
    with pytest.raises(ValueError, match=r"limit\[GA1\]\.import_limit_kw"):
        book.limits([LimitSignal("GA1", T0, T0 + timedelta(hours=1), float("nan"))])


def test_old_signals_are_pruned() -> None:
    book = GridSignalBook()
    book.limits([LimitSignal("GA1", T0, T0 + timedelta(hours=1), 10.0)])
    assert book.prune(T0 + timedelta(days=3)) == 1
    assert book.active_limits(T0) == []
