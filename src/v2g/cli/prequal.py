"""`v2g prequal run`: drive a providing group through the official FCR pre-qualification tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from v2g.markets.rules import Product, default_rules
from v2g.prequal.report import write_protocol
from v2g.runtime.demo import prequal_on_twin
from v2g.units import utc_now

app = typer.Typer(help="TSO pre-qualification tests (FCR-N, FCR-D up, FCR-D down).", no_args_is_help=True)


@app.command("run")
def run(
    product: Annotated[str, typer.Option(help="fcr-n | fcr-d-up | fcr-d-down")],
    group: Annotated[str, typer.Option(help="Providing group id.")],
    out: Annotated[Path, typer.Option(help="Folder for the CSV logs and the HTML report.")] = Path("prequal-protocol"),
    units: Annotated[int, typer.Option(min=1, help="Number of identical simulated chargers in the group.")] = 12,
    unit_kw: Annotated[float, typer.Option(min=0.1, help="Capacity each unit offers (kW).")] = 10.0,
    ramp_kw_per_s: Annotated[float, typer.Option(min=0.01, help="Simulated unit ramp rate (kW/s).")] = 20.0,
    delay_s: Annotated[float, typer.Option(min=0.0, help="Simulated response delay (s).")] = 0.3,
    sine: Annotated[bool, typer.Option(help="Also run the sine tests.")] = True,
    setpoint_interval_s: Annotated[
        float,
        typer.Option(min=0.0, help="Central aggregator cadence: setpoints every this many seconds (0: per sample)."),
    ] = 0.0,
    battery_kwh: Annotated[
        float,
        typer.Option(
            min=1.0, help="Simulated usable battery per unit (kWh); below 2 h of full activation the group is LER."
        ),
    ] = 64.0,
) -> None:
    """Run the test programme on a simulated group (digital twin) and write the test protocol."""
    try:
        prod = Product.parse(product)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--product") from exc
    if prod is Product.MFRR:
        msg = "mFRR has no frequency pre-qualification test"
        raise typer.BadParameter(msg, param_hint="--product")
    rules = default_rules()
    started = utc_now()
    result = prequal_on_twin(
        group,
        prod,
        units,
        unit_kw,
        started,
        rules,
        ramp_kw_per_s=ramp_kw_per_s,
        delay_s=delay_s,
        include_sine=sine,
        setpoint_interval_s=setpoint_interval_s,
        battery_kwh=battery_kwh,
    )
    pq = rules.prequal
    report = write_protocol(result, out, area=pq.protocol_area, timezone=pq.protocol_timezone)
    for req in result.requirements:
        typer.echo(req.text())
    verdict = "PASSED" if result.passed else "FAILED"
    typer.echo(
        f"{verdict}: {prod.value} group {group}, qualified {result.qualified_capacity_kw:.1f} kW; report {report}"
    )
    if not result.passed:
        raise typer.Exit(code=1)
