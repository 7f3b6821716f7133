"""`v2g markets season`: replay a season of D-1 FCR auctions against recorded marginal prices."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from v2g.adapters.feeds.energinet import PriceFileError, load_price_series
from v2g.fleet.model import PriceArea
from v2g.markets.bids import Bid, BiddingGroup, ControlMode
from v2g.markets.rules import FCR_PRODUCTS, Product, default_rules
from v2g.markets.simulator import TsoMarketSimulator, replay_season

app = typer.Typer(help="Market operations: auctions and season replays.", no_args_is_help=True)


@app.command("season")
def season(
    fcr_prices: Annotated[
        Path,
        typer.Option(
            exists=True, dir_okay=False, help="Energinet FcrReservesDK2 export (CSV): the DK2 2021 historical scenario."
        ),
    ],
    first_day: Annotated[str, typer.Option(help="First delivery day, YYYY-MM-DD.")],
    days: Annotated[int, typer.Option(min=1, max=400, help="Number of delivery days.")] = 30,
    mw: Annotated[float, typer.Option(min=0.1, help="Volume bid per product and hour (MW).")] = 1.0,
    price: Annotated[str, typer.Option(help="Bid price, EUR per MW and hour.")] = "10",
    products: Annotated[str, typer.Option(help="Comma-separated products.")] = "fcr-n,fcr-d-up,fcr-d-down",
) -> None:
    """Bid the same volume and price every hour, clear each day's auction, print one JSON line of results."""
    rules = default_rules()
    try:
        chosen = [Product.parse(p) for p in products.split(",") if p.strip()]
        start = date.fromisoformat(first_day)
        bid_price = Decimal(price)
        prices = load_price_series(fcr_prices)
    except (ValueError, PriceFileError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    if any(p not in FCR_PRODUCTS for p in chosen):
        msg = "products: only FCR products are sold in the D-1 auctions"
        raise typer.BadParameter(msg, param_hint="--products")
    group = BiddingGroup("season", "bsp", PriceArea.SE3, ControlMode.LOCAL, dict.fromkeys(chosen, mw))

    def local_midnight(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), tzinfo=rules.tz).astimezone(UTC)

    def bids_for(day: date) -> list[Bid]:
        midnight = local_midnight(day)
        hours = int((local_midnight(day + timedelta(days=1)) - midnight).total_seconds() // 3600)  # 23-25
        return [
            Bid(f"{p.value}-{day}-{h:02d}", group.id, p, group.price_area, midnight + timedelta(hours=h), mw, bid_price)
            for h in range(hours)
            for p in chosen
        ]

    summary = replay_season(TsoMarketSimulator(rules, prices), group, bids_for, start, days)
    typer.echo(
        json.dumps(
            {
                "days": summary.days,
                "bids": summary.bids,
                "refused": summary.refused,
                "accepted": summary.accepted,
                "rejected": summary.rejected,
                "committed_mwh": {p.value: round(v, 1) for p, v in summary.committed_mwh_by_product.items()},
                "revenue_eur": {p.value: str(v) for p, v in summary.revenue_eur_by_product.items()},
                "revenue_eur_total": str(summary.revenue_eur),
                "prices": prices.source,
            }
        )
    )
