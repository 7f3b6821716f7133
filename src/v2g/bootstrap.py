"""The one composition root: settings in, a :class:`Platform` with every adapter, service and job out.

Nothing else in the platform builds an engine, a store, a feed or a gateway. The runtime
(:mod:`v2g.runtime`) only starts what is built here; the digital twin builds the same platform with
simulated adapters swapped in at the ports (``clock``, ``fleet_state``, ``gateway``, ``readings``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from v2g.adapters.db.devices_repo import SqlCredentialStore, SqlDeviceStore
from v2g.adapters.db.engine import database_health, make_engine
from v2g.adapters.db.evidence_repo import SqlEvidenceStore
from v2g.adapters.db.fleet_repo import SqlFleetRepository, SqlGridAreas
from v2g.adapters.db.grid_repo import SqlDerReportQueue
from v2g.adapters.db.journey_repo import SqlJourneyRepository, sql_unit_of_work
from v2g.adapters.db.market_repo import SqlMarketStore, sql_market_tx
from v2g.adapters.db.migrate import ensure_schema_current
from v2g.adapters.db.operations_repo import SqlFleetState, SqlPlanStore
from v2g.adapters.db.preferences_repo import SqlEvAccess, SqlPreferencesAudit, SqlPreferencesStore
from v2g.adapters.db.settlement_repo import SqlSettlementSources, SqlSettlementStore, sql_settlement_tx
from v2g.adapters.db.vtn_reports_repo import SqlReportQueue
from v2g.adapters.feeds.frequency import LiveFrequency, RecordedFrequencyDay, UdpFrequencyInput
from v2g.adapters.feeds.replay import RecordedMarketData, ReplayedReserveSeries
from v2g.adapters.iec61850.server import DerAggregateServer, Iec61850Config
from v2g.adapters.ieee2030_5.client import Ieee2030Client, Ieee2030Config
from v2g.adapters.ieee2030_5.transport import TlsFiles
from v2g.adapters.notify import LogSender
from v2g.adapters.ocpp.credentials import Argon2Hasher
from v2g.adapters.ocpp.gateway import OcppChargerGateway
from v2g.adapters.ocpp.server import CsmsServer
from v2g.adapters.openadr.ven import OpenAdrVen, VenConfig
from v2g.adapters.openadr.ven3 import OpenAdr3Ven, Ven3Config
from v2g.adapters.pki import CaPolicy, PlatformCa, mtls_server_context
from v2g.blueprint import load_blueprint
from v2g.config import Settings
from v2g.devices.commands import Ack, FrequencyCurvePoint, Setpoint
from v2g.dispatch.pool import ReservePool
from v2g.dispatch.response import required_response_kw
from v2g.fleet.model import PriceArea
from v2g.fleet.schedule import PowerSchedule
from v2g.markets.bids import Bid
from v2g.markets.offer_price import offer_price_eur_per_mw_h
from v2g.markets.prices import PriceSeries
from v2g.markets.rules import MarketRules, Product, default_rules
from v2g.markets.simulator import ClearingResult, TsoMarketSimulator
from v2g.planning.model import FleetPlan, Strategy
from v2g.planning.planner import FleetPlanner, PlannerOptions
from v2g.planning.rules import load_rules
from v2g.services.actors.login_guard import LoginGuard, LoginLimits
from v2g.services.actors.outbox import deliver_pending
from v2g.services.clock import RuntimeClock, SystemClock
from v2g.services.devices.certificates import StationCertificates
from v2g.services.devices.handlers import device_handlers
from v2g.services.devices.ports import ChargerGateway
from v2g.services.dispatch.measured import MeasuredFleet, ReadingsReader
from v2g.services.dispatch.ports import DispatchedFleet, FrequencyFeed
from v2g.services.dispatch.service import FrequencyDispatch
from v2g.services.fleet.ports import GridAreaReader
from v2g.services.journey.automation import ServiceContext, ServiceRegistry
from v2g.services.journey.evidence import TaskEvidence
from v2g.services.journey.handlers import default_registry
from v2g.services.journey.service import JourneyService
from v2g.services.markets.handlers import market_handlers
from v2g.services.markets.ports import MarketTx, TsoMarket
from v2g.services.operations.commitments import MarketCommitments, MarketDelivery
from v2g.services.operations.market_calendar import MarketCalendar
from v2g.services.operations.scheduler import Job, Scheduler
from v2g.services.operations.status import DispatchSnapshot
from v2g.services.operations.view import OperationsView
from v2g.services.planning.cycle import CycleConfig, PlanningCycle, PriceProvider
from v2g.services.planning.der_reports import AreaFacts, area_facts
from v2g.services.planning.dso_interface import AreaAggregate, DsoLimitDesk, area_aggregates
from v2g.services.planning.grid_events import GridEventDesk
from v2g.services.planning.grid_signals import OptRules
from v2g.services.planning.offers import OfferComparison, current_offer, owned_evs
from v2g.services.planning.ports import FleetStateReader, PlanStore
from v2g.services.planning.preferences import PreferencesService
from v2g.services.planning.recording import RecordedInputs
from v2g.services.planning.sessions import PreferencesLookup, needs_session_builder
from v2g.services.planning.signal_book import GridSignalBook
from v2g.services.planning.value import ValueIndicator
from v2g.services.settlement.billing import SettlementBilling
from v2g.services.settlement.journey_tasks import settlement_handlers
from v2g.services.settlement.reports import SettlementReports
from v2g.services.settlement.service import SettlementConfig, SettlementService
from v2g.settlement.tariffs import load_tariffs
from v2g.units import QUARTER


def _journey_conn(ctx: ServiceContext, services: str) -> Connection:
    """The journey task's own connection, so a store on it shares the task's one transaction."""
    repo = ctx.repo
    if not isinstance(repo, SqlJourneyRepository):  # pragma: no cover - wiring error
        msg = f"{services} services need the SQL journey repository"
        raise TypeError(msg)
    return repo.conn


def _market_store(ctx: ServiceContext) -> SqlMarketStore:
    """Market storage on the journey's own connection (one transaction per task)."""
    return SqlMarketStore(_journey_conn(ctx, "market"))


