"""The vectorised economics equal the Decimal path line by line, to the öre, on random months
(March 2026 with its 23-hour day), both DSO tariffs, negative prices and contracts of their own."""

from __future__ import annotations

import random
from decimal import Decimal

import numpy as np
import pytest

from v2g.settlement.economics import ContractTerms, settle_ev_period, spot_ore_per_kwh
from v2g.settlement.metering import FillRule, MeterInterval, Quality
from v2g.settlement.money import SettlementInputError
from v2g.settlement.periods import SettlementPeriod, local_date
from v2g.settlement.tariffs import load_tariffs
from v2g.settlement.vectorised import MeteredMonth, quarters_of, scaled, settle_month_vectorised
from v2g.units import QUARTER

MARCH = SettlementPeriod(2026, 3)


def test_the_vectorised_lines_equal_the_decimal_lines_exactly() -> None:
    rng = random.Random(7)
    tariffs = load_tariffs()
    n_q = quarters_of(MARCH)
    assert n_q == 2972  # 743 hours
    n = 5
    imp = np.zeros((n, n_q), dtype=np.int64)
    exp = np.zeros((n, n_q), dtype=np.int64)
    for i in range(n):
        for _ in range(40):  # sessions: a few hours of charging, sometimes discharging
            k = rng.randrange(n_q - 16)
            for j in range(rng.randrange(1, 16)):
                imp[i, k + j] = rng.randrange(0, 27_501)
                if rng.random() < 0.3:
                    exp[i, k + j] = rng.randrange(0, 25_001)
    spot = [Decimal(rng.randrange(-5_000, 400_000)) / 100 for _ in range(n_q)]  # EUR/MWh to the cent
    contracts = [ContractTerms.default(tariffs, MARCH.first_day)] * 4 + [ContractTerms(Decimal("0.85"), Decimal("45"))]
    reserve = [Decimal(rng.randrange(-5_000, 500_000)) / 100 for _ in range(n)]
    dsos = ["ellevio", "goteborg_energi", "ellevio", "goteborg_energi", "ellevio"]
    month = MeteredMonth(MARCH, [f"ev-{i}" for i in range(n)], [f"c-{i}" for i in range(n)], dsos, imp, exp)
    fast = settle_month_vectorised(month, spot, tariffs, contracts, reserve)
    rate = tariffs.sek_per_eur
    for i in range(n):
        starts = [MARCH.start_at + k * QUARTER for k in range(n_q)]
        intervals = [
            MeterInterval(
                at,
                Decimal(int(imp[i, k])).scaleb(-4),
                Decimal(int(exp[i, k])).scaleb(-4),
                Quality.MEASURED,
                Quality.MEASURED,
                (FillRule.REGISTER,),
                (FillRule.REGISTER,),
            )
            for k, at in enumerate(starts)
        ]
        prices = {at: spot_ore_per_kwh(spot[k], rate.at(local_date(at))) for k, at in enumerate(starts)}
        slow = settle_ev_period(
            period=MARCH,
            ev_id=f"ev-{i}",
            customer_id=f"c-{i}",
            intervals=intervals,
            spot_ore_per_kwh=prices,
            tariffs=tariffs,
            dso_key=dsos[i],
            contract=contracts[i],
            reserve_net_sek=reserve[i],
        )
        assert [(la.line, la.amount_sek, la.quantity, la.unit, la.basis) for la in fast[i]] == [
            (la.line, la.amount_sek, la.quantity, la.unit, la.basis) for la in slow.lines
        ], f"ev-{i}"


def test_bad_input_is_refused_naming_the_field() -> None:
    tariffs = load_tariffs()
    n_q = quarters_of(MARCH)
    with pytest.raises(SettlementInputError, match=r"metered.import_e4: shape \(1, 10\), expected \(1, 2972\)"):
        MeteredMonth(
            MARCH, ["ev"], ["c"], ["ellevio"], np.zeros((1, 10), dtype=np.int64), np.zeros((1, 10), dtype=np.int64)
        )
    with pytest.raises(SettlementInputError, match=r"metered\.export_e4: energy must be >= 0"):
        MeteredMonth(
            MARCH, ["ev"], ["c"], ["ellevio"], np.zeros((1, n_q), dtype=np.int64), -np.ones((1, n_q), dtype=np.int64)
        )
    month = MeteredMonth(
        MARCH, ["ev"], ["c"], ["ellevio"], np.zeros((1, n_q), dtype=np.int64), np.zeros((1, n_q), dtype=np.int64)
    )
    with pytest.raises(SettlementInputError, match=r"spot_eur_per_mwh: 3 prices for the 2972 quarters of 2026-03"):
        settle_month_vectorised(month, [Decimal(1)] * 3, tariffs, [ContractTerms(Decimal(0), Decimal(0))], [Decimal(0)])
    assert scaled([Decimal("1.5"), Decimal("-0.25")], field="x")[1] == 2
