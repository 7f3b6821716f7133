"""The IEEE 2030.5 client's report queue in the database (kept across restarts until the server took them)."""

from __future__ import annotations

from sqlalchemy import Engine, delete, func, insert, select, update

from v2g.adapters.db.tables.grid import ieee2030_5_reports as t
from v2g.services.planning.der_reports import Report


class SqlDerReportQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, report: Report) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(t).values(
                    created_at=report.created_at,
                    area_id=report.area_id,
                    kind=report.kind,
                    target=report.target,
                    body=report.body,
                    attempts=0,
                )
            )

    def oldest(self, limit: int) -> list[Report]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).order_by(t.c.id).limit(limit)).all()
        return [Report(r.created_at, r.area_id, r.kind, r.target, r.body, r.id, r.attempts) for r in rows]

    def delivered(self, report_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(t).where(t.c.id == report_id))

    def failed(self, report_id: int, error: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.id == report_id).values(attempts=t.c.attempts + 1, last_error=error[:400]))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t)).scalar_one())
