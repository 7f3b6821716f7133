"""The planner's price files, read into the planner's price tuples.

``PRICES.csv``: ``start_at,SE1,...`` with one row per quarter or per hour (hourly applies to its four
quarters), EUR/MWh. ``FCR.csv``: ``hour_start_at,fcr_n,fcr_d_up,fcr_d_down`` in EUR/MW/h. Errors raise
:class:`~v2g.planning.errors.PlanningInputError` naming the column and the time.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

from v2g.fleet.model import PriceArea
from v2g.planning.errors import PlanningInputError
from v2g.planning.model import PRODUCTS, Product
from v2g.units import HOUR, QUARTER, parse_utc


def _read_csv(text: str, what: str, time_column: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        msg = f"{what}: no rows"
        raise PlanningInputError(msg)
    if time_column not in rows[0]:
        msg = f"{what}: missing column {time_column!r}"
        raise PlanningInputError(msg)
    return rows


def read_planner_day_ahead_csv(text: str, start: datetime, n: int) -> dict[PriceArea, tuple[float, ...]]:
    """Day-ahead prices for ``[start, start + n quarters)`` at 15-min or hourly resolution."""
    rows = _read_csv(text, "prices", "start_at")
    by_time: dict[datetime, dict[str, str]] = {}
    for i, row in enumerate(rows):
        try:
            by_time[parse_utc(row["start_at"], field=f"prices row {i + 2}.start_at")] = row
        except ValueError as exc:
            raise PlanningInputError(str(exc)) from exc
    step = QUARTER if (start + QUARTER) in by_time else HOUR
    count = n if step == QUARTER else n // 4
    out: dict[PriceArea, tuple[float, ...]] = {}
    for area in PriceArea:
        if area.value not in rows[0]:
            continue
        values = []
        for k in range(count):
            at = start + step * k
            found = by_time.get(at)
            if found is None:
                msg = f"prices.{area.value}: no price for {at.isoformat()}"
                raise PlanningInputError(msg)
            try:
                values.append(float(found[area.value]))
            except ValueError as exc:
                msg = f"prices.{area.value} at {at.isoformat()}: {found[area.value]!r} is not a number"
                raise PlanningInputError(msg) from exc
        out[area] = tuple(values)
    if not out:
        msg = "prices: no price-area column (SE1..SE4)"
        raise PlanningInputError(msg)
    return out


def read_planner_reserve_csv(text: str, start: datetime, hours: int) -> dict[Product, tuple[float, ...]]:
    """Hourly FCR capacity prices (EUR/MW/h) per product."""
    rows = _read_csv(text, "reserve prices", "hour_start_at")
    by_time: dict[datetime, dict[str, str]] = {}
    for i, row in enumerate(rows):
        try:
            by_time[parse_utc(row["hour_start_at"], field=f"reserve prices row {i + 2}.hour_start_at")] = row
        except ValueError as exc:
            raise PlanningInputError(str(exc)) from exc
    out: dict[Product, tuple[float, ...]] = {}
    for product in PRODUCTS:
        if product.value not in rows[0]:
            continue
        values = []
        for h in range(hours):
            at = start + HOUR * h
            found = by_time.get(at)
            if found is None:
                msg = f"reserve prices.{product.value}: no price for {at.isoformat()}"
                raise PlanningInputError(msg)
            try:
                values.append(float(found[product.value]))
            except ValueError as exc:
                msg = f"reserve prices.{product.value} at {at.isoformat()}: {found[product.value]!r} is not a number"
                raise PlanningInputError(msg) from exc
        out[product] = tuple(values)
    return out