def _credential_store(ctx: ServiceContext) -> SqlCredentialStore:
    """Charger credentials on the journey's own connection (one transaction per task)."""
    return SqlCredentialStore(_journey_conn(ctx, "device"))


def _settlement_store(ctx: ServiceContext) -> SqlSettlementStore:
    """The settlement ledger on the journey's own connection (one transaction per task)."""
    return SqlSettlementStore(_journey_conn(ctx, "settlement"))


def server_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS for the CSMS (security profile 2) when a certificate is configured."""
    if settings.ocpp_tls_cert is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(settings.ocpp_tls_cert, settings.ocpp_tls_key)
    return ctx


def platform_ca(settings: Settings) -> PlatformCa | None:
    """The platform CA of security profile 3 (created in ``ocpp_ca_dir`` on first use), or None.

    The CA and the certificate checks always use the system clock, whatever clock the platform
    runs on: TLS checks certificate validity against real time.
    """
    if settings.ocpp_ca_dir is None:
        return None
    policy = CaPolicy(settings.ocpp_ca_organisation, station_validity=timedelta(days=settings.ocpp_station_cert_days))
    return PlatformCa.load_or_create(settings.ocpp_ca_dir, policy, SystemClock())


def security_profile_3(settings: Settings, store: SqlDeviceStore) -> tuple[StationCertificates, ssl.SSLContext] | None:
    """The station certificates and the TLS context of the profile-3 listener, when a CA is configured.

    The listener's server certificate is ``ocpp_tls_cert`` when set, else one the platform CA issues
    for ``ocpp_server_names``.
    """
    ca = platform_ca(settings)
    if ca is None:
        return None
    certificates = StationCertificates(
        ca, store, clock=SystemClock(), renew_before=timedelta(days=settings.ocpp_cert_renew_days)
    )
    if settings.ocpp_tls_cert is not None:
        cert, key = settings.ocpp_tls_cert, settings.ocpp_tls_key
    else:
        names = [n.strip() for n in settings.ocpp_server_names.split(",") if n.strip()]
        cert, key = ca.ensure_server_files(names)
    return certificates, mtls_server_context(ca.ca_file, cert, key)


class GatewaySlot:
    """The charger gateway the services use; the runtime may put another one in (the NATS-routed pool)."""

    def __init__(self, target: ChargerGateway | None = None) -> None:
        self.target = target

    def _gateway(self) -> ChargerGateway:
        if self.target is None:
            msg = "no charger gateway: the CSMS has not been started"
            raise RuntimeError(msg)
        return self.target

    async def send_schedules(self, schedules: Sequence[PowerSchedule]) -> list[Ack]:
        return await self._gateway().send_schedules(schedules)

    async def send_setpoints(self, setpoints: Sequence[Setpoint]) -> Sequence[Ack]:
        return await self._gateway().send_setpoints(setpoints)

    async def configure_frequency_curve(
        self, charger_id: str, curve: Sequence[FrequencyCurvePoint], valid_until: datetime | None = None
    ) -> Ack:
        return await self._gateway().configure_frequency_curve(charger_id, curve, valid_until)

    async def deactivate(self, charger_id: str) -> Ack:
        return await self._gateway().deactivate(charger_id)


class ReplayedTsoMarket:
    """The TSO market simulator clearing against recorded FCR prices replayed onto the delivery dates."""

    def __init__(self, rules: MarketRules, prices: ReplayedReserveSeries) -> None:
        self.rules = rules
        self.prices = prices

    def clear(self, bids: Sequence[Bid], auction: str) -> ClearingResult:
        first = min((b.delivery_start_at for b in bids), default=None)
        series = self.prices.around(first) if first is not None else PriceSeries({}, "no bids")
        return TsoMarketSimulator(self.rules, series).clear(bids, auction)


@dataclass
class Platform:
    """Everything a running platform needs, built once at start-up by :func:`bootstrap`."""

    settings: Settings
    engine: Engine
    clock: RuntimeClock
    registry: ServiceRegistry
    journeys: JourneyService | None
    devices: SqlDeviceStore
    fleet_state: FleetStateReader
    plans: PlanStore
    signals: GridSignalBook
    prices: PriceProvider
    market_rules: MarketRules
    market_tx: MarketTx
    market: TsoMarket | None
    commitments: MarketCommitments
    gateway: GatewaySlot
    csms: CsmsServer | None
    cycle: PlanningCycle
    calendar: MarketCalendar | None
    dispatch: FrequencyDispatch | None
    frequency: FrequencyFeed | None
    scheduler: Scheduler
    preferences: PreferencesService | None = None
    grid_areas: GridAreaReader | None = None
    health: Callable[[], str] | None = None  # raises when the database does not answer; returns its kind
    operations: OperationsView | None = None
    ven: OpenAdrVen | OpenAdr3Ven | None = None  # by ``openadr_version``
    settlement: SettlementService | None = None  # metering capture, period runs and closes
    value: ValueIndicator | None = None  # the owner's quick value indication (planner over sampled nights)
    offers: OfferComparison | None = None  # the offers compared for an owner's EV, the contract's figures
    settlement_reports: SettlementReports | None = None  # statements, reconciliation, BSP statements, export
    settlement_billing: SettlementBilling | None = None  # payouts, invoices, payments; the settlement day
    iec61850: DerAggregateServer | None = None
    ieee2030_5: Ieee2030Client | None = None
    provenance: dict[str, str] = field(default_factory=dict)
    login_guard: LoginGuard = field(default_factory=LoginGuard)
    planning_inputs: RecordedInputs | None = None  # with ``record_planning_inputs``
    certificates: StationCertificates | None = None  # security profile 3 (``V2G_OCPP_CA_DIR``)
    task_evidence: TaskEvidence | None = None  # evidence files of tasks (with the journey service)

    def last_dispatch(self) -> DispatchSnapshot | None:
        """The last frequency sample the dispatcher answered (None when dispatch is off or idle so far)."""
        status = self.dispatch.status() if self.dispatch is not None else None
        if status is None:
            return None
        last = status.last_hour
        delivered_kw = last.delivered_mwh * 1000.0 * 3600.0 / last.seconds if last is not None and last.seconds else 0.0
        required = required_response_kw(
            {Product(p): kw for p, kw in status.committed_kw.items()}, status.f_hz, self.market_rules
        )
        return DispatchSnapshot(
            at=status.at,
            f_hz=status.f_hz,
            required_kw={p.value: round(kw, 3) for p, kw in required.items()},
            delivered_kw=round(delivered_kw, 3),
            evs=status.evs,
            lost=len(last.lost_evs) if last is not None else 0,
        )

    def jobs_state(self) -> list[dict[str, Any]]:
        """The scheduled jobs: period, runs, failures, last status."""
        return [
            {
                "name": j.name,
                "every_s": j.every.total_seconds(),
                "runs": j.runs,
                "failures": j.failures,
                "last_due_at": j.last_due_at,
                "last_status": j.last_status,
                "last_error": j.last_error,
            }
            for j in self.scheduler.jobs
        ]

    def latest_plan(self) -> FleetPlan | None:
        """The plan in force (the last one the planning cycle made and sent)."""
        return self.cycle.latest_plan()


def bootstrap(
    settings: Settings | None = None,
    *,
    check_schema: bool = True,
    engine: Engine | None = None,
    journeys: JourneyService | None = None,
    clock: RuntimeClock | None = None,
    fleet_state: FleetStateReader | None = None,
    gateway: ChargerGateway | None = None,
    readings: ReadingsReader | None = None,
    dispatched: Callable[[ReservePool], DispatchedFleet] | None = None,
    online_chargers: Callable[[], set[str]] | None = None,
    frequency: FrequencyFeed | None = None,
    preferences: PreferencesLookup | None = None,
    record_planning_inputs: bool = False,
) -> Platform:
    """Build the platform; refuse an unmigrated or newer schema unless ``check_schema`` is off.

    The keyword arguments swap adapters at the ports (the twin and the tests): an engine already open,
    a journey service with its own registry, a simulated clock,
    a simulated fleet and its gateway, its readings, its dispatched view or its online chargers, a
    frequency feed, fixed preferences. Without
    ``gateway`` the platform has its own CSMS (started by the runtime). With ``record_planning_inputs``
    every answer the planning cycle gets from the fleet state and the owners' preferences is kept in
    ``platform.planning_inputs`` (to re-run the day on the twin with :class:`ReplayedInputs`).
    """
    settings = settings or Settings()
    engine = engine or make_engine(settings.database_url)
    if check_schema:
        ensure_schema_current(engine)
    clock = clock or SystemClock()
    registry = default_registry()
    for name, handler in market_handlers(_market_store, bsp_org_id=settings.bsp_org_id).items():
        registry.register(name, handler, replace=True)
    for name, handler in device_handlers(_credential_store, Argon2Hasher()).items():
        registry.register(name, handler, replace=True)
    tariffs = load_tariffs(settings.settlement_tariffs_file)
    settlement_config = SettlementConfig(settings.settlement_dso_tariffs, settings.settlement_default_dso_tariff)
    for name, handler in settlement_handlers(_settlement_store, tariffs, settlement_config).items():
        registry.register(name, handler, replace=True)
    if journeys is None and settings.blueprint_path.is_file():
        journeys = JourneyService(sql_unit_of_work(engine), clock, load_blueprint(settings.blueprint_path), registry)

    devices = SqlDeviceStore(engine, clock=clock)
    profile3 = security_profile_3(settings, devices)
    certificates, mtls_context = profile3 if profile3 is not None else (None, None)

    market_tx: MarketTx = sql_market_tx(engine)
    market_rules = default_rules()
    data = RecordedMarketData(settings.prices_file, settings.reserve_prices_file)
    market: TsoMarket | None = None
    if settings.tso_market == "simulator":
        market = ReplayedTsoMarket(market_rules, ReplayedReserveSeries(data))
    commitments = MarketCommitments(market_tx, settings.bsp_org_id)

    csms: CsmsServer | None = None
    slot = GatewaySlot(gateway)
    if gateway is None:
        csms = CsmsServer(
            devices,
            ssl_context=server_ssl_context(settings),
            mtls_context=mtls_context,
            certificates=certificates,
            clock=clock,
        )
        slot.target = OcppChargerGateway(csms)

    fleet = fleet_state or SqlFleetState(engine)
    signals = GridSignalBook()
    plans = SqlPlanStore(engine)
    owner_settings = PreferencesService(
        SqlPreferencesStore(engine), SqlEvAccess(engine), clock, SqlPreferencesAudit(engine)
    )
    lookup: PreferencesLookup = preferences or (lambda ev_id: owner_settings.for_planning([ev_id]).get(ev_id))
    recorded = RecordedInputs(fleet, lookup, clock.now) if record_planning_inputs else None
    cycle = PlanningCycle(
        fleet=recorded or fleet,
        prices=data,
        signals=signals,
        plans=plans,
        gateway=slot,
        clock=clock,
        rules=load_rules(),
        build_session=needs_session_builder(recorded.preferences if recorded is not None else lookup),
        commitments=commitments,
        planner=FleetPlanner(PlannerOptions(workers=1)),
        config=CycleConfig(strategy=Strategy(settings.planning_strategy)),
    )
    owner_settings.on_change.append(lambda ev_id: cycle.mark_changed(ev_id, "owner preferences"))
    if csms is not None:
        csms.on_profile_rejected.append(lambda cid, _kind, detail: cycle.mark_changed(cid, "rejected profile"))

    calendar = None
    if market is not None:
        calendar = MarketCalendar(
            rules=market_rules,
            market_tx=market_tx,
            market=market,
            latest_plan=cycle.latest_plan,
            bsp_org_id=settings.bsp_org_id,
            clock=clock,
            lead=timedelta(minutes=settings.market_lead_min),
            offer_price=lambda product, hour: offer_price_eur_per_mw_h(
                market_rules.offer_cost, product, sum(data.day_ahead_eur_per_mwh(PriceArea.SE3, hour, 4)) / 4
            ),
        )
        calendar.on_commitments.append(cycle.commitments_changed)

    feed = frequency or _frequency_feed(settings)
    dispatch = None
    if feed is not None:
        read = readings or devices.latest_readings

        def fleet_for(pool: ReservePool) -> DispatchedFleet:
            if dispatched is not None:
                return dispatched(pool)
            last = cycle.last
            sessions = {s.ev_id: s for s in last.problem.evs} if last is not None and last.problem else {}
            return MeasuredFleet(pool, sessions, read, clock)

        dispatch = FrequencyDispatch(
            feed=feed,
            gateway=slot,
            rules=market_rules,
            clock=clock,
            latest_plan=cycle.latest_plan,
            commitments=commitments.commitments,
            limits_kw=lambda: _limits_kw(cycle),
            online=online_chargers or (lambda: {ev.charger_id for ev in fleet.plugged_in() if ev.online}),
            fleet_for=fleet_for,
            group_id=f"{settings.bsp_org_id}-fleet",
            deadband_kw=settings.dispatch_deadband_kw,
            delivery=MarketDelivery(market_tx),
            checkpoint_s=settings.dispatch_checkpoint_s,
        )

    scheduler = Scheduler(clock)
    scheduler.add(Job("planning", timedelta(minutes=settings.planning_interval_min), cycle.run))
    scheduler.add(Job("re-plan", timedelta(seconds=settings.replan_check_s), cycle.check_changes))
    if calendar is not None:
        scheduler.add(Job("market calendar", timedelta(minutes=5), calendar.run, offset=timedelta(minutes=2)))
    platform = Platform(
        settings=settings,
        engine=engine,
        clock=clock,
        registry=registry,
        journeys=journeys,
        devices=devices,
        fleet_state=fleet,
        plans=plans,
        signals=signals,
        prices=data,
        market_rules=market_rules,
        market_tx=market_tx,
        market=market,
        commitments=commitments,
        gateway=slot,
        csms=csms,
        cycle=cycle,
        calendar=calendar,
        dispatch=dispatch,
        frequency=feed,
        scheduler=scheduler,
        preferences=owner_settings,
        provenance=data.describe(clock.now()),
        login_guard=login_guard(settings),
        planning_inputs=recorded,
        certificates=certificates,
    )
    platform.grid_areas = SqlGridAreas(engine)
    if journeys is not None:
        platform.task_evidence = TaskEvidence(journeys, SqlEvidenceStore(engine), max_bytes=settings.evidence_max_bytes)
    platform.health = partial(database_health, engine)
    platform.operations = OperationsView(
        plans=plans,
        fleet=fleet,
        market_tx=market_tx,
        chargers=devices,
        last_dispatch=platform.last_dispatch,
        jobs=platform.jobs_state,
        clock=clock,
    )
    settlement_sources = SqlSettlementSources(engine, power_hold=timedelta(seconds=tariffs.metering.max_power_hold_s))
    platform.settlement = SettlementService(
        sources=settlement_sources,
        prices=data,
        tx=sql_settlement_tx(engine),
        tariffs=tariffs,
        clock=clock,
        config=settlement_config,
    )
    platform.settlement_reports = SettlementReports(platform.settlement, settlement_sources)
    platform.value = ValueIndicator(
        data, cycle.rules, owner_settings, clock, tariffs, price_sources=data.describe, planner=FleetPlanner()
    )
    if journeys is not None:
        platform.offers = OfferComparison(platform.value, owned_evs(journeys), current_offer(journeys))
    platform.settlement_billing = SettlementBilling(
        platform.settlement,
        settlement_sources,
        close_day=settings.settlement_close_day,
        on_day_done=journeys.settlement_day_done if journeys is not None else None,
    )
    if settings.settlement_job:
        _add_settlement_job(platform, platform.settlement_billing)
    _add_housekeeping(platform)
    if settings.openadr_vtn_url and settings.openadr_version == "3.0":
        platform.ven = _openadr3_ven(settings, engine, fleet, signals, cycle, clock)
    elif settings.openadr_vtn_url:
        platform.ven = _openadr_ven(settings, engine, fleet, signals, cycle)
    if settings.iec61850_enabled:
        platform.iec61850 = _iec61850_server(settings, engine, fleet, signals, cycle, clock)
    if settings.ieee2030_5_server_url:
        platform.ieee2030_5 = _ieee2030_5_client(settings, engine, fleet, devices, signals, cycle, clock)
    return platform


def _ieee2030_5_client(
    settings: Settings,
    engine: Engine,
    fleet: FleetStateReader,
    devices: SqlDeviceStore,
    signals: GridSignalBook,
    cycle: PlanningCycle,
    clock: RuntimeClock,
) -> Ieee2030Client:
    """The IEEE 2030.5 client: one EndDevice per area; the server's DER controls go to the signal book."""
    assert settings.ieee2030_5_server_url is not None
    if settings.ieee2030_5_cert_file is None or settings.ieee2030_5_key_file is None:
        msg = "ieee2030_5_cert_file, ieee2030_5_key_file: both are needed with ieee2030_5_server_url"
        raise ValueError(msg)
    areas = [a.strip() for a in settings.ieee2030_5_areas.split(",") if a.strip()]
    if not areas:
        with engine.connect() as conn:
            areas = [a.id for a in SqlFleetRepository(conn).grid_areas()]
        if not areas:
            msg = "ieee2030_5_areas: not set and no grid area on record"
            raise ValueError(msg)
    limits = {a.area_id: a for a in fleet.area_limits(areas)}
    unknown = [a for a in areas if a not in limits]
    if unknown:
        msg = f"ieee2030_5_areas: {', '.join(unknown)} not on record"
        raise ValueError(msg)
    audit = SqlPreferencesAudit(engine)
    desk = DsoLimitDesk(
        sink=signals,
        static_import_limit_kw={a: x.import_limit_kw for a, x in limits.items()},
        static_export_limit_kw={a: x.export_limit_kw for a, x in limits.items()},
        now=clock.now,
        audit=audit,
        source="ieee2030_5",
    )

    def facts() -> dict[str, AreaFacts]:
        evs = fleet.plugged_in()
        readings = devices.latest_readings([ev.charger_id for ev in evs])
        measured = {cid: r.p_kw for cid, r in readings.items() if r.online}
        return area_facts(areas, evs, measured, cycle.latest_plan(), clock.now())

    config = Ieee2030Config(
        server_url=settings.ieee2030_5_server_url,
        tls=TlsFiles(settings.ieee2030_5_cert_file, settings.ieee2030_5_key_file, settings.ieee2030_5_ca_file),
        areas=tuple(areas),
        poll_interval=timedelta(seconds=settings.ieee2030_5_poll_s),
        report_interval=timedelta(seconds=settings.ieee2030_5_report_s),
        backoff_max=timedelta(seconds=settings.ieee2030_5_backoff_max_s),
    )
    return Ieee2030Client(config, desk, SqlDerReportQueue(engine), facts, clock.now, audit)


