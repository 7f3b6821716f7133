"""The device supervisor: what the platform does with a charger while it is connected.

Protocol servers (the OCPP CSMS) only translate frames; on each event they call the supervisor,
which works through ports: a :class:`~v2g.services.devices.ports.DeviceStore` for what it reads and
writes, the live :class:`~v2g.services.devices.ports.ChargerLink` of each charger for the commands
a session can execute, and a :class:`~v2g.services.clock.Clock` for every read of the time.

* After a (re)connect: read discharge support, install the fail-safe default, re-send the current
  plan, and on first boot send the connectivity test profile (the installation journey waits for it).
* Fail-safe sizing: the default is charge-only and sized to meet the departure target without the
  platform (recomputed when the EV reports its needs, and from the stored needs after a reconnect).
* Plan refresh: a plan is installed with a limited validity and re-installed before it lapses.
* Liveness: chargers silent for too long are disconnected and marked offline; chargers marked
  inactive (termination) are cleared, made unavailable and disconnected.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from v2g.devices import (
    DEFAULT_PROFILE_ID,
    PLAN_PROFILE_ID,
    PLAN_STACK,
    TEST_PROFILE_ID,
    TEST_STACK,
    ChargerNotice,
    ChargingLimit,
    ChargingNeeds,
    CommandResult,
    ProfilePlan,
    TokenStatus,
    authorize_token,
    failsafe_default_p_kw,
    plan_from_schedule,
    test_profile_plan,
)
from v2g.fleet.schedule import PowerSchedule
from v2g.services.clock import Clock, SystemClock
from v2g.services.devices.ports import ChargerLink, DeviceStore, LiveLinks

log = logging.getLogger("v2g.devices")

Spawn = Callable[[Coroutine[Any, Any, Any]], None]


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """Timers and choices of the supervisor."""

    heartbeat_interval_s: int = 300
    offline_after_missed_heartbeats: float = 2.5
    profile_validity: timedelta = timedelta(minutes=30)
    send_test_profile_on_first_boot: bool = True

    @property
    def silence(self) -> timedelta:
        """How long a charger may stay silent before it counts as offline."""
        return timedelta(seconds=self.heartbeat_interval_s * self.offline_after_missed_heartbeats)


class DeviceSupervisor:
    """Keeps connected chargers in the state the platform wants (see the module docstring)."""

    def __init__(
        self,
        store: DeviceStore,
        links: LiveLinks,
        config: SupervisorConfig | None = None,
        *,
        clock: Clock | None = None,
        spawn: Spawn | None = None,
        stats: defaultdict[str, int] | None = None,
        interrupted: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.store = store
        self.links = links
        self.config = config or SupervisorConfig()
        self.clock: Clock = clock or SystemClock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.spawn: Spawn = spawn or self._spawn
        self.stats: defaultdict[str, int] = stats if stats is not None else defaultdict(int)
        # exceptions of the transport that mean "the connection went away" during a command
        self._interrupted: tuple[type[BaseException], ...] = (TimeoutError, *interrupted)
        self.schedules: dict[str, PowerSchedule] = {}
        self.plan_valid_to: dict[str, datetime] = {}
        self._last_seen: dict[str, datetime] = {}
        # (charger_id, purpose, detail) of every rejected profile
        self.on_profile_rejected: list[Callable[[str, str, str], Any]] = []
        # (charger_id, kind, detail) with kind "boot" or "test_profile_accepted": the journey's
        # ``verify_connectivity`` waits for both; callbacks run in a worker thread
        self.on_device_event: list[Callable[[str, str, str], Any]] = []
        # (charger_id, limit_kw or None): a limit the charger applies on its own changed; it is also
        # stored on the charger's state, where the planning side reads it
        self.on_charging_limit: list[Callable[[str, float | None], Any]] = []

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a follow-up in the background (keeps a reference until it is done)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ connection events
    def touch(self, charger_id: str) -> None:
        """The charger was heard from (any frame)."""
        self._last_seen[charger_id] = self.clock.now()

    async def connected(self, charger_id: str, protocol: str) -> None:
        """A connection was accepted."""
        self.touch(charger_id)
        await asyncio.to_thread(self.store.mark_connected, charger_id, protocol, self.clock.now())

    async def disconnected(self, charger_id: str) -> None:
        """The charger's live connection ended."""
        await asyncio.to_thread(self.store.mark_disconnected, charger_id, self.clock.now())

    async def booted(self, link: ChargerLink, firmware_version: str | None) -> None:
        """After an accepted BootNotification."""
        link.booted = True
        await asyncio.to_thread(self.store.mark_booted, link.id, self.clock.now(), firmware_version)
        await self.device_event(link.id, "boot", f"firmware {firmware_version or 'unknown'}")
        await self.resync(link)

    async def resync(self, link: ChargerLink) -> None:
        """Bring a (re)connected charger up to date: discharge support, fail-safe default, current plan."""
        try:
            link.discharge_supported = await link.read_discharge_support()
            charger = await asyncio.to_thread(self.store.charger, link.id)
            link.discharge_supported = link.discharge_supported and charger.bidirectional
            await asyncio.to_thread(self.store.set_discharge_supported, link.id, link.discharge_supported)
            stored = await asyncio.to_thread(self.store.stored_needs, link.id)
            latest = max(stored, key=lambda n: n.received_at, default=None)
            await self.install_default(link, latest)  # sized from what the EV asked for before the reconnect
            await self.refresh_plan(link, "plan_resync")
            connectivity = await asyncio.to_thread(self.store.connectivity, link.id)
            if self.config.send_test_profile_on_first_boot and connectivity.test_profile_accepted_at is None:
                await self.send_test_profile(link)
        except self._interrupted as exc:
            log.warning("charger[%s]: re-sync interrupted: %s", link.id, exc)

    async def needs_received(self, link: ChargerLink, needs: ChargingNeeds) -> None:
        """The EV reported its needs: store them and re-size the fail-safe default."""
        await asyncio.to_thread(self.store.save_needs, needs)
        self.spawn(self.install_default(link, needs))

    async def authorize(self, charger_id: str, id_token: str) -> TokenStatus:
        """May this idToken charge at this charger (the platform's token records decide)?"""
        records = await asyncio.to_thread(self.store.id_token_records, id_token)
        customer_id = await asyncio.to_thread(self.store.customer_of, charger_id)
        status = authorize_token(records, charger_id=charger_id, customer_id=customer_id)
        self.stats[f"id_token_{status.value}"] += 1
        log.debug("charger[%s]: idToken %r -> %s", charger_id, id_token, status.value)
        if status is not TokenStatus.ACCEPTED:
            log.info("charger[%s]: idToken refused (%s)", charger_id, status.value)
        return status

    async def notice(self, notice: ChargerNotice) -> None:
        """Keep what a charger reported; security events are logged as warnings (without payload)."""
        await asyncio.to_thread(self.store.record_notice, notice, self.clock.now())
        self.stats[f"notice_{notice.kind}"] += 1
        level = logging.WARNING if notice.kind == "SecurityEventNotification" else logging.INFO
        log.log(level, "charger[%s]: %s: %s", notice.charger_id, notice.kind, notice.summary)

    async def charging_limit(self, limit: ChargingLimit) -> None:
        """The charger applies (or lifted) a limit of its own: store it where the planner reads it."""
        now = self.clock.now()
        limit_kw = limit.limit_kw_at(now)
        source = None if limit.cleared else limit.source
        await asyncio.to_thread(self.store.set_charging_limit, limit.charger_id, limit_kw, source, now)
        what = "cleared" if limit.cleared else ("unknown value" if limit_kw is None else f"{limit_kw:.1f} kW")
        kind = "ClearedChargingLimit" if limit.cleared else "NotifyChargingLimit"
        await self.notice(ChargerNotice(limit.charger_id, kind, now, f"{limit.source} limit {what}", {}))
        for callback in self.on_charging_limit:
            try:
                await asyncio.to_thread(callback, limit.charger_id, limit_kw)
            except Exception:
                log.exception("charger[%s]: charging limit not delivered", limit.charger_id)

    # ------------------------------------------------------------------ profiles
    def set_schedule(self, charger_id: str, schedule: PowerSchedule) -> None:
        """The charger's current plan: re-sent on reconnect and refreshed while valid."""
        self.schedules[charger_id] = schedule

    def forget(self, charger_id: str) -> None:
        """Drop the charger's plan (termination)."""
        self.schedules.pop(charger_id, None)
        self.plan_valid_to.pop(charger_id, None)

    async def refresh_plan(self, link: ChargerLink, purpose: str) -> None:
        """Re-install the current plan with a fresh validity window (reconnect, or before it lapses)."""
        schedule = self.schedules.get(link.id)
        now = self.clock.now()
        if schedule is None or schedule.end_at <= now:
            return
        charger = await asyncio.to_thread(self.store.charger, link.id)
        plan = plan_from_schedule(
            schedule,
            link.plan_kind(),
            now=now,
            validity=self.config.profile_validity,
            max_charge_kw=charger.max_charge_kw,
            max_discharge_kw=charger.max_discharge_kw,
        )
        await self.install_plan(link, plan, purpose)

    async def install_plan(self, link: ChargerLink, plan: ProfilePlan, purpose: str) -> CommandResult:
        """Send a plan as the charger's plan profile and record the answer."""
        result = await link.install_plan(plan, profile_id=PLAN_PROFILE_ID, stack_level=PLAN_STACK)
        if result.status == "accepted":
            self.plan_valid_to[link.id] = plan.valid_to
        await self._record(link.id, PLAN_PROFILE_ID, purpose, plan.valid_to, result.status, result.detail)
        return result

    async def install_default(self, link: ChargerLink, needs: ChargingNeeds | None = None) -> None:
        """The fail-safe: charge-only, enough to meet the departure target without the platform."""
        charger = await asyncio.to_thread(self.store.charger, link.id)
        p_kw = failsafe_default_p_kw(
            now=self.clock.now(),
            max_charge_kw=charger.max_charge_kw,
            max_discharge_kw=charger.max_discharge_kw,
            profile_validity=self.config.profile_validity,
            departure_at=needs.departure_at if needs is not None else None,
            energy_request_kwh=needs.energy_request_kwh if needs is not None else None,
        )
        result = await link.install_default(p_kw)
        await self._record(link.id, DEFAULT_PROFILE_ID, "fail_safe_default", None, result.status, result.detail)

    async def send_test_profile(self, link: ChargerLink) -> str:
        """A short, harmless profile that proves the command path (installation connectivity check)."""
        now = self.clock.now()
        plan = test_profile_plan(link.id, now)
        result = await link.install_plan(plan, profile_id=TEST_PROFILE_ID, stack_level=TEST_STACK)
        if result.status == "accepted":  # proven; remove it so it never overrides the plan
            await link.clear_profiles(TEST_PROFILE_ID)
        await asyncio.to_thread(
            self.store.record_profile,
            link.id,
            profile_id=TEST_PROFILE_ID,
            purpose="connectivity_test",
            sent_at=now,
            valid_to=plan.valid_to,
            status=result.status,
            detail=result.detail,
            test_profile=True,
        )
        if result.status == "accepted":
            await self.device_event(link.id, "test_profile_accepted", f"profile {TEST_PROFILE_ID}")
        return result.status

    async def device_event(self, charger_id: str, kind: str, detail: str) -> None:
        """Tell the installation journey (and anyone else listening) what a charger just proved."""
        for callback in self.on_device_event:
            try:
                await asyncio.to_thread(callback, charger_id, kind, detail)
            except Exception:
                log.exception("charger[%s]: device event %s not delivered", charger_id, kind)

    async def _record(
        self, charger_id: str, profile_id: int, purpose: str, valid_to: datetime | None, status: str, detail: str
    ) -> None:
        await asyncio.to_thread(
            self.store.record_profile,
            charger_id,
            profile_id=profile_id,
            purpose=purpose,
            sent_at=self.clock.now(),
            valid_to=valid_to,
            status=status,
            detail=detail,
        )
        if status == "rejected":
            self.stats["profiles_rejected"] += 1
            for callback in self.on_profile_rejected:
                callback(charger_id, purpose, detail)

    # ------------------------------------------------------------------ termination and liveness
    async def enforce_deactivation(self) -> list[str]:
        """Remote deactivation of live chargers that were marked inactive (e.g. by the termination journey).

        Clears their profiles, makes them unavailable and closes the connection; the handshake then
        refuses them. Returns the charger ids handled.
        """
        live = list(self.links)
        if not live:
            return []
        inactive = await asyncio.to_thread(self.store.inactive_among, live)
        for charger_id in inactive:
            link = self.links.get(charger_id)
            if link is None:
                continue
            self.forget(charger_id)
            cleared = await link.clear_profiles()
            unavailable = await link.set_available(False)
            await link.disconnect("charger deactivated")
            self.stats["remote_deactivations"] += 1
            await self._record(charger_id, 0, "deactivation", None, unavailable.status, f"clear={cleared.status}")
        return inactive

    async def liveness_tick(self) -> None:
        """One pass of the liveness job: persist last-seen, enforce deactivation, drop silent chargers,
        mark them offline and refresh plans that would lapse within half a validity window."""
        await asyncio.to_thread(self.flush_last_seen)
        await self.enforce_deactivation()
        silence = self.config.silence
        now = self.clock.now()
        for charger_id, seen in list(self._last_seen.items()):
            link = self.links.get(charger_id)
            if link is not None and now - seen > silence:
                self.stats["offline_detected"] += 1
                log.warning("charger[%s]: silent since %s, closing", charger_id, seen.isoformat())
                await link.disconnect("heartbeat missed", 1001)
        await asyncio.to_thread(self.store.mark_offline_if_silent, now - silence, now)
        for charger_id, valid_to in list(self.plan_valid_to.items()):
            live = self.links.get(charger_id)
            if live is not None and valid_to - now < self.config.profile_validity / 2:
                self.spawn(self.refresh_plan(live, "plan_refresh"))

    def flush_last_seen(self) -> None:
        """Write the last-seen times to the store (runs in a worker thread)."""
        seen, self._last_seen = self._last_seen, {}
        self.store.touch_many(seen)
        for charger_id, at in seen.items():
            self._last_seen.setdefault(charger_id, at)
