"""Bulk subject sets for officers: read one, checked against its entry, and send it in parts.

An entry over ``INLINE_PSEUDONYMS`` subjects names them by a subject set stored beside it
(:mod:`gateway.audit._subject_set`). Search looks inside sets, and ``GetSubjectSet`` hands a
set to an auditor (``pgw audit export`` writes it into the archive), so both read it through
:func:`checked_set`: a set that no longer hashes to its entry's digest, or that is missing,
is DATA_LOSS naming the index (never a pseudonym), not a silently wrong answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from gateway.audit._store import AuditStore
from gateway.audit._subject_set import PART_ALIGN, SubjectSet
from gateway.errors import AuditDataLoss, NotFound

__all__ = ["CHUNK_BYTES", "checked_set", "set_parts"]

#: Bytes per ``GetSubjectSetResponse``: 65,536 set items (a 2^20-subject set is 16 parts).
CHUNK_BYTES = 1 << 20


def checked_set(store: AuditStore, index: int, entry: dict[str, Any] | None = None) -> bytes:
    """The subject set of entry ``index`` (``entry``: that entry, parsed, if already read).

    NotFound if the entry lists its subjects inline; AuditDataLoss if its set is missing or
    does not match the entry's digest.
    """
    if entry is None:
        entry = json.loads(store.read(index, index + 1)[0])
    if "subject_set" not in entry:
        raise NotFound(f"audit entry {index} lists its subjects inline: it has no subject set",
                       reason="no subject set")
    blob = store.read_subject_set(index)
    problem = SubjectSet.of_entry(entry).problem(blob)
    if problem is not None or blob is None:
        raise AuditDataLoss(f"audit entry {index}: {problem}; run `pgw audit verify`")
    return blob


def set_parts(blob: bytes, size: int | None = None) -> Iterator[bytes]:
    """``blob`` in parts of ``size`` bytes (default :data:`CHUNK_BYTES`; whole items, the
    last part may be shorter)."""
    size = CHUNK_BYTES if size is None else size
    if size < PART_ALIGN or size % PART_ALIGN:
        raise ValueError(f"part size {size}: want a positive multiple of {PART_ALIGN}")
    for start in range(0, len(blob), size):
        yield blob[start:start + size]
