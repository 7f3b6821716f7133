"""Operating-day persistence: the fleet as the planning cycle sees it, and the plans it made."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, select

from v2g.adapters.db.tables.devices import charger_state, charging_transactions, ev_charging_needs
from v2g.adapters.db.tables.fleet import chargers, grid_areas, sites, vehicles
from v2g.adapters.db.tables.operations import operating_plans
from v2g.devices.events import ChargingNeeds
from v2g.fleet.model import ChargerProtocol, PriceArea
from v2g.services.planning.ports import AreaLimits, PluggedEv, StoredPlan


class SqlFleetState:
    """Reads plugged-in EVs from the device layer's latest state and the fleet records."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def plugged_in(self) -> list[PluggedEv]:
        latest_needs = (
            select(ev_charging_needs.c.charger_id, func.max(ev_charging_needs.c.received_at).label("received_at"))
            .group_by(ev_charging_needs.c.charger_id)
            .subquery()
        )
        open_tx = (
            select(charging_transactions.c.charger_id, func.max(charging_transactions.c.started_at).label("started_at"))
            .where(charging_transactions.c.ended_at.is_(None))
            .group_by(charging_transactions.c.charger_id)
            .subquery()
        )
        query = (
            select(
                charger_state,
                chargers.c.site_id,
                chargers.c.protocol,
                chargers.c.max_charge_kw.label("charger_max_charge_kw"),
                chargers.c.max_discharge_kw.label("charger_max_discharge_kw"),
                sites.c.customer_id,
                sites.c.grid_area_id,
                sites.c.price_area,
                sites.c.main_fuse_a,
                sites.c.phases,
                sites.c.voltage_v,
                sites.c.household_peak_kw,
                vehicles.c.id.label("ev_id"),
                vehicles.c.battery_kwh,
                vehicles.c.max_charge_kw.label("ev_max_charge_kw"),
                vehicles.c.max_discharge_kw.label("ev_max_discharge_kw"),
                vehicles.c.v2g_capable,
                open_tx.c.started_at.label("plugged_in_at"),
                latest_needs.c.received_at.label("needs_at"),
            )
            .join(chargers, chargers.c.id == charger_state.c.charger_id)
            .join(sites, sites.c.id == chargers.c.site_id)
            .join(vehicles, vehicles.c.site_id == sites.c.id)
            .outerjoin(open_tx, open_tx.c.charger_id == charger_state.c.charger_id)
            .outerjoin(latest_needs, latest_needs.c.charger_id == charger_state.c.charger_id)
            .where(charger_state.c.ev_connected.is_(True), chargers.c.active.is_(True))
            .order_by(charger_state.c.charger_id, vehicles.c.id)
        )
        with self.engine.connect() as conn:
            rows = [r._mapping for r in conn.execute(query)]
            needs: dict[str, ChargingNeeds] = {}
            wanted = [(r["charger_id"], r["needs_at"]) for r in rows if r["needs_at"] is not None]
            if wanted:
                needs_rows = conn.execute(
                    select(ev_charging_needs).where(
                        ev_charging_needs.c.charger_id.in_([cid for cid, _ in wanted]),
                    )
                )
                latest = dict(wanted)
                for n in needs_rows:
                    m = dict(n._mapping)
                    if m["received_at"] == latest.get(m["charger_id"]):
                        needs[m["charger_id"]] = ChargingNeeds(**m)
        result: list[PluggedEv] = []
        seen: set[str] = set()
        for r in rows:
            # one EV per charger (the first vehicle registered at the site), one charger per EV
            if r["charger_id"] in seen or r["ev_id"] in seen:
                continue
            seen.update((r["charger_id"], r["ev_id"]))
            result.append(
                PluggedEv(
                    ev_id=r["ev_id"],
                    customer_id=r["customer_id"],
                    charger_id=r["charger_id"],
                    site_id=r["site_id"],
                    grid_area_id=r["grid_area_id"],
                    price_area=PriceArea(r["price_area"]),
                    battery_kwh=r["battery_kwh"],
                    ev_max_charge_kw=r["ev_max_charge_kw"],
                    ev_max_discharge_kw=r["ev_max_discharge_kw"],
                    charger_max_charge_kw=_limited(r["charger_max_charge_kw"], r["charging_limit_kw"]),
                    charger_max_discharge_kw=r["charger_max_discharge_kw"],
                    protocol=ChargerProtocol(r["protocol"]),
                    discharge_supported=bool(r["discharge_supported"]),
                    v2g_capable=bool(r["v2g_capable"]),
                    fuse_limit_kw=r["main_fuse_a"] * r["voltage_v"] * r["phases"] / 1000.0,
                    household_peak_kw=r["household_peak_kw"],
                    online=bool(r["online"]),
                    soc_percent=r["soc_percent"],
                    soc_measured_at=r["measured_at"] if r["soc_percent"] is not None else None,
                    needs=needs.get(r["charger_id"]),
                    plugged_in_at=r["plugged_in_at"],
                    charging_limit_kw=r["charging_limit_kw"],
                )
            )
        return result

    def area_limits(self, area_ids: Sequence[str]) -> list[AreaLimits]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(grid_areas).where(grid_areas.c.id.in_(list(area_ids))).order_by(grid_areas.c.id))
            return [
                AreaLimits(r.id, PriceArea(r.price_area), float(r.import_limit_kw), float(r.export_limit_kw))
                for r in rows
            ]


def _limited(rating_kw: float, local_limit_kw: float | None) -> float:
    """A charger's charging power: its rating, or less while it applies a limit of its own."""
    return rating_kw if local_limit_kw is None else max(0.0, min(rating_kw, local_limit_kw))


class SqlPlanStore:
    """The plans of the planning cycle, newest last."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save_plan(self, **values: Any) -> int:
        row = dict(values)
        row["plan_json"] = json.dumps(row.pop("plan"), separators=(",", ":"))
        with self.engine.begin() as conn:
            result = conn.execute(operating_plans.insert().values(**row))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def latest_plan(self) -> StoredPlan | None:
        with self.engine.connect() as conn:
            newest_first = (operating_plans.c.created_at.desc(), operating_plans.c.id.desc())
            row = conn.execute(select(operating_plans).order_by(*newest_first).limit(1)).first()
        if row is None:
            return None
        m = dict(row._mapping)
        plan = json.loads(m.pop("plan_json"))
        return StoredPlan(plan=plan, **m)

    def made_between(self, start_at: datetime, end_at: datetime) -> list[StoredPlan]:
        """The plans made in ``[start_at, end_at)``, in the order they were made."""
        window = and_(operating_plans.c.created_at >= start_at, operating_plans.c.created_at < end_at)
        with self.engine.connect() as conn:
            rows = conn.execute(select(operating_plans).where(window).order_by(operating_plans.c.id)).all()
        out = []
        for row in rows:
            m = dict(row._mapping)
            plan = json.loads(m.pop("plan_json"))
            out.append(StoredPlan(plan=plan, **m))
        return out

    def plans_between(self, start_at: datetime, end_at: datetime) -> int:
        """How many plans were made in ``[start_at, end_at)``."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        and_(operating_plans.c.created_at >= start_at, operating_plans.c.created_at < end_at)
                    )
                ).scalar_one()
            )
