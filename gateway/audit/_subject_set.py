"""Bulk subject sets: the pseudonyms of a large entry, stored beside it and bound by a digest.

An entry lists its subjects' pseudonyms inline (64 hex digits each) up to
:data:`INLINE_PSEUDONYMS`. Above that, the list would dominate the entry (70 MB at 2^20
subjects, hashed into the leaf and returned in every receipt), so the entry carries instead

    "subject_set": {"count": N, "sha256": "<64 lowercase hex>"}

and the store keeps the **set** in the same transaction, keyed by the entry's index:

* set  = P_1 || P_2 || ... || P_N in the entry's subject order: in a ``"v": 3`` entry each P_i
  a 16-byte set item (:mod:`gateway.audit._set_items`), ``len(set) == 16 * N``; in a ``"v": 2``
  entry, written before set items existed (:attr:`SubjectSet.legacy`), the raw 32-byte HMAC
  pseudonym (the bytes whose hex the inline form would list), ``len(set) == 32 * N``.
* sha256 = lowercase hex SHA-256(set): no prefix and no length field (the length is fixed by
  ``count``), so ``sha256sum`` over the stored BLOB reproduces it. It is SHA-256 whatever hash
  the Merkle log uses (the key names the algorithm).

The digest is inside the entry, so the Merkle leaf commits to the set without containing it:
a set changed after the fact no longer hashes to its entry's digest (``pgw audit verify``
checks every one). Which form an entry takes is a function of its subject count alone (at most
:data:`INLINE_PSEUDONYMS`: inline; more: a set), so one entry still has exactly one encoding;
the threshold is part of the format and changing it means a new entry version.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["HMAC_BYTES", "INLINE_PSEUDONYMS", "ITEM_BYTES", "PART_ALIGN", "VERSION_HMAC_SET",
           "SubjectSet", "holds_pseudonym"]

#: Most pseudonyms an entry lists inline; more go to a subject set. Agreements cap queries
#: and joins far below this, so only bulk computes (up to 2^21 subjects) have sets.
INLINE_PSEUDONYMS = 1024
#: Bytes per set item (``"v": 3`` sets) and per HMAC-SHA256 pseudonym (``"v": 2`` sets).
ITEM_BYTES, HMAC_BYTES = 16, 32
#: Set parts sent to officers are a multiple of this: whole items of either kind.
PART_ALIGN = 32
#: The entry version whose set holds HMAC pseudonyms (read, no longer written).
VERSION_HMAC_SET = 2
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SubjectSet:
    """What an entry says about its stored set: how many items and their SHA-256; ``legacy``:
    the items are HMAC pseudonyms (a ``"v": 2`` entry), not set items."""

    count: int
    sha256: str
    legacy: bool = False

    def __post_init__(self) -> None:
        if type(self.count) is not int or self.count <= INLINE_PSEUDONYMS:
            raise ValueError(f"audit entry field 'subject_set': count got {self.count!r}, want "
                             f"an int > {INLINE_PSEUDONYMS} (fewer are listed inline)")
        if not isinstance(self.sha256, str) or not _HEX64.fullmatch(self.sha256):
            raise ValueError("audit entry field 'subject_set': sha256 is not 64 lowercase hex")

    @property
    def width(self) -> int:
        """Bytes per item of this set."""
        return HMAC_BYTES if self.legacy else ITEM_BYTES

    @classmethod
    def of(cls, blob: bytes, *, legacy: bool = False) -> SubjectSet:
        """The description of ``blob`` (items, concatenated; HMAC pseudonyms if ``legacy``)."""
        width = HMAC_BYTES if legacy else ITEM_BYTES
        if len(blob) % width:
            raise ValueError(f"subject set of {len(blob)} bytes: want a multiple of {width}")
        return cls(len(blob) // width, hashlib.sha256(blob).hexdigest(), legacy)

    @classmethod
    def of_entry(cls, doc: dict[str, Any]) -> SubjectSet:
        """The set an entry (parsed JSON, with a ``subject_set``) describes."""
        return cls.from_json(doc["subject_set"], legacy=doc.get("v") == VERSION_HMAC_SET)

    @classmethod
    def from_json(cls, value: Any, *, legacy: bool = False) -> SubjectSet:
        """From the entry's JSON object; exactly the keys ``count`` and ``sha256``."""
        if not isinstance(value, dict) or set(value) != {"count", "sha256"}:
            got = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise ValueError(f"audit entry field 'subject_set': got {got}, want an object "
                             "with count and sha256")
        return cls(value["count"], value["sha256"], legacy)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "sha256": self.sha256}

    def problem(self, blob: bytes | None) -> str | None:
        """Why ``blob`` is not this set (None if it is). Names sizes only, never content."""
        if blob is None:
            return f"subject set missing (the entry names {self.count} subjects)"
        if len(blob) != self.width * self.count:
            return (f"subject set is {len(blob)} bytes, want {self.width} x {self.count} "
                    f"= {self.width * self.count}")
        if hashlib.sha256(blob).hexdigest() != self.sha256:
            return "subject set does not hash to the entry's digest (altered after the fact)"
        return None


def holds_pseudonym(blob: bytes, pseudonym: str | bytes) -> bool:
    """Whether ``blob`` holds ``pseudonym`` (a 16-byte set item, or a 32-byte HMAC pseudonym,
    raw or hex) as one of its items, items being as long as it: matches that straddle two
    items are skipped, so only whole, aligned items count."""
    raw = bytes.fromhex(pseudonym) if isinstance(pseudonym, str) else pseudonym
    width = len(raw)
    if width not in (ITEM_BYTES, HMAC_BYTES):
        raise ValueError(f"pseudonym of {width} bytes: want {ITEM_BYTES} or {HMAC_BYTES}")
    at = blob.find(raw)
    while at != -1 and at % width:
        at = blob.find(raw, at + 1)
    return at != -1