def _iec61850_server(
    settings: Settings,
    engine: Engine,
    fleet: FleetStateReader,
    signals: GridSignalBook,
    cycle: PlanningCycle,
    clock: RuntimeClock,
) -> DerAggregateServer:
    """The IEC 61850 server: the fleet per grid area as DER logical nodes; DSO limits go to the signal book."""
    areas = [a.strip() for a in settings.iec61850_areas.split(",") if a.strip()]
    if not areas:
        with engine.connect() as conn:
            areas = [a.id for a in SqlFleetRepository(conn).grid_areas()]
        if not areas:
            msg = "iec61850_areas: not set and no grid area on record"
            raise ValueError(msg)
    static = {a.area_id: a.import_limit_kw for a in fleet.area_limits(areas)}
    unknown = [a for a in areas if a not in static]
    if unknown:
        msg = f"iec61850_areas: {', '.join(unknown)} not on record"
        raise ValueError(msg)
    desk = DsoLimitDesk(
        sink=signals,
        static_import_limit_kw=static,
        now=clock.now,
        audit=SqlPreferencesAudit(engine),
        duration=timedelta(minutes=settings.iec61850_limit_duration_min),
        source="iec61850",
    )

    def aggregates() -> dict[str, AreaAggregate]:
        return area_aggregates(static, fleet.plugged_in(), cycle.latest_plan(), signals, clock.now())

    config = Iec61850Config(
        host=settings.iec61850_host,
        port=settings.iec61850_port,
        ied_name=settings.iec61850_ied_name,
        areas=tuple(areas),
        update_interval=timedelta(seconds=settings.iec61850_update_s),
        max_connections=settings.iec61850_max_connections,
    )
    return DerAggregateServer(config, desk, aggregates)


