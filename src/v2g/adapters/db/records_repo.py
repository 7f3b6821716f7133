"""SQL records of what happened: the append-only audit log, the outbox, one-time secrets and exit feedback."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from v2g.adapters.db.bound import ConnectionBound
from v2g.adapters.db.tables.journey import audit_log, exit_feedback, one_time_secrets, outbox
from v2g.services.actors.ports import AuditEntry, Notification, OneTimeSecret
from v2g.services.journey.ports import ExitFeedback


class AppendOnlyError(RuntimeError):
    """The audit log is never updated or deleted."""


class SqlAuditRecords(ConnectionBound):
    """Implements :class:`v2g.services.actors.ports.AuditRecords`; updates and deletes are refused."""

    def audit(self, entry: AuditEntry) -> None:
        values = asdict(entry)
        values.pop("id")
        self.conn.execute(insert(audit_log).values(**values))

    def update_audit(self, *_: Any, **__: Any) -> None:
        """Refused: the audit log is append-only."""
        msg = "audit_log is append-only: entries are never updated or deleted"
        raise AppendOnlyError(msg)

    delete_audit = update_audit

    def audit_entries(self, journey_id: str) -> list[AuditEntry]:
        q = select(audit_log).where(audit_log.c.journey_id == journey_id).order_by(audit_log.c.id)
        return [AuditEntry(**dict(r)) for r in self.conn.execute(q).mappings()]

    def journeys_with_action(self, action: str) -> set[str]:
        q = select(audit_log.c.journey_id).where(audit_log.c.action == action, audit_log.c.journey_id.is_not(None))
        return {str(j) for j in self.conn.execute(q).scalars()}


class SqlOutboxRecords(ConnectionBound):
    """Implements :class:`v2g.services.actors.ports.OutboxRecords`; pending messages are locked (skip
    locked) where the database can, so two deliverers never send one message twice."""

    def notify(self, notification: Notification) -> None:
        values = asdict(notification)
        values.pop("id")
        self.conn.execute(insert(outbox).values(**values))

    def notifications(self, journey_id: str) -> list[Notification]:
        q = select(outbox).where(outbox.c.journey_id == journey_id).order_by(outbox.c.id)
        return [Notification(**dict(r)) for r in self.conn.execute(q).mappings()]

    def pending_notifications(self, limit: int) -> list[Notification]:
        q = select(outbox).where(outbox.c.status == "pending").order_by(outbox.c.id).limit(limit)
        if self._locks:
            q = q.with_for_update(skip_locked=True)
        return [Notification(**dict(r)) for r in self.conn.execute(q).mappings()]

    def mark_notification(self, notification_id: int, *, status: str, at: datetime, error: str | None) -> None:
        self.conn.execute(
            update(outbox)
            .where(outbox.c.id == notification_id)
            .values(status=status, sent_at=at if status == "sent" else None, error=error)
        )


class SqlSecretRecords(ConnectionBound):
    """Implements :class:`v2g.services.actors.ports.SecretRecords`; a retrieved value is cleared."""

    def add_secret(self, secret: OneTimeSecret) -> None:
        self.conn.execute(insert(one_time_secrets).values(**asdict(secret)))

    def secret(self, task_id: str, organisation_id: str, *, for_update: bool = False) -> OneTimeSecret | None:
        t = one_time_secrets.c
        q = select(one_time_secrets).where(t.task_id == task_id, t.organisation_id == organisation_id)
        if for_update and self._locks:
            q = q.with_for_update()
        row = self.conn.execute(q).mappings().first()
        return OneTimeSecret(**dict(row)) if row else None

    def mark_secret_retrieved(self, task_id: str, organisation_id: str, *, at: datetime, by: str) -> bool:
        t = one_time_secrets.c
        result = self.conn.execute(
            update(one_time_secrets)
            .where(t.task_id == task_id, t.organisation_id == organisation_id, t.value.is_not(None))
            .values(value=None, retrieved_at=at, retrieved_by=by)
        )
        return bool(result.rowcount)


class SqlFeedbackRecords(ConnectionBound):
    """Implements :class:`v2g.services.journey.ports.FeedbackRecords`."""

    def add_exit_feedback(self, feedback: ExitFeedback) -> None:
        values = asdict(feedback)
        values["reasons"] = list(feedback.reasons)
        self.conn.execute(insert(exit_feedback).values(**values))

    def exit_feedback(self, journey_ids: set[str] | None = None) -> list[ExitFeedback]:
        q = select(exit_feedback).order_by(exit_feedback.c.id)
        if journey_ids is not None:
            q = q.where(exit_feedback.c.journey_id.in_(sorted(journey_ids)))
        return [
            ExitFeedback(r["journey_id"], tuple(r["reasons"]), r["comment"], r["created_at"])
            for r in self.conn.execute(q).mappings()
        ]
