"""The customer's data export (a zip with README, JSON of everything and one CSV per section) and the
conversion of records to plain JSON values it and the audit log use.

The export holds the customer's own records: messages addressed to other organisations are not in it,
and secrets never are (they are kept apart, see ``secrets``)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import asdict
from datetime import datetime
from enum import Enum
from typing import Any

from v2g.journey.model import Journey
from v2g.services.actors.ports import Notification
from v2g.services.journey.ports import JourneyRepository


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums and datetimes as plain JSON values."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def owner_messages(
    repo: JourneyRepository, customer_id: str, messages: list[Notification], *, user_ids: set[str] | None = None
) -> list[Notification]:
    """The messages addressed to the customer: to their e-mail or phone, or to one of their users.

    Messages to organisations (which carry no address) are never the customer's.
    """
    customer = repo.customer(customer_id)
    addresses = {a for a in ((customer.email, customer.phone) if customer else ()) if a}
    users = user_ids if user_ids is not None else {u.id for u in repo.owner_users(customer_id)}
    return [
        m
        for m in messages
        if m.recipient_organisation_id is None
        and (
            (m.recipient_user_id is not None and m.recipient_user_id in users)
            or (m.address is not None and m.address in addresses)
        )
    ]


def build_export(repo: JourneyRepository, journey: Journey, now: datetime) -> bytes:
    """The customer's data export as zip bytes."""
    file = repo.customer_file(journey.customer_id)
    tasks = repo.tasks(journey.id)
    sections: dict[str, list[dict[str, Any]]] = {
        "profile": [to_jsonable(file.customer)],
        "sites": [to_jsonable(s) for s in file.sites],
        "vehicles": [to_jsonable(v) for v in file.vehicles],
        "chargers": [to_jsonable(c) for c in file.chargers],
        "contracts": [
            {
                "journey_id": journey.id,
                "offer": journey.offer,
                "signed_at": next(
                    (
                        t.completed_at.isoformat()
                        for t in tasks
                        if t.done and t.completed_at and "agreement" in t.item_id
                    ),
                    None,
                ),
                "status": journey.status.value,
            }
        ],
        "journey": [to_jsonable(journey)],
        "journey_history": [to_jsonable(v) for v in repo.visits({journey.id})],
        "tasks": [to_jsonable(t) for t in tasks],
        "audit_log": [to_jsonable(e) for e in repo.audit_entries(journey.id)],
        "notifications": [
            to_jsonable(n) for n in owner_messages(repo, journey.customer_id, repo.notifications(journey.id))
        ],
        "exit_feedback": [to_jsonable(f) for f in repo.exit_feedback({journey.id})],
        **file.extra,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "README.txt",
            f"V2G service data export for {file.customer.name} ({file.customer.id}), made {now.isoformat()}.\n"
            "data.json holds everything; each CSV file holds one section (sessions and telemetry appear when "
            "the platform recorded any). Times are UTC (ISO 8601); power is in kW, energy in kWh.\n",
        )
        zf.writestr("data.json", json.dumps(sections, indent=2, ensure_ascii=False, default=str))
        for name, rows in sections.items():
            zf.writestr(f"{name}.csv", _csv(rows))
    return buffer.getvalue()


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if not rows:
        return ""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()})
    return out.getvalue()
