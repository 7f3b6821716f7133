"""Typed planner inputs and outputs.

Inputs are frozen values; :func:`PlanningProblem.validate` checks them all and raises one
:class:`PlanningInputError` listing every problem, each naming the EV, site, grid area or interval
and the reason. Sign convention: ``p_kw > 0`` charges the EV, ``p_kw < 0`` discharges it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from v2g.fleet.model import PriceArea
from v2g.fleet.schedule import PowerSchedule
from v2g.planning.errors import PlanningInputError
from v2g.planning.rules import PlanningRules
from v2g.units import HOUR, QUARTER, QUARTERS_PER_HOUR, ensure_utc, floor_quarter

FloatArray = npt.NDArray[np.float64]


class Product(StrEnum):
    """Nordic frequency containment reserve products, bought hourly by the TSO."""

    FCR_N = "fcr_n"
    FCR_D_UP = "fcr_d_up"
    FCR_D_DOWN = "fcr_d_down"


PRODUCTS: tuple[Product, ...] = (Product.FCR_N, Product.FCR_D_UP, Product.FCR_D_DOWN)


class Strategy(StrEnum):
    """Planning strategies; all share one interface (:func:`v2g.planning.plan`)."""

    UNCONTROLLED = "uncontrolled"  # charge at full power on arrival until the target
    SMART = "smart"  # cheapest intervals to reach the target, no discharge
    V2G_SPOT = "v2g-spot"  # day-ahead arbitrage, no reserves
    V2G_RESERVES = "v2g-reserves"  # spot + FCR-N + FCR-D up/down (the default)


@dataclass(frozen=True, slots=True)
class EvSession:
    """One EV's plug-in session as the planner sees it.

    ``soc_kwh`` is the energy in the battery at ``arrival_at`` (or now, if it is already plugged
    in: then ``arrival_at`` is at or before the horizon start). ``availability`` is the probability
    per horizon hour that the EV is actually plugged in as planned (1.0 when omitted).

    Owner overrides: ``allow_discharge=False`` forbids discharging (smart charging only),
    ``allow_reserves=False`` keeps the EV out of the reserves, and ``charge_now_until`` makes the
    planner charge at full power from the start of the window until that time or until the target
    is reached (whichever comes first); such an EV neither discharges nor holds reserves.
    """

    ev_id: str
    site_id: str
    battery_kwh: float
    soc_kwh: float
    min_soc_kwh: float
    target_soc_kwh: float
    arrival_at: datetime
    departure_at: datetime
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float = 0.92
    discharge_efficiency: float = 0.92
    next_arrival_at: datetime | None = None
    availability: tuple[float, ...] | None = None
    charger_id: str | None = None
    allow_discharge: bool = True
    allow_reserves: bool = True
    charge_now_until: datetime | None = None

    @property
    def discharge_allowed(self) -> bool:
        """Whether the owner lets the planner discharge this EV (no charge-now override, no opt-out)."""
        return self.allow_discharge and self.charge_now_until is None

    @property
    def reserves_allowed(self) -> bool:
        """Whether this EV may hold frequency reserves."""
        return self.allow_reserves and self.charge_now_until is None


@dataclass(frozen=True, slots=True)
class SiteLimits:
    """A home connection: the main fuse and the household load (and PV) forecast per quarter.

    A series of length 1 applies to every quarter.
    """

    site_id: str
    grid_area_id: str
    fuse_limit_kw: float
    household_load_kw: tuple[float, ...] = (0.0,)
    pv_kw: tuple[float, ...] = (0.0,)


@dataclass(frozen=True, slots=True)
class GridAreaLimits:
    """A DSO grid area: limits on the summed EV import and export per quarter (length 1 = constant)."""

    area_id: str
    price_area: PriceArea
    import_limit_kw: tuple[float, ...]
    export_limit_kw: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ReserveCommitment:
    """Reserve capacity already sold: the fleet of ``price_area`` must hold ``kw`` of ``product``.

    ``hour_start_at`` is an aware UTC clock hour inside the horizon. The planner allocates at least
    ``kw`` across the price area's EVs (as capacity deliverable at the bid confidence) or reports a
    :class:`CommitmentShortfall`; new bids only cover what the plan holds beyond it.
    """

    price_area: PriceArea
    product: Product
    hour_start_at: datetime
    kw: float


@dataclass(frozen=True, slots=True)
class PlanningProblem:
    """Everything one planning run needs.

    ``day_ahead_eur_per_mwh`` holds one series per price area at 15-min (``n_intervals`` values) or
    hourly (``n_intervals / 4`` values, each applying to its four quarters) resolution.
    ``reserve_eur_per_mw_h`` holds one hourly capacity price series per product.
    ``commitments`` are accepted reserve bids the plan must honour (see :class:`ReserveCommitment`).
    """

    start_at: datetime
    n_intervals: int
    evs: tuple[EvSession, ...]
    sites: tuple[SiteLimits, ...]
    grid_areas: tuple[GridAreaLimits, ...]
    day_ahead_eur_per_mwh: dict[PriceArea, tuple[float, ...]]
    reserve_eur_per_mw_h: dict[Product, tuple[float, ...]]
    rules: PlanningRules
    commitments: tuple[ReserveCommitment, ...] = ()

    @property
    def n_hours(self) -> int:
        """Hours in the horizon (the horizon is a whole number of hours)."""
        return self.n_intervals // QUARTERS_PER_HOUR

    @property
    def end_at(self) -> datetime:
        """End of the horizon."""
        return self.start_at + QUARTER * self.n_intervals

    def quarter_prices(self, area: PriceArea) -> FloatArray:
        """Day-ahead price per quarter for ``area`` (hourly prices repeated over their quarters)."""
        series = np.asarray(self.day_ahead_eur_per_mwh[area], dtype=np.float64)
        if series.size == self.n_intervals:
            return series
        return np.repeat(series, QUARTERS_PER_HOUR)

    def reserve_prices(self, product: Product) -> FloatArray:
        """Hourly capacity price of ``product`` (zeros when the product has no prices)."""
        series = self.reserve_eur_per_mw_h.get(product)
        if series is None:
            return np.zeros(self.n_hours)
        return np.asarray(series, dtype=np.float64)

    def committed_kw(self) -> dict[tuple[PriceArea, Product], FloatArray]:
        """Committed kW per (price area, product) and horizon hour (commitments for one hour add up)."""
        out: dict[tuple[PriceArea, Product], FloatArray] = {}
        start = ensure_utc(self.start_at)
        for c in self.commitments:
            hour = int((ensure_utc(c.hour_start_at) - start) // HOUR)
            series = out.setdefault((PriceArea(c.price_area), Product(c.product)), np.zeros(self.n_hours))
            series[hour] += c.kw
        return out

    def validate(self) -> None:
        """Check every input; raise one error listing all problems."""
        problems: list[str] = []
        _validate_problem(self, problems)
        if problems:
            head = problems[0] if len(problems) == 1 else f"{len(problems)} problems in the planning input"
            msg = head if len(problems) == 1 else head + ":\n  " + "\n  ".join(problems[:50])
            raise PlanningInputError(msg, tuple(problems))


def _finite(values: Sequence[float]) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def _check_series(problems: list[str], name: str, values: Sequence[float], lengths: tuple[int, ...]) -> None:
    if len(values) not in lengths:
        problems.append(f"{name}: has {len(values)} values, expected one of {sorted(set(lengths))}")
    elif not _finite(values):
        bad = next(i for i, v in enumerate(values) if not (isinstance(v, int | float) and math.isfinite(v)))
        problems.append(f"{name}[{bad}]: {values[bad]!r} is not a finite number")


def _validate_problem(problem: PlanningProblem, problems: list[str]) -> None:
    try:
        start = ensure_utc(problem.start_at, field="start_at")
    except ValueError as exc:
        problems.append(str(exc))
        return
    if start != floor_quarter(start):
        problems.append(f"start_at: {start.isoformat()} is not on a quarter-hour boundary")
    n = problem.n_intervals
    if n <= 0 or n % QUARTERS_PER_HOUR:
        problems.append(f"n_intervals: {n} must be a positive multiple of {QUARTERS_PER_HOUR} (whole hours)")
        return
    hours = n // QUARTERS_PER_HOUR
    areas: dict[str, GridAreaLimits] = {}
    for area in problem.grid_areas:
        name = f"grid_area[{area.area_id}]"
        if area.area_id in areas:
            problems.append(f"{name}: duplicate grid area id")
        areas[area.area_id] = area
        if area.price_area not in problem.day_ahead_eur_per_mwh:
            problems.append(f"{name}.price_area: no day-ahead prices for {area.price_area}")
        for fname in ("import_limit_kw", "export_limit_kw"):
            values = getattr(area, fname)
            _check_series(problems, f"{name}.{fname}", values, (1, n))
            negative = [i for i, v in enumerate(values) if _finite([v]) and v < 0]
            if negative:
                problems.append(f"{name}.{fname}[{negative[0]}]: {values[negative[0]]} must be >= 0")
    for price_area, series in problem.day_ahead_eur_per_mwh.items():
        _check_series(problems, f"day_ahead_eur_per_mwh[{price_area}]", series, (n, hours))
    for product, series in problem.reserve_eur_per_mw_h.items():
        _check_series(problems, f"reserve_eur_per_mw_h[{product}]", series, (hours,))
    sites: dict[str, SiteLimits] = {}
    for site in problem.sites:
        name = f"site[{site.site_id}]"
        if site.site_id in sites:
            problems.append(f"{name}: duplicate site id")
        sites[site.site_id] = site
        if site.grid_area_id not in areas:
            problems.append(f"{name}.grid_area_id: unknown grid area {site.grid_area_id!r}")
        if not (math.isfinite(site.fuse_limit_kw) and site.fuse_limit_kw > 0):
            problems.append(f"{name}.fuse_limit_kw: {site.fuse_limit_kw} must be > 0")
        _check_series(problems, f"{name}.household_load_kw", site.household_load_kw, (1, n))
        _check_series(problems, f"{name}.pv_kw", site.pv_kw, (1, n))
    seen: set[str] = set()
    for ev in problem.evs:
        _validate_ev(ev, start, problem.end_at, hours, sites, seen, problems)
    price_areas = {a.price_area for a in problem.grid_areas}
    for i, commitment in enumerate(problem.commitments):
        _validate_commitment(commitment, f"commitments[{i}]", start, hours, price_areas, problems)


def _validate_commitment(
    c: ReserveCommitment, name: str, start: datetime, hours: int, price_areas: set[PriceArea], problems: list[str]
) -> None:
    if c.price_area not in price_areas:
        problems.append(f"{name}.price_area: no grid area of the problem lies in {c.price_area!r}")
    if c.product not in PRODUCTS:
        problems.append(f"{name}.product: {c.product!r} is not one of {[str(p) for p in PRODUCTS]}")
    if not (isinstance(c.kw, int | float) and math.isfinite(c.kw) and c.kw >= 0):
        problems.append(f"{name}.kw: {c.kw!r} must be a finite number >= 0")
    try:
        at = ensure_utc(c.hour_start_at, field=f"{name}.hour_start_at")
    except ValueError as exc:
        problems.append(str(exc))
        return
    offset = at - start
    if offset % HOUR:
        problems.append(f"{name}.hour_start_at: {at.isoformat()} is not a whole hour from the horizon start")
    elif not 0 <= offset // HOUR < hours:
        problems.append(f"{name}.hour_start_at: {at.isoformat()} lies outside the horizon")


def _validate_ev(
    ev: EvSession,
    start: datetime,
    end: datetime,
    hours: int,
    sites: dict[str, SiteLimits],
    seen: set[str],
    problems: list[str],
) -> None:
    name = f"ev[{ev.ev_id}]"
    if not ev.ev_id:
        problems.append("ev[]: ev_id must not be empty")
    if ev.ev_id in seen:
        problems.append(f"{name}: duplicate EV id")
    seen.add(ev.ev_id)
    if ev.site_id not in sites:
        problems.append(f"{name}.site_id: unknown site {ev.site_id!r}")
    numbers = {
        "battery_kwh": ev.battery_kwh,
        "soc_kwh": ev.soc_kwh,
        "min_soc_kwh": ev.min_soc_kwh,
        "target_soc_kwh": ev.target_soc_kwh,
        "max_charge_kw": ev.max_charge_kw,
        "max_discharge_kw": ev.max_discharge_kw,
        "charge_efficiency": ev.charge_efficiency,
        "discharge_efficiency": ev.discharge_efficiency,
    }
    for fname, value in numbers.items():
        if not (isinstance(value, int | float) and math.isfinite(value)):
            problems.append(f"{name}.{fname}: {value!r} is not a finite number")
            return
    if ev.battery_kwh <= 0:
        problems.append(f"{name}.battery_kwh: {ev.battery_kwh} must be > 0")
    for fname in ("soc_kwh", "min_soc_kwh", "target_soc_kwh"):
        value = numbers[fname]
        if not 0 <= value <= ev.battery_kwh:
            problems.append(f"{name}.{fname}: {value} must lie in [0, battery_kwh={ev.battery_kwh}]")
    if ev.target_soc_kwh < ev.min_soc_kwh:
        problems.append(f"{name}.target_soc_kwh: {ev.target_soc_kwh} is below min_soc_kwh={ev.min_soc_kwh}")
    if ev.charge_now_until is not None:
        try:
            ensure_utc(ev.charge_now_until, field=f"{name}.charge_now_until")
        except ValueError as exc:
            problems.append(str(exc))
    for fname in ("max_charge_kw", "max_discharge_kw"):
        if numbers[fname] < 0:
            problems.append(f"{name}.{fname}: {numbers[fname]} must be >= 0")
    for fname in ("charge_efficiency", "discharge_efficiency"):
        if not 0 < numbers[fname] <= 1:
            problems.append(f"{name}.{fname}: {numbers[fname]} must lie in (0, 1]")
    try:
        arrival = ensure_utc(ev.arrival_at, field=f"{name}.arrival_at")
        departure = ensure_utc(ev.departure_at, field=f"{name}.departure_at")
    except ValueError as exc:
        problems.append(str(exc))
        return
    if departure <= arrival:
        problems.append(f"{name}.departure_at: {departure.isoformat()} is not after arrival_at {arrival.isoformat()}")
    if departure <= start:
        problems.append(
            f"{name}.departure_at: {departure.isoformat()} is not after the horizon start {start.isoformat()}"
        )
    if arrival >= end:
        problems.append(f"{name}.arrival_at: {arrival.isoformat()} is after the horizon end {end.isoformat()}")
    if ev.next_arrival_at is not None:
        try:
            nxt = ensure_utc(ev.next_arrival_at, field=f"{name}.next_arrival_at")
        except ValueError as exc:
            problems.append(str(exc))
        else:
            if nxt < departure:
                problems.append(f"{name}.next_arrival_at: {nxt.isoformat()} is before departure_at")
    if ev.availability is not None:
        if len(ev.availability) != hours:
            problems.append(f"{name}.availability: has {len(ev.availability)} values, expected {hours} (one per hour)")
        else:
            for i, p in enumerate(ev.availability):
                if not (isinstance(p, int | float) and math.isfinite(p) and 0 <= p <= 1):
                    problems.append(f"{name}.availability[{i}]: {p!r} must be a probability in [0, 1]")
                    break


@dataclass(frozen=True, slots=True)
class ReserveBid:
    """An aggregated hourly capacity bid of the fleet; the market operations consume this type.

    Stable contract: ``product`` (:class:`Product`), ``hour_start_at`` (aware UTC, on the hour),
    ``price_area`` (:class:`PriceArea`), ``mw`` (a multiple of the bid granularity, at least the
    minimum bid), ``expected_mw`` (the allocated capacity weighted by availability) and
    ``price_eur_per_mw_h`` (the capacity price the plan assumed).
    """

    product: Product
    hour_start_at: datetime
    price_area: PriceArea
    mw: float
    expected_mw: float
    price_eur_per_mw_h: float


@dataclass(frozen=True, slots=True)
class TargetShortfall:
    """A departure target that cannot physically be reached; the plan delivers the best effort."""

    ev_id: str
    target_soc_kwh: float
    planned_soc_kwh: float
    reason: str


@dataclass(frozen=True, slots=True)
class CommitmentShortfall:
    """A reserve commitment the plan cannot hold in full: it holds ``planned_kw`` of ``committed_kw``."""

    price_area: PriceArea
    product: Product
    hour_start_at: datetime
    committed_kw: float
    planned_kw: float
    reason: str

    @property
    def missing_kw(self) -> float:
        """What is missing of the commitment."""
        return self.committed_kw - self.planned_kw


@dataclass(frozen=True, slots=True)
class EvPlan:
    """The plan for one EV: setpoints per quarter, reserve per hour and the expected value."""

    ev_id: str
    # per quarter of the horizon; 0 outside the session, except charging in the quarter an EV leaves in
    # when its plan left it short of its target (the planning cycle's departure top-up)
    p_kw: FloatArray
    soc_kwh: FloatArray  # n_intervals + 1 values: energy at each quarter boundary (NaN outside the session)
    reserve_kw: dict[Product, FloatArray]  # per hour of the horizon, after the bid rules
    energy_cost_eur: float
    reserve_revenue_eur: float
    wear_cost_eur: float
    first_interval: int
    end_interval: int
    charger_id: str | None = None

    @property
    def net_cost_eur(self) -> float:
        """Energy cost plus wear minus reserve revenue."""
        return self.energy_cost_eur + self.wear_cost_eur - self.reserve_revenue_eur

    def schedule(self, start_at: datetime) -> PowerSchedule:
        """The setpoints as a :class:`PowerSchedule` the device layer can send."""
        return PowerSchedule(
            ev_id=self.ev_id,
            start_at=start_at,
            p_kw=tuple(np.asarray(self.p_kw, dtype=np.float64).tolist()),
            charger_id=self.charger_id,
        )


@dataclass(frozen=True, slots=True)
class AreaStats:
    """How one grid area was solved."""

    area_id: str
    n_evs: int
    method: str  # "per-ev", "crash", "ipm", "empty", "simulated"
    status: str
    objective_eur: float
    wall_s: float
    ev_lps_solved: int


@dataclass(frozen=True, slots=True)
class ConfidenceCost:
    """What the bid confidence costs.

    ``expected_revenue_eur``: reserve revenue if the expected available capacity were bid;
    ``confident_revenue_eur``: if the capacity deliverable at ``confidence`` were bid (before the
    minimum bid and granularity); ``bid_revenue_eur``: what the bids as placed earn.
    """

    confidence: float
    expected_revenue_eur: float
    bid_revenue_eur: float
    confident_revenue_eur: float = 0.0

    @property
    def cost_eur(self) -> float:
        """Revenue given up to reach the confidence."""
        return self.expected_revenue_eur - self.confident_revenue_eur

    @property
    def rounding_cost_eur(self) -> float:
        """Revenue lost to the minimum bid and the bid granularity."""
        return self.confident_revenue_eur - self.bid_revenue_eur


@dataclass(frozen=True, slots=True)
class FleetPlan:
    """The planner's result for the whole fleet."""

    strategy: Strategy
    start_at: datetime
    n_intervals: int
    ev_plans: tuple[EvPlan, ...]
    bids: tuple[ReserveBid, ...]
    shortfalls: tuple[TargetShortfall, ...]
    area_stats: tuple[AreaStats, ...]
    lp_objective_eur: float  # the LP optimum (expected value, before the bid rules)
    confidence_cost: ConfidenceCost
    grid_limits_enforced: bool
    status: str
    wall_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    commitment_shortfalls: tuple[CommitmentShortfall, ...] = ()

    @property
    def energy_cost_eur(self) -> float:
        """Fleet energy cost."""
        return float(sum(p.energy_cost_eur for p in self.ev_plans))

    @property
    def reserve_revenue_eur(self) -> float:
        """Fleet reserve revenue from the bids."""
        return float(sum(p.reserve_revenue_eur for p in self.ev_plans))

    @property
    def wear_cost_eur(self) -> float:
        """Fleet battery-wear cost."""
        return float(sum(p.wear_cost_eur for p in self.ev_plans))

    @property
    def objective_eur(self) -> float:
        """Net fleet cost of the plan as bid (energy + wear - reserve revenue); negative is a net income."""
        return self.energy_cost_eur + self.wear_cost_eur - self.reserve_revenue_eur

    def hour_start(self, hour: int) -> datetime:
        """Start of horizon hour ``hour``."""
        return self.start_at + HOUR * hour

    def interval_start(self, interval: int) -> datetime:
        """Start of horizon quarter ``interval``."""
        return self.start_at + timedelta(minutes=15 * interval)
