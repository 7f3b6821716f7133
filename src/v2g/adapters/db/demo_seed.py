"""Demo data for `v2g demo`: grid areas, customers with sites, vehicles and chargers. Idempotent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.tables.fleet import chargers, grid_areas, sites, vehicles
from v2g.fleet.model import Charger, ChargerProtocol, Customer, GridArea, PriceArea, Site, Vehicle

DEMO_GRID_AREAS = (
    GridArea("GA-SE3-UPPSALA-01", "Uppsala Nord 10/0.4 kV", "org-dso-demo", PriceArea.SE3, 800.0, 600.0, 900.0, 7),
    GridArea(
        "GA-SE3-GBG-02",
        "Göteborg Hisingen 10/0.4 kV",
        "org-dso-demo",
        PriceArea.SE3,
        1200.0,
        900.0,
        1500.0,
        3,
    ),
    GridArea("GA-SE4-MALMO-03", "Malmö Limhamn 10/0.4 kV", "org-dso-demo", PriceArea.SE4, 600.0, 400.0, 500.0, 12),
)

_VEHICLES = (
    ("Nissan", "Leaf e+", 62.0, 11.0, 10.0),
    ("Kia", "EV9", 99.8, 11.0, 11.0),
    ("Volkswagen", "ID.4 Pro", 77.0, 11.0, 11.0),
    ("Polestar", "3", 107.0, 11.0, 11.0),
    ("Volvo", "EX90", 107.0, 11.0, 11.0),
    ("Hyundai", "Ioniq 5", 77.4, 11.0, 11.0),
)


def seed_demo(engine: Engine, *, customers: int = 12) -> int:
    """Insert the demo fleet unless it is already there; return the number of customers added."""
    created = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    with engine.begin() as conn:
        if conn.execute(select(grid_areas.c.id).limit(1)).first() is not None:
            return 0
        repo = SqlFleetRepository(conn)
        for area in DEMO_GRID_AREAS:
            repo.add_grid_area(area)
        for i in range(customers):
            area = DEMO_GRID_AREAS[i % len(DEMO_GRID_AREAS)]
            make, model, battery_kwh, charge_kw, discharge_kw = _VEHICLES[i % len(_VEHICLES)]
            cid, sid = f"cust-{i + 1:03d}", f"site-{i + 1:03d}"
            repo.add_customer(Customer(cid, f"Demo Owner {i + 1}", f"owner{i + 1}@example.se", created))
            repo.add_site(
                Site(
                    sid,
                    cid,
                    f"Demogatan {i + 1}, {area.name.split()[0]}",
                    area.price_area,
                    area.id,
                    main_fuse_a=(16, 20, 25)[i % 3],
                    household_peak_kw=6.0 + i % 4,
                    pv_kw=(0.0, 8.0)[i % 2],
                )
            )
            repo.add_vehicle(
                Vehicle(f"veh-{i + 1:03d}", cid, make, model, battery_kwh, charge_kw, discharge_kw, True, sid)
            )
            protocol = (ChargerProtocol.OCPP21, ChargerProtocol.OCPP201, ChargerProtocol.OCPP16)[i % 3]
            repo.add_charger(
                Charger(
                    f"CP-{i + 1:04d}",
                    sid,
                    "Demo Wallbox AB",
                    "BiDi 11",
                    protocol,
                    11.0,
                    0.0 if protocol is ChargerProtocol.OCPP16 else 11.0,
                )
            )
    return customers


def demo_protocol_mix(n: int) -> dict[str, int]:
    """How `v2g demo` splits its simulated wallboxes: 80 % OCPP 2.1, 10 % 2.0.1, 10 % 1.6 (at least one each)."""
    if n < 3:
        return {"2.1": n, "2.0.1": 0, "1.6": 0}
    n201 = max(1, n // 10)
    n16 = max(1, n // 10)
    return {"2.1": n - n201 - n16, "2.0.1": n201, "1.6": n16}


# A generated grid area (``evs_per_area``): what its transformer leaves for EV charging per household
# with an EV, after the other households' evening load. Assumption of the twin, not a DSO figure: a
# 500-800 kVA 10/0.4 kV substation serves 100-200 households, about half its rating is left in the
# evening, and 50 EVs then share it (so it binds when about half of them charge at 11 kW at once).
AREA_IMPORT_KW_PER_EV = 6.0
AREA_EXPORT_KW_PER_EV = 4.0


def household_areas(n: int, evs_per_area: int) -> list[GridArea]:
    """The grid areas of ``n`` twin households, ``evs_per_area`` each (the last one takes the rest)."""
    count = max(1, -(-n // evs_per_area))
    out = []
    for j in range(count):
        evs = min(evs_per_area, n - j * evs_per_area)
        out.append(
            GridArea(
                f"GA-SE3-TWIN-{j + 1:04d}",
                f"Twin area {j + 1} 10/0.4 kV",
                "org-dso-demo",
                PriceArea.SE3,
                AREA_IMPORT_KW_PER_EV * evs,
                AREA_EXPORT_KW_PER_EV * evs,
                AREA_IMPORT_KW_PER_EV * evs,
            )
        )
    return out


def seed_demo_households(engine: Engine, n: int, *, evs_per_area: int = 0) -> dict[str, list[str]]:
    """Simulated households of the demo: one customer, site, EV and charger each (idempotent).

    They share the demo's three grid areas, or (``evs_per_area`` > 0) generated areas of that many
    households each, in order.

    Charger ids follow the simulator's naming (``DEMO-21-00001``, ``DEMO-201-00001``, ``DEMO-16-00001``)
    so that provisioning gives them credentials; returns the site ids per protocol.
    """
    created = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    protocols = {"2.1": ChargerProtocol.OCPP21, "2.0.1": ChargerProtocol.OCPP201, "1.6": ChargerProtocol.OCPP16}
    sites_by_protocol: dict[str, list[str]] = {p: [] for p in protocols}
    generated = household_areas(n, evs_per_area) if evs_per_area > 0 else []
    with engine.begin() as conn:
        repo = SqlFleetRepository(conn)
        if generated:
            known = set(conn.execute(select(grid_areas.c.id)).scalars())
            for generated_area in generated:
                if generated_area.id not in known:
                    repo.add_grid_area(generated_area)
        existing = set(conn.execute(select(chargers.c.id).where(chargers.c.id.like("DEMO-%"))).scalars())
        k = 0
        for name, count in demo_protocol_mix(n).items():
            tag = name.replace(".", "")
            for j in range(1, count + 1):
                k += 1
                charger_id = f"DEMO-{tag}-{j:05d}"
                sid = f"site-hh-{k:05d}"
                sites_by_protocol[name].append(sid)
                if charger_id in existing:
                    continue
                area = generated[(k - 1) // evs_per_area] if generated else DEMO_GRID_AREAS[k % len(DEMO_GRID_AREAS)]
                make, model, battery_kwh, charge_kw, discharge_kw = _VEHICLES[k % len(_VEHICLES)]
                cid = f"hh-{k:05d}"
                repo.add_customer(Customer(cid, f"Demo Household {k}", f"household{k}@example.se", created))
                repo.add_site(
                    Site(
                        sid, cid, f"Simulatorvägen {k}", area.price_area, area.id, main_fuse_a=25, household_peak_kw=4.0
                    )
                )
                repo.add_vehicle(
                    Vehicle(f"ev-hh-{k:05d}", cid, make, model, battery_kwh, charge_kw, discharge_kw, True, sid)
                )
                protocol = protocols[name]
                repo.add_charger(
                    Charger(
                        charger_id,
                        sid,
                        "V2G-Sim",
                        "BiDi-11",
                        protocol,
                        11.0,
                        0.0 if protocol is ChargerProtocol.OCPP16 else 11.0,
                    )
                )
    return sites_by_protocol


def demo_batteries(engine: Engine) -> dict[str, float]:
    """The battery (kWh) of each demo household's EV, by site (the simulated EV matches the record)."""
    with engine.connect() as conn:
        rows = conn.execute(select(vehicles.c.site_id, vehicles.c.battery_kwh).where(vehicles.c.id.like("ev-hh-%")))
        return {r.site_id: float(r.battery_kwh) for r in rows if r.site_id is not None}


def demo_households(engine: Engine) -> list[dict[str, Any]]:
    """Each demo household's EV, charger and connection point (what the twin simulates)."""
    query = (
        select(
            vehicles.c.id.label("ev_id"),
            vehicles.c.customer_id,
            chargers.c.id.label("charger_id"),
            sites.c.id.label("site_id"),
            sites.c.grid_area_id,
            sites.c.price_area,
            chargers.c.protocol,
            vehicles.c.battery_kwh,
            vehicles.c.max_charge_kw.label("ev_charge_kw"),
            vehicles.c.max_discharge_kw.label("ev_discharge_kw"),
            chargers.c.max_charge_kw.label("charger_charge_kw"),
            chargers.c.max_discharge_kw.label("charger_discharge_kw"),
        )
        .join(sites, sites.c.id == vehicles.c.site_id)
        .join(chargers, chargers.c.site_id == sites.c.id)
        .where(vehicles.c.id.like("ev-hh-%"))
        .order_by(vehicles.c.id)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
