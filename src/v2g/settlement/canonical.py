"""Content digests: SHA-256 of a value's canonical JSON (sorted keys, no spaces).

What a re-run compares to decide that nothing changed: a metering day, a statement, a transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from v2g.settlement.metering import MeterInterval


def digest(value: object) -> str:
    """SHA-256 hex of the canonical JSON of ``value``."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def intervals_digest(intervals: Iterable[MeterInterval]) -> str:
    """The digest of a run of metering intervals."""
    return digest([iv.to_record() for iv in intervals])
