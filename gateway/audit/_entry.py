"""Canonical audit entries: one per gateway decision, encoded to deterministic bytes.

The bytes of :meth:`AuditEntry.encode` are what the Merkle log hashes (the leaf is
H(0x00 || bytes)), so the encoding is fixed: UTF-8 JSON, keys sorted, no whitespace,
non-ASCII kept as UTF-8, and a version field ``"v"``. :meth:`AuditEntry.decode` accepts
only that canonical form, so one entry has exactly one leaf hash.

Two forms, chosen by the subject count alone (:mod:`gateway.audit._subject_set`):

* ``"v": 1`` lists ``"subject_pseudonyms"`` inline: at most ``INLINE_PSEUDONYMS`` (1024) of
  them. Byte for byte the format of every entry written before subject sets existed.
* ``"v": 3`` carries ``"subject_set": {"count": N, "sha256": ...}`` instead (N > 1024); the
  subjects are stored beside the entry as set items (:mod:`gateway.audit._set_items`). The
  version changes because a reader of the v1 format that tolerates a missing key (as the
  officer search once did, with ``entry.get("subject_pseudonyms", [])``) would read a set
  entry as naming nobody; a v1-only reader checking ``"v"`` refuses it instead.
* ``"v": 2`` is the same form with sets of HMAC pseudonyms (the raw bytes of the inline
  form), as written before set items; still read, searched and verified, no longer written.

``"v"`` follows the form, so it adds no second encoding: v1 with a set, v2 or v3 with a list,
or either form on the wrong side of the threshold is refused.

**No raw personal data.** An entry never holds a raw subject id, name or value: data
subjects appear only as keyed pseudonyms (:mod:`gateway.audit._pseudonyms`), which an
officer holding the key can recompute to answer "who accessed this person?". Requester
fields name the *caller* (organisation and authenticated subject), not data subjects.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from gateway.audit._pseudonyms import subject_pseudonym, subject_pseudonyms
from gateway.audit._subject_set import INLINE_PSEUDONYMS, VERSION_HMAC_SET, SubjectSet

__all__ = ["AgreementRef", "AuditEntry", "SubjectSet", "format_time",
           "subject_pseudonym", "subject_pseudonyms"]

VERSION = 1
#: Version of entries whose subjects are in a subject set of set items (module docstring).
VERSION_SUBJECT_SET = 3
KINDS = frozenset({"query", "explain", "compute", "join", "admin"})
DECISIONS = frozenset({"allow", "deny", "error"})
_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_HEX_DIGITS = b"0123456789abcdef"
_HEX_RE = re.compile(r"(?:[0-9a-f]{2})*")


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2025-01-02T03:04:05.000006Z``."""
    if moment.tzinfo is None:
        raise ValueError("audit time: want an aware datetime, got a naive one")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class AgreementRef:
    """The data-sharing agreement a decision applied: id, version and content hash."""

    id: str
    version: int
    content_hash: str


def _fail(field: str, got: object, want: str) -> ValueError:
    return ValueError(f"audit entry field {field!r}: got {got!r}, want {want}")


def _strs(field: str, value: object, size: int | None = None) -> None:
    if not isinstance(value, tuple) or not all(
            isinstance(v, str) if size is None else
            isinstance(v, tuple) and len(v) == size and all(isinstance(s, str) for s in v)
            for v in value):
        raise _fail(field, type(value).__name__, "a tuple of " +
                    ("strings" if size is None else f"{size}-tuples of strings"))


def _check_pseudonyms(value: object) -> None:
    # C-level passes only (up to INLINE_PSEUDONYMS of them, on the request path)
    if not isinstance(value, tuple) or not set(map(type, value)) <= {str}:
        raise _fail("subject_pseudonyms", type(value).__name__, "a tuple of strings")
    if not set(map(len, value)) <= {64} or "".join(value).encode(
            "ascii", "replace").translate(None, _HEX_DIGITS):
        raise _fail("subject_pseudonyms", "<not a pseudonym>", "64 lowercase hex")


