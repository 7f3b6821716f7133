"""Helpers for journey tests: a movable clock, the test blueprint, a seeded world of actors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from sqlalchemy import Engine

from v2g.adapters.db.fleet_repo import SqlFleetRepository
from v2g.adapters.db.journey_repo import sql_unit_of_work
from v2g.blueprint import Blueprint, load_blueprint
from v2g.fleet.model import GridArea, PriceArea
from v2g.services.actors.auth import ensure_organisation_user, hash_password, issue_token
from v2g.services.journey.handlers import default_registry
from v2g.services.journey.service import JourneyService

TEST_BLUEPRINT = Path(__file__).resolve().parent / "data" / "journey-test-blueprint.yaml"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"

ACTORS = {
    "aggregator": ("org-agg", "Aggregator AB", "aggregator_operator"),
    "aggregator2": ("org-agg2", "Other Aggregator AB", "aggregator_operator"),
    "installer": ("org-inst", "Installer AB", "installer"),
    "dso": ("org-dso", "Nätbolaget AB", "dso"),
    "dso2": ("org-dso2", "Other DSO AB", "dso"),
    "insurer": ("org-ins", "Försäkring AB", "insurer"),
    "tso": ("org-tso", "Svenska kraftnät", "tso"),
    "bsp": ("org-bsp", "BSP AB", "bsp"),
    "brp": ("org-brp", "BRP AB", "brp"),
    "ev_supplier": ("org-evs", "Bilhandel AB", "ev_supplier"),
    "evse_supplier": ("org-evse", "Laddbox AB", "evse_supplier"),
    "energy_supplier": ("org-es", "Elhandel AB", "energy_supplier"),
}
SERVING = ["org-inst", "org-ins", "org-tso", "org-bsp", "org-brp", "org-evs", "org-evse", "org-es"]
PRODUCT_BLUEPRINT = Path(__file__).resolve().parents[1] / "blueprints" / "sweden-private-ev.yaml"


@cache
def password_hash() -> str:
    """One argon2 hash of the test password, shared by every test user (hashing is slow on purpose)."""
    return hash_password(PASSWORD)


@dataclass
class MovableClock:
    at: datetime = START

    def now(self) -> datetime:
        return self.at

    def advance(self, **kwargs: float) -> None:
        self.at += timedelta(**kwargs)


@dataclass(repr=False)
class World:
    engine: Engine
    clock: MovableClock
    service: JourneyService
    blueprint: Blueprint
    tokens: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"World({self.engine.url.render_as_string(hide_password=True)}, {self.blueprint.blueprint.id})"

    def bearer(self, username: str) -> dict[str, str]:
        """Headers with the API token an administrator issued to that actor's user."""
        return {"Authorization": f"Bearer {self.tokens[username]}"}


def load_test_blueprint() -> Blueprint:
    return load_blueprint(TEST_BLUEPRINT)


def seed_world(engine: Engine, clock: MovableClock | None = None, blueprint_path: Path = TEST_BLUEPRINT) -> World:
    clock = clock or MovableClock()
    with engine.begin() as conn:
        repo = SqlFleetRepository(conn)
        repo.add_grid_area(GridArea("GA-1", "Area 1", "org-dso", PriceArea.SE3, 800.0, 600.0, 200.0, 2))
        repo.add_grid_area(GridArea("GA-2", "Area 2", "org-dso2", PriceArea.SE4, 800.0, 600.0, 15.0, 0))
    uow = sql_unit_of_work(engine)
    tokens: dict[str, str] = {}
    with uow() as jrepo:
        for username, (org_id, name, role) in ACTORS.items():
            user = ensure_organisation_user(
                jrepo,
                organisation_id=org_id,
                organisation_name=name,
                role=role,
                username=username,
                password_hash=password_hash(),
                now=clock.now(),
            )
            tokens[username] = issue_token(jrepo, user, label="test", now=clock.now())
    blueprint = load_blueprint(blueprint_path)
    return World(engine, clock, JourneyService(uow, clock, blueprint, default_registry()), blueprint, tokens)


def signup_body(cid: str, *, grid_area_id: str = "GA-1", with_owner_login: bool = True) -> dict[str, object]:
    owner: dict[str, object] = {"name": f"Owner {cid}", "email": f"{cid}@example.se", "phone": "+46701234567"}
    if with_owner_login:
        owner |= {"username": f"owner-{cid}", "password": PASSWORD}
    return {
        "customer_id": cid,
        "owner": owner,
        "site": {
            "address": "Storgatan 1, Uppsala",
            "grid_area_id": grid_area_id,
            "main_fuse_a": 20,
            "household_peak_kw": 6.9,
            "pv_kw": 0.0,
        },
        "vehicle": {
            "make": "Volkswagen",
            "model": "ID.4 Pro",
            "battery_kwh": 77,
            "max_charge_kw": 11,
            "max_discharge_kw": 10,
        },
        "charger": {
            "id": f"CP-{cid}",
            "vendor": "Wallbox",
            "model": "Quasar 2",
            "protocol": "ocpp2.0.1",
            "max_charge_kw": 11.5,
            "max_discharge_kw": 11.5,
        },
        "offer": "v2g-basic",
        "serving_organisation_ids": SERVING,
    }
