"""The VEN's stored report queue (:class:`v2g.services.planning.grid_events.ReportQueue`) on ``vtn_reports``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from v2g.adapters.db.tables.operations import vtn_reports
from v2g.services.planning.grid_events import QueuedReport


class SqlReportQueue:
    """Reports waiting for the VTN, oldest first; sent and refused ones stay on record with their outcome."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, body: Mapping[str, Any], at: datetime) -> int:
        with self.engine.begin() as conn:
            row = conn.execute(
                insert(vtn_reports)
                .values(created_at=at, body_json=json.dumps(body, sort_keys=True), status="pending", attempts=0)
                .returning(vtn_reports.c.id)
            ).one()
        return int(row.id)

    def pending(self, limit: int) -> list[QueuedReport]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(vtn_reports.c.id, vtn_reports.c.created_at, vtn_reports.c.body_json, vtn_reports.c.attempts)
                .where(vtn_reports.c.status == "pending")
                .order_by(vtn_reports.c.id)
                .limit(limit)
            ).all()
        return [QueuedReport(r.id, r.created_at, json.loads(r.body_json), r.attempts) for r in rows]

    def mark_sent(self, report_id: int, at: datetime, answer: str | None) -> None:
        self._set(report_id, at, status="sent", sent_at=at, answer=(answer or "")[:200] or None, last_error=None)

    def mark_rejected(self, report_id: int, at: datetime, error: str) -> None:
        self._set(report_id, at, status="rejected", last_error=error[:1000])

    def mark_attempt(self, report_id: int, at: datetime, error: str) -> None:
        self._set(report_id, at, last_error=error[:1000])

    def counts(self) -> dict[str, int]:
        """Reports per status (for the operator and the tests)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(vtn_reports.c.status, func.count()).group_by(vtn_reports.c.status)).all()
        return {str(status): int(n) for status, n in rows}

    def _set(self, report_id: int, at: datetime, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(vtn_reports)
                .where(vtn_reports.c.id == report_id)
                .values(attempts=vtn_reports.c.attempts + 1, last_attempt_at=at, **values)
            )