@dataclass(frozen=True)
class AuditEntry:
    """One audited decision. Field meanings follow DESIGN.md, section "Audit chain".

    Subjects are either listed (``subject_pseudonyms``, at most ``INLINE_PSEUDONYMS``) or,
    for more, described by ``subject_set`` (then ``subject_pseudonyms`` is empty and the set's
    count equals ``subject_count``); the recorder decides and stores the set beside the entry.
    """

    time: str
    request_id: str
    kind: str
    requester_org: str
    requester_subject: str
    role: str
    purpose: str
    agreements: tuple[AgreementRef, ...]
    partners: tuple[str, ...]
    released: tuple[tuple[str, str, str], ...]  # (partner, field, transform)
    subject_count: int
    subject_pseudonyms: tuple[str, ...]
    decision: str
    reason: str
    response_digest: str
    subject_set: SubjectSet | None = None

    def __post_init__(self) -> None:
        for name in ("time", "request_id", "kind", "requester_org", "requester_subject",
                     "role", "purpose", "decision", "reason", "response_digest"):
            if not isinstance(getattr(self, name), str):
                raise _fail(name, getattr(self, name), "a string")
        if not _TIME_RE.fullmatch(self.time):
            raise _fail("time", self.time, "RFC 3339 UTC with microseconds")
        try:
            datetime.fromisoformat(self.time[:-1])  # month 13 etc. (the shape is checked above)
        except ValueError:
            raise _fail("time", self.time, "a real calendar time") from None
        if self.kind not in KINDS:
            raise _fail("kind", self.kind, f"one of {sorted(KINDS)}")
        if self.decision not in DECISIONS:
            raise _fail("decision", self.decision, f"one of {sorted(DECISIONS)}")
        _strs("partners", self.partners)
        _strs("released", self.released, 3)
        _check_pseudonyms(self.subject_pseudonyms)
        if not isinstance(self.agreements, tuple) or not all(
                isinstance(a, AgreementRef) and isinstance(a.id, str)
                and isinstance(a.content_hash, str) and type(a.version) is int
                for a in self.agreements):
            raise _fail("agreements", self.agreements, "a tuple of AgreementRef")
        if type(self.subject_count) is not int or self.subject_count < 0:
            raise _fail("subject_count", self.subject_count, "an int >= 0")
        if not _HEX_RE.fullmatch(self.response_digest):
            raise _fail("response_digest", self.response_digest, "lowercase hex or ''")
        self._check_subject_form()

    def _check_subject_form(self) -> None:
        if self.subject_set is None:
            if len(self.subject_pseudonyms) > INLINE_PSEUDONYMS:
                raise _fail("subject_pseudonyms", f"{len(self.subject_pseudonyms)} pseudonyms",
                            f"at most {INLINE_PSEUDONYMS} inline (more go in a subject_set)")
            return
        if not isinstance(self.subject_set, SubjectSet):
            raise _fail("subject_set", type(self.subject_set).__name__, "a SubjectSet or None")
        if self.subject_pseudonyms:
            raise _fail("subject_pseudonyms", f"{len(self.subject_pseudonyms)} pseudonyms",
                        "none beside a subject_set")
        if self.subject_set.count != self.subject_count:
            raise _fail("subject_set", f"count {self.subject_set.count}",
                        f"subject_count {self.subject_count}")

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON-ready dict, including ``"v"``."""
        # Built by hand: dataclasses.asdict deep-copies and costs 6x more on the hot path.
        doc: dict[str, Any] = {
            "time": self.time, "request_id": self.request_id, "kind": self.kind,
            "requester_org": self.requester_org, "requester_subject": self.requester_subject,
            "role": self.role, "purpose": self.purpose,
            "agreements": [{"id": a.id, "version": a.version, "content_hash": a.content_hash}
                           for a in self.agreements],
            "partners": list(self.partners), "released": [list(r) for r in self.released],
            "subject_count": self.subject_count, "decision": self.decision,
            "reason": self.reason, "response_digest": self.response_digest,
        }
        if self.subject_set is None:
            doc.update(subject_pseudonyms=list(self.subject_pseudonyms), v=VERSION)
        else:
            doc.update(subject_set=self.subject_set.to_json(),
                       v=VERSION_HMAC_SET if self.subject_set.legacy else VERSION_SUBJECT_SET)
        return doc

    def encode(self) -> bytes:
        """Canonical bytes: UTF-8 JSON, sorted keys, no whitespace, ``"v"`` last."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> AuditEntry:
        """Inverse of :meth:`encode`; rejects anything but the canonical encoding."""
        try:
            doc = json.loads(data.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError both are
            raise ValueError("audit entry: got bytes that are not UTF-8 JSON") from None
        names = {f.name for f in fields(cls)} | {"v"}
        inline, bulk = names - {"subject_set"}, names - {"subject_pseudonyms"}
        if not isinstance(doc, dict) or set(doc) not in (inline, bulk):
            got = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
            raise ValueError(f"audit entry keys: got {got}, want {sorted(inline)} or with "
                             "subject_set in place of subject_pseudonyms")
        versions = (VERSION,) if set(doc) == inline else (VERSION_SUBJECT_SET, VERSION_HMAC_SET)
        version = doc.pop("v")
        if version not in versions or type(version) is not int:
            raise ValueError(f"audit entry version: want {' or '.join(map(str, versions))} "
                             "for this form")
        try:
            agreements = tuple(AgreementRef(**a) for a in doc.pop("agreements"))
        except TypeError:
            raise _fail("agreements", "<malformed>", "objects id, version, content_hash") from None
        if "subject_set" in doc:
            doc["subject_set"] = SubjectSet.from_json(doc["subject_set"],
                                                      legacy=version == VERSION_HMAC_SET)
            doc["subject_pseudonyms"] = []
        for name in ("partners", "subject_pseudonyms", "released"):
            if not isinstance(doc[name], list):
                raise _fail(name, type(doc[name]).__name__, "a list")
        doc["released"] = tuple(tuple(r) if isinstance(r, list) else r for r in doc["released"])
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in doc.items()}
        entry = cls(agreements=agreements, **values)
        if entry.encode() != data:
            raise ValueError("audit entry: not in canonical encoding")
        return entry
