"""Outbox delivery: every pending message is handed to a sender adapter once and marked sent or failed."""

from __future__ import annotations

from typing import Protocol

from v2g.services.actors.ports import Notification, OutboxUnitOfWork
from v2g.services.clock import Clock


class Sender(Protocol):
    """Delivers one message on its channel (e-mail, SMS, app push); raises on failure."""

    def send(self, message: Notification) -> None: ...


def deliver_pending(uow: OutboxUnitOfWork, sender: Sender, clock: Clock, *, limit: int = 100) -> tuple[int, int]:
    """Deliver up to ``limit`` pending messages; return (sent, failed). A failure keeps the error text."""
    sent = failed = 0
    with uow() as repo:
        for message in repo.pending_notifications(limit):
            assert message.id is not None
            try:
                sender.send(message)
            except Exception as exc:
                repo.mark_notification(
                    message.id, status="failed", at=clock.now(), error=f"{type(exc).__name__}: {exc}"
                )
                failed += 1
            else:
                repo.mark_notification(message.id, status="sent", at=clock.now(), error=None)
                sent += 1
    return sent, failed