def _openadr_ven(
    settings: Settings, engine: Engine, fleet: FleetStateReader, signals: GridSignalBook, cycle: PlanningCycle
) -> OpenAdrVen:
    """The OpenADR 2.0b VEN: the VTN's price and limit events become planner inputs via the signal book."""
    assert settings.openadr_vtn_url is not None
    area_id = settings.openadr_grid_area_id
    if not area_id:
        with engine.connect() as conn:
            areas = SqlFleetRepository(conn).grid_areas()
        if not areas:
            msg = "openadr_grid_area_id: not set and no grid area on record"
            raise ValueError(msg)
        area_id = areas[0].id
    limits = {a.area_id: a.import_limit_kw for a in fleet.area_limits([area_id])}
    rules = OptRules(
        area_import_limit_kw=limits,
        min_limit_kw=settings.openadr_min_limit_kw,
        min_notice=timedelta(minutes=settings.openadr_min_notice_min),
    )

    def fleet_power_kw() -> float:
        last = cycle.last
        if last is None or last.plan is None:
            return 0.0
        k = int((cycle.clock.now() - last.plan.start_at) / QUARTER)
        if not 0 <= k < last.plan.n_intervals:
            return 0.0
        return float(sum(float(p.p_kw[k]) for p in last.plan.ev_plans))

    config = VenConfig(settings.openadr_ven_name, settings.openadr_vtn_url, area_id)
    return OpenAdrVen(config, rules, signals, fleet_power_kw)


