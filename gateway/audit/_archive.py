"""Officer archives: the JSON lines ``pgw audit export`` writes, and a log checked against one.

One JSON object per line::

    {"index": 41, "tree_size": 42, "entry": {...the entry...}, "inclusion_proof": ["<hex>", ...],
     "subject_set": "<base64>"}

``entry`` is the entry as a JSON object; its canonical bytes (what the leaf hashes) are
re-made from it with sorted keys, no whitespace and UTF-8, so each line proves itself with its
inclusion proof. ``subject_set`` appears only for an entry that has one (more than
``INLINE_PSEUDONYMS`` subjects): the raw set, standard padded base64. An archive is kept for
retention and for offline questions, and "who accessed this person?" cannot be answered from
a digest, so the export carries the sets themselves; the entry's digest makes them as
trustworthy as the entry. A line without its set (an archive written before sets existed, or
with ``--digests-only``) is still accepted for the rewrite check, which compares entries.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.audit._entry import AuditEntry
from gateway.audit._store import AuditStore

__all__ = ["ArchivedEntry", "archive_finding", "export_line", "parse_archive"]

CHUNK = 10_000


@dataclass(frozen=True)
class ArchivedEntry:
    """One archive line: the entry's index and canonical bytes, and its set if carried."""

    index: int
    entry: bytes
    subject_set: bytes | None


def export_line(index: int, tree_size: int, entry: bytes, proof: Sequence[bytes],
                subject_set: bytes | None = None) -> str:
    """The archive line of one exported entry (no trailing newline)."""
    doc: dict[str, Any] = {"index": index, "tree_size": tree_size, "entry": json.loads(entry),
                           "inclusion_proof": [h.hex() for h in proof]}
    if subject_set is not None:
        doc["subject_set"] = base64.b64encode(subject_set).decode("ascii")
    return json.dumps(doc)


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def parse_archive(text: str) -> list[ArchivedEntry]:
    """Every line of an archive; ValueError names the first line that is not an export line."""
    archived = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            blob = doc.get("subject_set")
            archived.append(ArchivedEntry(
                int(doc["index"]), _canonical(doc["entry"]),
                None if blob is None else base64.b64decode(blob, validate=True)))
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise ValueError(f"archive line {number}: not an export line") from None
    return archived


def _set_problem(item: ArchivedEntry) -> str | None:
    """Why an archived set does not belong to its archived entry (None: it does, or none)."""
    if item.subject_set is None:
        return None
    try:
        described = AuditEntry.decode(item.entry).subject_set
    except ValueError:
        return None  # the entry comparison below reports the line
    if described is None:
        return "your archive holds a subject set for an entry that has none"
    problem = described.problem(item.subject_set)
    return None if problem is None else f"in your archive: {problem}"


def archive_finding(export: str, store: AuditStore) -> tuple[int | None, str] | None:
    """Compare the log with an archive; ``(index, reason)`` of the first difference, or None.

    Names the exact first entry that was rewritten, or where the log was truncated; an
    archived subject set that does not hash to its archived entry's digest is named too."""
    try:
        archived = parse_archive(export)
    except ValueError as exc:
        return None, f"--since {exc}"
    for start in range(0, len(archived), CHUNK):
        part = archived[start:start + CHUNK]
        stored = dict(store.read_indexed(part[0].index, part[-1].index + 1))
        for item in part:
            if item.index not in stored:
                return item.index, ("entry missing compared with your archive: the log was "
                                    "truncated or the entry deleted")
            if stored[item.index] != item.entry:
                return item.index, ("entry differs from your archive: rewritten (truncated "
                                    "and re-appended, or altered and re-signed)")
            problem = _set_problem(item)
            if problem is not None:
                return item.index, problem
    return None
