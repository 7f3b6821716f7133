"""The operator's view as a use case: gather the inputs through ports, assemble the status, show each
audience only its part.

Who sees what (``/api/v1/operations``; the ``v2g ops status`` console is the operator's):

* the **aggregator operator** sees the fleet's aggregates and, of the EVs and chargers of the
  customers its organisation serves, every EV's schedule, departures at risk and offline chargers;
  the market records of the bidding groups that hold (or held) one of those EVs (the same cut as the
  market API); dispatch and the jobs. The platform itself (the ``v2g ops status`` console) sees all;
* a **BSP** sees the market records of its own bidding groups, and of the fleet only aggregates
  (the plan's totals, hourly energy and reserve, the last dispatch): no EV, charger or owner;
* the **TSO** sees the market side only: bids, commitments and delivery of every group.

Per-EV data (``evs``, ``departures_at_risk``, ``chargers_offline``) belongs to the owners and the
aggregator serving them, so only the operator's audience carries it. Other roles see nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol

from v2g.dispatch.verification import DeliveryRecord
from v2g.services.actors.ports import ForbiddenError, Principal
from v2g.services.clock import Clock
from v2g.services.markets.access import AGGREGATOR_ROLE, MarketScope
from v2g.services.markets.ports import MarketTx
from v2g.services.operations.status import DeliveryRow, DispatchSnapshot, OperationsStatus, operations_status
from v2g.services.planning.ports import PluggedEv, StoredPlan


class LatestPlan(Protocol):
    """The part of the plan store the view reads."""

    def latest_plan(self) -> StoredPlan | None: ...


class PluggedIn(Protocol):
    """The part of the fleet state reader the view reads."""

    def plugged_in(self) -> list[PluggedEv]: ...


class OfflineChargers(Protocol):
    """The part of the device store the view reads."""

    def offline_chargers(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class ServedFleet:
    """The EVs and chargers of the customers an aggregator's organisation serves."""

    ev_ids: frozenset[str]
    charger_ids: frozenset[str]


class Audience(StrEnum):
    """How much of the status a caller sees."""

    OPERATOR = "operator"  # everything
    BSP = "bsp"  # market records of its own groups and fleet aggregates
    TSO = "tso"  # market records only


ROLE_AUDIENCE = {AGGREGATOR_ROLE: Audience.OPERATOR, "bsp": Audience.BSP, "tso": Audience.TSO}

_MARKET_KEYS = ("bids", "commitments", "delivery")
_KEYS: dict[Audience, tuple[str, ...]] = {
    Audience.TSO: _MARKET_KEYS,
    Audience.BSP: ("plan", "hours", *_MARKET_KEYS, "last_dispatch"),
    Audience.OPERATOR: (
        "plan",
        "hours",
        "evs",
        *_MARKET_KEYS,
        "last_dispatch",
        "chargers_offline",
        "departures_at_risk",
        "jobs",
    ),
}


class ServedLookup(Protocol):
    """The part of the journey service that knows which EVs and chargers an organisation serves."""

    def served_vehicle_ids(self, who: Principal) -> frozenset[str]: ...
    def served_charger_ids(self, who: Principal) -> frozenset[str]: ...


def audience_for_role(role: str) -> Audience | None:
    """The audience of a role, or None when the role may not see the operations view."""
    return ROLE_AUDIENCE.get(role)


def status_for(status: OperationsStatus, audience: Audience) -> dict[str, Any]:
    """The status as JSON-ready data, cut to what ``audience`` may see."""
    data = asdict(status)
    out: dict[str, Any] = {"at": status.at.isoformat(), "audience": audience.value}
    out.update({key: data[key] for key in _KEYS[audience]})
    return out


def _delivery_row(record: DeliveryRecord) -> DeliveryRow:
    return DeliveryRow(
        group_id=record.group_id,
        product=record.product.value,
        hour_start_at=record.hour_start_at,
        committed_mw=record.committed_mw,
        delivered_ratio=record.delivered_ratio,
        repayment_eur=record.repayment_eur,
    )