def _openadr3_ven(
    settings: Settings,
    engine: Engine,
    fleet: FleetStateReader,
    signals: GridSignalBook,
    cycle: PlanningCycle,
    clock: RuntimeClock,
) -> OpenAdr3Ven:
    """The OpenADR 3 VEN: price and capacity-limit events go to the signal book (checked, audited); the
    fleet's power and availability per area are reported through the stored report queue."""
    assert settings.openadr_vtn_url is not None
    areas = [a.strip() for a in settings.openadr3_areas.split(",") if a.strip()]
    if not areas:
        with engine.connect() as conn:
            areas = [a.id for a in SqlFleetRepository(conn).grid_areas()]
        if not areas:
            msg = "openadr3_areas: not set and no grid area on record"
            raise ValueError(msg)
    static = {a.area_id: (a.import_limit_kw, a.export_limit_kw) for a in fleet.area_limits(areas)}
    unknown = [a for a in areas if a not in static]
    if unknown:
        msg = f"openadr3_areas: {', '.join(unknown)} not on record"
        raise ValueError(msg)
    default = settings.openadr_grid_area_id.strip()
    if default and default not in static:
        msg = f"openadr_grid_area_id: {default} is not among the served areas ({', '.join(areas)})"
        raise ValueError(msg)
    desk = GridEventDesk(signals, static, clock.now, SqlPreferencesAudit(engine))
    imports = {area: kw for area, (kw, _) in static.items()}

    def aggregates() -> dict[str, AreaAggregate]:
        return area_aggregates(imports, fleet.plugged_in(), cycle.latest_plan(), signals, clock.now())

    config = Ven3Config(
        ven_name=settings.openadr_ven_name,
        vtn_url=settings.openadr_vtn_url,
        served_areas=tuple(areas),
        default_areas=(default,) if default else tuple(areas),
        programs=tuple(p.strip() for p in settings.openadr3_programs.split(",") if p.strip()),
        client_id=settings.openadr3_client_id,
        client_secret=settings.openadr3_client_secret.get_secret_value(),
        token_url=settings.openadr3_token_url,
        poll_interval=timedelta(seconds=settings.openadr3_poll_s),
        report_interval=timedelta(seconds=settings.openadr3_report_s),
        backoff_max=timedelta(seconds=settings.openadr3_backoff_max_s),
        callback_url=settings.openadr3_callback_url,
        callback_host=settings.openadr3_callback_host,
        callback_port=settings.openadr3_callback_port,
    )
    return OpenAdr3Ven(config, desk, SqlReportQueue(engine), aggregates, clock.now)


