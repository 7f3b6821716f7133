"""The price a reserve bid asks: the provider's own cost of holding the capacity, never a guess of
the clearing price.

FCR auctions pay every accepted bid the marginal price (since 1 Feb 2024), so the bid that earns the
most is the one priced at what the hour costs the provider: a bid under its cost loses money when it
clears, a bid over it is rejected in hours that would have paid. The cost of one MW held for one
hour (EUR/MW,h) is

* the energy the activations move through the batteries (``throughput_mwh_per_mw_h``, measured on a
  recorded frequency day) times the battery wear per MWh and the round-trip losses bought at the
  day-ahead price of the hour, plus
* the expected repayment when the forecast capacity is not there (``1 - confidence`` of the hours,
  repaying the payment) which is covered by a floor price (``min_offer_eur_per_mw_h``).

Every number lives in ``rules.yaml`` (``offer_cost``) with its source.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from v2g.markets.rules import OfferCostRules, Product


def offer_price_eur_per_mw_h(cost: OfferCostRules, product: Product, day_ahead_eur_per_mwh: float) -> Decimal:
    """The offer price for one MW of ``product`` in an hour with that day-ahead price (to the cent, up)."""
    throughput = cost.throughput_mwh_per_mw_h.get(product, 0.0)
    energy = throughput * (cost.wear_eur_per_mwh + cost.round_trip_loss * max(day_ahead_eur_per_mwh, 0.0) / 2)
    price = max(energy, cost.min_offer_eur_per_mw_h.get(product, 0.0))
    return Decimal(repr(price)).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
