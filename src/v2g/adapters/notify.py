"""Outbox sender adapters."""

from __future__ import annotations

import structlog

from v2g.services.actors.ports import Notification

log = structlog.get_logger("v2g.notify")


class LogSender:
    """Writes each message to the structured log (development and demo; no message leaves the machine)."""

    def send(self, message: Notification) -> None:
        log.debug(
            "notification",
            channel=message.channel,
            to=message.address or message.recipient_user_id or message.recipient_organisation_id,
            subject=message.subject,
            journey_id=message.journey_id,
        )