def _limits_kw(cycle: PlanningCycle) -> Mapping[str, tuple[float, float]]:
    last = cycle.last
    if last is None or last.problem is None:
        return {}
    return {s.ev_id: (s.max_discharge_kw, s.max_charge_kw) for s in last.problem.evs}


def login_guard(settings: Settings) -> LoginGuard:
    """The sign-in throttle and password check bound, from the ``login_*`` settings."""
    return LoginGuard(
        LoginLimits(
            max_failures_per_account=settings.login_max_failures_per_account,
            max_failures_per_address=settings.login_max_failures_per_address,
            failure_window_s=settings.login_failure_window_s,
            backoff_base_s=settings.login_backoff_base_s,
            backoff_max_s=settings.login_backoff_max_s,
            max_keys=settings.login_throttle_max_keys,
            max_concurrent=settings.login_max_concurrent_verifications,
            verification_wait_s=settings.login_verification_wait_s,
        )
    )


def _frequency_feed(settings: Settings) -> FrequencyFeed | None:
    source = settings.frequency_source.strip()
    if not source:
        return None
    if source == "recorded":
        return RecordedFrequencyDay()
    if source.startswith("udp://"):
        host, _, port = source.removeprefix("udp://").rpartition(":")
        return LiveFrequency(UdpFrequencyInput(host or "127.0.0.1", int(port)))
    return RecordedFrequencyDay(Path(source))


