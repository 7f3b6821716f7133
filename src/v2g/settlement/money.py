"""Decimal money and energy for settlement: SEK to the öre, kWh to the tenth of a watt-hour.

The rounding rule (one rule, everywhere):

* Amounts are computed with unrounded :class:`~decimal.Decimal` arithmetic per interval and summed
  per line and EV-period; each line total is rounded **once** to the öre (0.01 SEK), ties away from
  zero (``ROUND_HALF_UP``), as on an invoice. VAT is then computed on the rounded lines and rounded
  the same way.
* Splits that must add up (reserve revenue over EVs, a register advance over quarters) use the
  largest-remainder method (:func:`v2g.settlement.allocation.largest_remainder`), so the parts sum
  exactly to the whole.
* Floats never enter: a float from a meter or a solver is converted through its shortest ``repr``.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

ORE = Decimal("0.01")  # the SEK minor unit: every posted amount is a whole number of öre
KWH_QUANTUM = Decimal("0.0001")  # 0.1 Wh: the resolution of metered energy
ZERO = Decimal(0)


class SettlementInputError(ValueError):
    """Bad input to settlement; the message names the field and the reason."""


def round_ore(amount: Decimal) -> Decimal:
    """``amount`` SEK rounded to the öre, ties away from zero."""
    return amount.quantize(ORE, rounding=ROUND_HALF_UP)


def round_kwh(energy_kwh: Decimal) -> Decimal:
    """``energy_kwh`` rounded to 0.1 Wh, ties away from zero."""
    return energy_kwh.quantize(KWH_QUANTUM, rounding=ROUND_HALF_UP)


def decimal_of(value: float | int | str | Decimal, *, field: str) -> Decimal:
    """An exact Decimal of a meter value, a float through its shortest repr; NaN and infinity refused."""
    if isinstance(value, bool):
        msg = f"{field}: {value!r} is not a number"
        raise SettlementInputError(msg)
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f"{field}: {value!r} is not a finite number"
            raise SettlementInputError(msg)
        return Decimal(repr(value))
    try:
        result = Decimal(value)
    except ArithmeticError as exc:
        msg = f"{field}: {value!r} is not a number"
        raise SettlementInputError(msg) from exc
    if not result.is_finite():
        msg = f"{field}: {value!r} is not a finite number"
        raise SettlementInputError(msg)
    return result


def is_ore_exact(amount: Decimal) -> bool:
    """True when ``amount`` is a whole number of öre."""
    return amount == amount.quantize(ORE)
