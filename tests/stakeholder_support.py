"""Helpers for the stakeholder pages' tests: a customer signed up through the journey service and
brought to installation & onboarding, the actors' principals, and small files of each kind."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.journey_support import SERVING, START, TEST_BLUEPRINT, World, password_hash, seed_world
from v2g.bootstrap import Platform, bootstrap
from v2g.config import Settings
from v2g.fleet.model import Charger, ChargerProtocol, Customer, PriceArea, Site, Vehicle
from v2g.runtime.app import build_app
from v2g.services.actors.ports import Principal
from v2g.services.journey.service import JourneyService
from v2g.services.journey.values import SignUp

AGG = Principal("user-aggregator", "org-agg", "aggregator_operator")
DSO = Principal("user-dso", "org-dso", "dso")
DSO2 = Principal("user-dso2", "org-dso2", "dso")
INSTALLER = Principal("user-installer", "org-inst", "installer")
INSURER = Principal("user-insurer", "org-ins", "insurer")
APPROVAL = "installation_onboarding.back.dso.inspect_approve_installation"
COVERAGE = "installation_onboarding.back.insurance.confirm_coverage"

# the smallest files of each accepted kind (their first bytes are what counts)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 16 + b"\xff\xd9"


def signup(cid: str, grid_area_id: str = "GA-1") -> SignUp:
    site = Site(f"site-{cid}", cid, "Storgatan 1", PriceArea.SE3, grid_area_id, main_fuse_a=20, household_peak_kw=6.9)
    return SignUp(
        customer=Customer(cid, f"Owner {cid}", f"{cid}@example.se", START, "+46701234567"),
        site=site,
        vehicle=Vehicle(f"veh-{cid}", cid, "Volkswagen", "ID.4", 77.0, 11.0, 10.0, True, site.id),
        offer="v2g-basic",
        charger=Charger(f"CP-{cid}", site.id, "Wallbox", "Quasar 2", ChargerProtocol.OCPP201, 11.5, 11.5),
        serving_organisation_ids=tuple(SERVING),
        owner_username=f"owner-{cid}",
        owner_password_hash=password_hash(),
    )


def to_onboarding(service: JourneyService, cid: str, grid_area_id: str = "GA-1") -> str:
    """Sign ``cid`` up and bring the journey to installation & onboarding with the wallbox installed:
    the DSO's approval and the insurer's confirmation are what is left. Returns the journey id."""
    view = service.sign_up(AGG, signup(cid, grid_area_id))
    jid = view.journey.id
    while service.get(AGG, jid).journey.stage_id != "installation_onboarding":
        service.advance(AGG, jid)
    item = "installation_onboarding.front.installer.install_wallbox"
    service.complete_task(INSTALLER, f"{jid}:{item}", evidence={"installation_report": "IR-1"})
    return jid


@dataclass
class StakeholderPortal:
    world: World
    platform: Platform
    client: TestClient
    journey_id: str


def build_stakeholder_portal(engine: Engine, *, evidence_max_bytes: int = 10_485_760) -> StakeholderPortal:
    """The portal over a world where c1 waits for the DSO's approval and the insurer's confirmation
    (and c3, in another DSO's area, for its own)."""
    world = seed_world(engine)
    settings = Settings(
        database_url=str(engine.url),
        blueprint_path=TEST_BLUEPRINT,
        settlement_job=False,
        evidence_max_bytes=evidence_max_bytes,
    )
    platform = bootstrap(settings, engine=engine, clock=world.clock, journeys=world.service)
    client = TestClient(build_app(platform))
    jid = to_onboarding(world.service, "c1")
    to_onboarding(world.service, "c3", grid_area_id="GA-2")
    return StakeholderPortal(world, platform, client, jid)
