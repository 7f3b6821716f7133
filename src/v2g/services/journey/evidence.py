"""Evidence files of tasks: an installation photo, a signed approval PDF, uploaded by the actor whose
task it is and kept through the :class:`EvidenceStore` port.

A file is accepted only when it is a PDF, PNG or JPEG by its content (its first bytes, whatever its
name says), not empty and not larger than the configured limit. The store keeps it under a name
the platform chooses (``ev-`` and random hex); the uploaded name is kept only to show it. Its
SHA-256 is recorded, and ``file:<id> sha256:<hash>`` is the value a task's evidence field takes, so
the audit log names exactly which file the task was completed with. The same content uploaded twice
for one task and field is the same evidence: the first record is answered again.

Only the actor the task is assigned to (its role, in an organisation that may see the customer)
may upload, list, download or complete with a file; everyone else gets the answers the task API
gives (404 for a task they may not see, 403 for another role's task).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from v2g.journey.model import JourneyError, Task
from v2g.services.actors.ports import DuplicateError, NotFoundError, Principal
from v2g.services.journey.service import JourneyService
from v2g.services.journey.values import JourneyView, StateConflictError

# what an evidence file may be, recognised by its first bytes
MEDIA_TYPES = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
EXTENSIONS = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}
REFERENCE = re.compile(r"^file:(ev-[0-9a-f]{32}) sha256:([0-9a-f]{64})$")


class EvidenceError(JourneyError):
    """An upload refused because of what was sent; ``field`` names the form field (``file``, ``field``)."""


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """One stored evidence file: which task and evidence field it is for, who sent it, its digest."""

    id: str
    task_id: str
    journey_id: str
    field: str
    organisation_id: str
    uploaded_by: str
    original_name: str
    media_type: str
    size_bytes: int
    sha256: str
    uploaded_at: datetime

    @property
    def reference(self) -> str:
        """The value of the task's evidence field: ``file:<id> sha256:<hash>``."""
        return f"file:{self.id} sha256:{self.sha256}"

    @property
    def download_name(self) -> str:
        """A name for the download, chosen by the platform (never the uploaded one)."""
        return f"{self.id}.{EXTENSIONS.get(self.media_type, 'bin')}"


class EvidenceStore(Protocol):
    """Where evidence files are kept (a database table, a folder)."""

    def add(self, record: EvidenceFile, content: bytes) -> None:
        """Keep the file; :class:`DuplicateError` when the task's field already has this SHA-256."""
        ...

    def for_task(self, task_id: str) -> list[EvidenceFile]:
        """The task's files, oldest first."""
        ...

    def find(self, task_id: str, field: str, sha256: str) -> EvidenceFile | None: ...

    def get(self, file_id: str) -> EvidenceFile | None: ...

    def content(self, file_id: str) -> bytes | None: ...


def media_type_of(content: bytes) -> str | None:
    """PDF, PNG or JPEG by the file's first bytes; None for anything else."""
    for media_type, signatures in MEDIA_TYPES.items():
        if any(content.startswith(s) for s in signatures):
            return media_type
    return None


def display_name(name: str) -> str:
    """The uploaded name as text to show: its last path part, printable characters only, at most 120."""
    base = re.split(r"[\\/]", name or "")[-1]
    clean = "".join(c for c in base if unicodedata.category(c)[0] not in ("C", "Z") or c == " ").strip()
    return clean[:120] or "upload"


class TaskEvidence:
    """Upload, list, download and complete-with evidence files, for the actor the task is assigned to."""

    def __init__(self, journeys: JourneyService, store: EvidenceStore, *, max_bytes: int) -> None:
        self.journeys = journeys
        self.store = store
        self.max_bytes = max_bytes

    def upload(
        self, who: Principal, task_id: str, field: str, filename: str, content: bytes
    ) -> tuple[EvidenceFile, bool]:
        """Keep ``content`` as evidence ``field`` of the task; (record, True) when new, (the earlier record,
        False) when the same content was already uploaded for that field."""
        task = self.journeys.actor_task(who, task_id)
        if task.done:
            msg = f"task {task.item_id} is already completed; its evidence cannot change"
            raise StateConflictError(msg, field="task_id")
        if field not in task.evidence_required:
            asked = ", ".join(task.evidence_required) or "no evidence"
            msg = f"field: {field!r} is not evidence this task asks for (it asks for {asked})"
            raise EvidenceError(msg, field="field")
        if not content:
            msg = "file: the file is empty"
            raise EvidenceError(msg, field="file")
        if len(content) > self.max_bytes:
            msg = f"file: {len(content)} bytes is larger than the {self.max_bytes} bytes allowed"
            raise EvidenceError(msg, field="file")
        media_type = media_type_of(content)
        if media_type is None:
            msg = "file: only PDF, PNG or JPEG files are accepted (the content is none of these)"
            raise EvidenceError(msg, field="file")
        digest = hashlib.sha256(content).hexdigest()
        earlier = self.store.find(task.id, field, digest)
        if earlier is not None:
            return earlier, False
        record = EvidenceFile(
            id=f"ev-{secrets.token_hex(16)}",
            task_id=task.id,
            journey_id=task.journey_id,
            field=field,
            organisation_id=who.organisation_id,
            uploaded_by=who.user_id,
            original_name=display_name(filename),
            media_type=media_type,
            size_bytes=len(content),
            sha256=digest,
            uploaded_at=self.journeys.clock.now(),
        )
        try:
            self.store.add(record, content)
        except DuplicateError:  # the same file sent twice at once: the other request stored it
            stored = self.store.find(task.id, field, digest)
            if stored is None:
                raise
            return stored, False
        self.journeys.record_evidence_upload(who, task, {"field": field, "file": record.reference})
        return record, True

    def files(self, who: Principal, task_id: str) -> list[EvidenceFile]:
        """The task's evidence files (the assigned actor only)."""
        task = self.journeys.actor_task(who, task_id)
        return self.store.for_task(task.id)

    def download(self, who: Principal, task_id: str, file_id: str) -> tuple[EvidenceFile, bytes]:
        """One file of the task with its content (404 for a file of another task)."""
        task = self.journeys.actor_task(who, task_id)
        record = self.store.get(file_id)
        content = self.store.content(file_id) if record is not None else None
        if record is None or content is None or record.task_id != task.id:
            msg = f"evidence file {file_id!r} not found"
            raise NotFoundError(msg)
        return record, content

    def complete(self, who: Principal, task_id: str, *, outcome: str | None, evidence: dict[str, str]) -> JourneyView:
        """Complete the task; an evidence value naming a file must be a file of this task and field."""
        if any(str(v).strip().startswith("file:") for v in evidence.values()):
            self._check_references(self.journeys.actor_task(who, task_id, allow_override=True), evidence)
        return self.journeys.complete_task(who, task_id, outcome=outcome, evidence=evidence)

    def _check_references(self, task: Task, evidence: dict[str, str]) -> None:
        for name, value in evidence.items():
            text = str(value).strip()
            if not text.startswith("file:"):
                continue
            found = REFERENCE.match(text)
            record = self.store.get(found.group(1)) if found else None
            if (
                found is None
                or record is None
                or record.task_id != task.id
                or record.field != name
                or record.sha256 != found.group(2)
            ):
                msg = f"evidence.{name}: {text[:80]!r} is not a file uploaded for this task's {name}"
                raise JourneyError(msg, field=f"evidence.{name}")
