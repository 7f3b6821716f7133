"""Reads: journeys, tracker, audit log, notifications, KPIs and the data export, scoped to the caller."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from v2g.journey.kpis import KpiInput, compute_kpis
from v2g.journey.model import Journey, JourneyStatus
from v2g.journey.tracker import StatusTracker, status_tracker
from v2g.services.actors.ports import AuditEntry, Notification, Principal
from v2g.services.journey.base import STAFF_ROLE, JourneyCore
from v2g.services.journey.export import build_export, owner_messages
from v2g.services.journey.ports import CustomerFile
from v2g.services.journey.values import JourneyView


class Queries(JourneyCore):
    """What the caller may see of the journeys they serve."""

    def list_journeys(self, who: Principal) -> list[Journey]:
        with self.uow() as repo:
            visible = self.visible_customers(repo, who)
            return repo.journeys(visible)

    def get(self, who: Principal, journey_id: str) -> JourneyView:
        with self.uow() as repo:
            journey = self._load(repo, who, journey_id)
            return JourneyView(journey, repo.tasks(journey_id))

    def tracker(self, who: Principal, journey_id: str) -> StatusTracker:
        with self.uow() as repo:
            journey = self._load(repo, who, journey_id)
            return status_tracker(self.blueprint, journey, repo.tasks(journey_id), self.clock.now(), self.rules)

    def customer_files(self, who: Principal) -> list[CustomerFile]:
        """The sites, vehicles and chargers of the customers ``who`` may see (an owner: their own)."""
        with self.uow() as repo:
            visible = self.visible_customers(repo, who)
            customers = visible if visible is not None else {j.customer_id for j in repo.journeys()}
            return [repo.customer_file(cid) for cid in sorted(customers)]

    def stage_counts(self, who: Principal) -> dict[str, int]:
        """How many of the journeys ``who`` may see are in each stage (every stage of the blueprint named)."""
        counts = dict.fromkeys((s.id for s in self.blueprint.stages), 0)
        for journey in self.list_journeys(who):
            counts[journey.stage_id] = counts.get(journey.stage_id, 0) + 1
        return counts

    def service_active_customers(self) -> set[str]:
        """Customers whose V2G service runs now (live and not paused or leaving): planning and dispatch
        schedule only these."""
        with self.uow() as repo:
            return {
                j.customer_id
                for j in repo.journeys()
                if j.status is JourneyStatus.ACTIVE and j.first_active_at is not None
            }

    def served_charger_ids(self, who: Principal) -> frozenset[str]:
        """Chargers of the customers ``who``'s organisation serves (what scopes its fleet reads)."""
        with self.uow() as repo:
            visible = self.visible_customers(repo, who)
            customers = visible if visible is not None else {j.customer_id for j in repo.journeys()}
            return frozenset(c.id for cid in sorted(customers) for c in repo.customer_file(cid).chargers)

    def served_vehicle_ids(self, who: Principal) -> frozenset[str]:
        """Vehicles of the customers ``who``'s organisation serves (what scopes its market reads)."""
        with self.uow() as repo:
            visible = self.visible_customers(repo, who)
            customers = visible if visible is not None else {j.customer_id for j in repo.journeys()}
            return frozenset(v.id for cid in sorted(customers) for v in repo.customer_file(cid).vehicles)

    def audit_log(self, who: Principal, journey_id: str) -> list[AuditEntry]:
        self._require_role(who, STAFF_ROLE, action="read the audit log")
        with self.uow() as repo:
            self._load(repo, who, journey_id)
            return repo.audit_entries(journey_id)

    def notifications(self, who: Principal, journey_id: str) -> list[Notification]:
        with self.uow() as repo:
            self._load(repo, who, journey_id)
            messages = repo.notifications(journey_id)
            if who.role in (STAFF_ROLE, "system"):
                return messages
            if who.role == "owner":
                return owner_messages(repo, who.customer_id or "", messages, user_ids={who.user_id})
            return [m for m in messages if m.recipient_organisation_id == who.organisation_id]

    def kpis(self, who: Principal) -> dict[str, Any]:
        self._require_role(who, STAFF_ROLE, action="read KPIs")
        with self.uow() as repo:
            visible = self.visible_customers(repo, who)
            journeys = repo.journeys(visible)
            ids = {j.id for j in journeys}
            visits = repo.visits(ids)
            feedback = repo.exit_feedback(ids)
            paused = repo.journeys_with_action("pause") & ids
            active = set()
            for j in journeys:
                if j.first_active_at is None:
                    continue
                end = j.first_active_at + timedelta(days=7)
                if any(
                    e.action in ("device_event", "task_completed") and j.first_active_at <= e.at <= end
                    for e in repo.audit_entries(j.id)
                ):
                    active.add(j.id)
        data = KpiInput(
            journeys, visits, [r for f in feedback for r in f.reasons], frozenset(paused), frozenset(active)
        )
        return compute_kpis(self.blueprint, data, self.clock.now(), self.rules.go_live_stage)

    def export(self, who: Principal, journey_id: str) -> bytes:
        """A zip a person can open: README, JSON of everything, CSV per table."""
        self._require_role(who, "owner", STAFF_ROLE, action="export customer data")
        with self.uow() as repo:
            journey = self._load(repo, who, journey_id)
            return build_export(repo, journey, self.clock.now())  # the customer's own records only
