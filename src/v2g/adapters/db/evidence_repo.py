"""Evidence files of tasks in the database (``task_evidence_files``): implements
:class:`v2g.services.journey.evidence.EvidenceStore`, each call in its own transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from v2g.adapters.db.tables.evidence import task_evidence_files as files
from v2g.services.actors.ports import DuplicateError
from v2g.services.journey.evidence import EvidenceFile

_RECORD = [c for c in files.c if c.name != "content"]


def _record(row: Any) -> EvidenceFile:
    return EvidenceFile(**dict(row))


class SqlEvidenceStore:
    """Evidence files as rows: the content beside its SHA-256, one row per task, field and digest."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, record: EvidenceFile, content: bytes) -> None:
        values = {c.name: getattr(record, c.name) for c in _RECORD} | {"content": content}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(files).values(**values))
        except IntegrityError as exc:
            msg = f"evidence {record.field} of task {record.task_id} already has a file with this SHA-256"
            raise DuplicateError(msg) from exc

    def for_task(self, task_id: str) -> list[EvidenceFile]:
        q = select(*_RECORD).where(files.c.task_id == task_id).order_by(files.c.uploaded_at, files.c.id)
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(q).mappings()]

    def find(self, task_id: str, field: str, sha256: str) -> EvidenceFile | None:
        q = select(*_RECORD).where(files.c.task_id == task_id, files.c.field == field, files.c.sha256 == sha256)
        with self.engine.connect() as conn:
            row = conn.execute(q).mappings().first()
        return _record(row) if row is not None else None

    def get(self, file_id: str) -> EvidenceFile | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_RECORD).where(files.c.id == file_id)).mappings().first()
        return _record(row) if row is not None else None

    def content(self, file_id: str) -> bytes | None:
        with self.engine.connect() as conn:
            data = conn.execute(select(files.c.content).where(files.c.id == file_id)).scalar()
        return bytes(data) if data is not None else None
