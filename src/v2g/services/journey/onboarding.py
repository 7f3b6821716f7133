"""Onboarding: sign up a new customer, or start the journey of a customer already on file."""

from __future__ import annotations

from v2g.journey import engine
from v2g.journey.model import Journey, JourneyError, StageVisit
from v2g.services.actors.ports import NotFoundError, Organisation, Principal, User
from v2g.services.journey.base import STAFF_ROLE
from v2g.services.journey.ports import JourneyRepository
from v2g.services.journey.progress import JourneyProgress
from v2g.services.journey.values import JourneyView, SignUp, StateConflictError


class Onboarding(JourneyProgress):
    """Sign-up and journey start."""

    def sign_up(self, who: Principal, signup: SignUp) -> JourneyView:
        """Create the customer with site, vehicle (and wallbox) and start their journey."""
        self._require_role(who, STAFF_ROLE, action="sign up customers")

        def work(repo: JourneyRepository) -> JourneyView:
            cid = signup.customer.id
            if repo.customer(cid) is not None:
                msg = f"customer.id: customer {cid!r} already exists"
                raise StateConflictError(msg, field="customer.id")
            if repo.grid_area(signup.site.grid_area_id) is None:
                msg = f"site.grid_area_id: unknown grid area {signup.site.grid_area_id!r}"
                raise JourneyError(msg, field="site.grid_area_id")
            for org_id in signup.serving_organisation_ids:
                if repo.organisation(org_id) is None:
                    msg = f"serving_organisation_ids: unknown organisation {org_id!r}"
                    raise JourneyError(msg, field="serving_organisation_ids")
            if signup.owner_username and repo.user_by_username(signup.owner_username) is not None:
                msg = f"owner.username: {signup.owner_username!r} is taken"
                raise StateConflictError(msg, field="owner.username")
            repo.add_customer(signup.customer)
            repo.add_site(signup.site)
            repo.add_vehicle(signup.vehicle)
            if signup.charger is not None:
                repo.add_charger(signup.charger)
            for org_id in {who.organisation_id, *signup.serving_organisation_ids} - {"platform"}:
                repo.assign(org_id, cid)
            now = self.clock.now()
            if signup.owner_username:
                owner_org = f"org-owner-{cid}"
                repo.add_organisation(Organisation(owner_org, signup.customer.name, "owner"))
                repo.add_user(
                    User(
                        id=f"user-{cid}",
                        organisation_id=owner_org,
                        username=signup.owner_username,
                        display_name=signup.customer.name,
                        created_at=now,
                        password_hash=signup.owner_password_hash,
                        customer_id=cid,
                        email=signup.customer.email,
                        phone=signup.customer.phone,
                    )
                )
            return self._start(repo, who, cid, signup.offer)

        return self._tx(work)

    def start_journey(self, who: Principal, customer_id: str, offer: str) -> JourneyView:
        """Start the journey of a customer already on file (e.g. imported from a CRM)."""
        self._require_role(who, STAFF_ROLE, action="start journeys")

        def work(repo: JourneyRepository) -> JourneyView:
            if repo.customer(customer_id) is None:
                msg = f"customer {customer_id!r} not found"
                raise NotFoundError(msg)
            if repo.journey_of_customer(customer_id) is not None:
                msg = f"customer_id: customer {customer_id!r} already has a journey"
                raise StateConflictError(msg, field="customer_id")
            if who.role != "system":
                repo.assign(who.organisation_id, customer_id)
            return self._start(repo, who, customer_id, offer)

        return self._tx(work)

    def _start(self, repo: JourneyRepository, who: Principal, customer_id: str, offer: str) -> JourneyView:
        now = self.clock.now()
        first = self.blueprint.stages[0]
        journey = Journey(
            id=f"j-{customer_id}",
            customer_id=customer_id,
            blueprint_id=self.blueprint.blueprint.id,
            stage_id=first.id,
            stage_entered_at=now,
            created_at=now,
            offer=offer,
        )
        repo.add_journey(journey)
        repo.add_visit(StageVisit(journey.id, first.id, now))
        repo.add_tasks(engine.stage_tasks(self.blueprint, journey, first.id, now=now))
        self._audit(repo, who, "journey_created", "journey", journey.id, journey_id=journey.id, after=journey)
        self._notify_involved(
            repo, journey, "Welcome to V2G", f"Your V2G journey {journey.id} has started at {first.name}."
        )
        journey = self._settle(repo, journey, who)
        repo.update_journey(journey, expected_version=journey.version)
        return JourneyView(journey, repo.tasks(journey.id))
