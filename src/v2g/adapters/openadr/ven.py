"""OpenADR 2.0b VEN (``openleadr``): registers with a utility/DSO VTN, takes events, reports power.

Events are translated into :mod:`v2g.services.planning.grid_signals` intervals; :class:`OptRules` decides
opt-in or opt-out; accepted prices and grid limits go to the :class:`GridSignalSink` (the planner's
inputs). The VEN offers a ``TELEMETRY_USAGE`` RealPower report fed by a callback (the fleet's power
in the grid area, W; import positive).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from openleadr import OpenADRClient

from v2g.services.planning.grid_signals import Decision, GridSignalSink, OptRules, SignalInterval
from v2g.units import ensure_utc, utc_now

log = logging.getLogger("v2g.openadr")


@dataclass
class VenConfig:
    ven_name: str
    vtn_url: str
    default_grid_area_id: str
    report_interval: timedelta = timedelta(seconds=10)
    vtn_fingerprint: str | None = None
    cert: str | None = None
    key: str | None = None


@dataclass
class OpenAdrVen:
    """The aggregator's VEN."""

    config: VenConfig
    rules: OptRules
    sink: GridSignalSink
    fleet_power_kw: Callable[[], float] = lambda: 0.0
    decisions: list[tuple[str, Decision]] = field(default_factory=list)
    client: Any = None

    def build(self) -> Any:
        self.client = OpenADRClient(
            ven_name=self.config.ven_name,
            vtn_url=self.config.vtn_url,
            cert=self.config.cert,
            key=self.config.key,
            vtn_fingerprint=self.config.vtn_fingerprint,
            disable_signature=self.config.cert is None,
        )
        self.client.add_handler("on_event", self.on_event)
        self.client.add_report(
            callback=self._power_w,
            resource_id=self.config.default_grid_area_id,
            measurement="RealPower",
            sampling_rate=self.config.report_interval,
            unit="W",
        )
        return self.client

    async def start(self) -> None:
        if self.client is None:
            self.build()
        await self.client.run()

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.stop()

    def _power_w(self) -> float:
        return round(self.fleet_power_kw() * 1000.0, 1)

    def translate(self, event: dict[str, Any]) -> list[tuple[str, str, str, list[SignalInterval]]]:
        """(signal_name, signal_type, grid area, intervals) per signal of an openleadr event dict."""
        area = self.config.default_grid_area_id
        for target in event.get("targets") or []:
            area = target.get("resource_id") or target.get("group_id") or area
        out = []
        for signal in event.get("event_signals") or []:
            intervals = []
            for interval in signal.get("intervals") or []:
                start = interval.get("dtstart")
                if start is None:
                    start = event.get("active_period", {}).get("dtstart")
                intervals.append(
                    SignalInterval(
                        ensure_utc(start, field="interval.dtstart"),
                        interval["duration"],
                        float(interval["signal_payload"]),
                    )
                )
            out.append((str(signal.get("signal_name")), str(signal.get("signal_type")), area, intervals))
        return out

    async def on_event(self, event: dict[str, Any]) -> str:
        """openleadr's ``on_event`` handler: answer ``optIn`` or ``optOut``."""
        event_id = str(event.get("event_descriptor", {}).get("event_id", "?"))
        try:
            signals = self.translate(event)
        except (KeyError, TypeError, ValueError) as exc:
            decision = Decision("optOut", f"event {event_id}: unreadable signal ({exc})")
            self.decisions.append((event_id, decision))
            log.warning("%s", decision.reason)
            return "optOut"
        decisions = [
            self.rules.decide(signal_name=name, signal_type=kind, grid_area_id=area, intervals=iv, now=utc_now())
            for name, kind, area, iv in signals
        ]
        if not decisions or any(d.opt == "optOut" for d in decisions):
            reasons = "; ".join(d.reason for d in decisions if d.opt == "optOut") or "event has no signals"
            decision = Decision("optOut", reasons)
        else:
            decision = Decision(
                "optIn",
                "; ".join(d.reason for d in decisions),
                tuple(p for d in decisions for p in d.prices),
                tuple(x for d in decisions for x in d.limits),
            )
            if decision.prices:
                self.sink.prices(decision.prices)
            if decision.limits:
                self.sink.limits(decision.limits)
        self.decisions.append((event_id, decision))
        log.info("event %s: %s (%s)", event_id, decision.opt, decision.reason)
        return decision.opt