@dataclass
class OperationsView:
    """Reads the latest plan, the plugged-in fleet, the market records, offline chargers, the last
    dispatch and the scheduler's jobs, and assembles the :class:`OperationsStatus` of now."""

    plans: LatestPlan
    fleet: PluggedIn
    market_tx: MarketTx
    chargers: OfflineChargers
    last_dispatch: Callable[[], DispatchSnapshot | None]
    jobs: Callable[[], list[dict[str, Any]]]
    clock: Clock
    window: timedelta = timedelta(hours=36)

    def current(self, *, bsp_org_id: str | None = None, groups_of: MarketScope | None = None) -> OperationsStatus:
        """The status now; with ``bsp_org_id`` the market records are those of that BSP's groups only,
        with ``groups_of`` those of the groups that scope sees."""
        now = self.clock.now()
        start_at, end_at = now - self.window, now + self.window
        with self.market_tx() as store:
            bids = store.bids_between(start_at, end_at)
            commitments = store.commitments_between(start_at, end_at)
            delivery = store.delivery_between(start_at, end_at)
            own: set[str] | None = None
            if bsp_org_id is not None:
                own = set(store.group_ids_of(bsp_org_id))
            if groups_of is not None:
                own = {g.id for g in groups_of.groups(store)}
            if own is not None:
                bids = [b for b in bids if b.group_id in own]
                commitments = [c for c in commitments if c.group_id in own]
                delivery = [d for d in delivery if d.group_id in own]
        return operations_status(
            now=now,
            plan=self.plans.latest_plan(),
            plugged=self.fleet.plugged_in(),
            bids=bids,
            commitments=commitments,
            delivery=[_delivery_row(d) for d in delivery],
            offline_chargers=self.chargers.offline_chargers(),
            last_dispatch=self.last_dispatch(),
            jobs=self.jobs(),
            window=self.window,
        )

    def for_audience(
        self, audience: Audience, *, organisation_id: str, served: ServedFleet | None = None
    ) -> dict[str, Any]:
        """The status as ``audience`` may see it: a BSP's market records are its own groups'; an
        aggregator's per-EV data and market records are those of the fleet it ``served`` (None: the
        platform's own view, everything)."""
        scope = None
        if audience is Audience.OPERATOR and served is not None:
            scope = MarketScope(AGGREGATOR_ROLE, organisation_id, served.ev_ids)
        status = self.current(bsp_org_id=organisation_id if audience is Audience.BSP else None, groups_of=scope)
        out = status_for(status, audience)
        if scope is not None and served is not None:
            out["evs"] = [e for e in out["evs"] if e["ev_id"] in served.ev_ids]
            out["departures_at_risk"] = [d for d in out["departures_at_risk"] if d["ev_id"] in served.ev_ids]
            out["chargers_offline"] = [c for c in out["chargers_offline"] if c in served.charger_ids]
        return out

    def for_caller(self, who: Principal, journeys: ServedLookup | None) -> dict[str, Any]:
        """The status cut to what ``who``'s role and organisation may see; other roles are refused
        (:class:`ForbiddenError` naming the roles allowed). An aggregator sees the EVs, chargers and
        bidding groups of the customers its organisation serves (none without a journey service)."""
        audience = audience_for_role(who.role)
        if audience is None:
            allowed = ", ".join(sorted(ROLE_AUDIENCE))
            msg = f"role {who.role!r} may not read the operations view (allowed: {allowed})"
            raise ForbiddenError(msg)
        served = None
        if audience is Audience.OPERATOR:
            if journeys is None:
                served = ServedFleet(frozenset(), frozenset())
            else:
                served = ServedFleet(journeys.served_vehicle_ids(who), journeys.served_charger_ids(who))
        return self.for_audience(audience, organisation_id=who.organisation_id, served=served)