def _add_housekeeping(platform: Platform) -> None:
    """Outbox delivery, the SLA sweep and telemetry retention as jobs."""
    settings, clock, scheduler = platform.settings, platform.clock, platform.scheduler
    journeys = platform.journeys
    sender = LogSender()

    async def outbox(_due: datetime) -> str | None:
        sent, failed = await asyncio.to_thread(deliver_pending, sql_unit_of_work(platform.engine), sender, clock)
        return f"{sent} messages sent, {failed} failed" if sent or failed else None

    async def sla(_due: datetime) -> str | None:
        if journeys is None:
            return None
        breaches = await asyncio.to_thread(journeys.sla_sweep)
        return f"{len(breaches)} SLA breaches flagged" if breaches else None

    async def retention(_due: datetime) -> str | None:
        before = clock.now() - timedelta(days=settings.telemetry_retention_days)
        removed = await asyncio.to_thread(platform.devices.purge_telemetry, before)
        return f"{removed} telemetry rows older than {settings.telemetry_retention_days:g} days removed"

    scheduler.add(Job("outbox", timedelta(seconds=settings.outbox_interval_s), outbox))
    scheduler.add(
        Job("SLA sweep", timedelta(minutes=settings.sla_sweep_interval_min), sla, offset=timedelta(minutes=1))
    )
    scheduler.add(Job("telemetry retention", timedelta(days=1), retention, offset=timedelta(hours=3, minutes=30)))


def _add_settlement_job(platform: Platform, billing: SettlementBilling) -> None:
    """The settlement day as a daily job at 02:15 UTC, before telemetry retention (03:30) removes
    what it has not captured: capture this month, run last month, close and bill from the close day."""

    async def settlement(_due: datetime) -> str | None:
        report = await asyncio.to_thread(billing.settlement_day)
        return report.summary()

    platform.scheduler.add(Job("settlement", timedelta(days=1), settlement, offset=timedelta(hours=2, minutes=15)))
