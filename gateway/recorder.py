"""Audit first: turn each decision into an audit entry, append it durably, build the receipt.

The entry names who asked, for what purpose, under which agreements (id, version, content
hash), which fields left under which transforms, for how many subjects, and the keyed
pseudonyms of those subjects, so an officer can later answer "who accessed this person?"
without any raw id in the log. If the append fails, the caller gets ``AuditUnavailable``
and must release nothing.

Inline or side: up to ``INLINE_PSEUDONYMS`` subjects are listed in the entry; a bulk compute's
are packed into a subject set (16-byte set items, :mod:`gateway.audit._set_items`) that the log
stores in the entry's own transaction, while the entry carries only its count and SHA-256.
The receipt (entry, proof, checkpoint) therefore stays about a kilobyte at 2^20 subjects
instead of 70 MB, which the 16 MiB message ceiling could not carry.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.audit import (
    INLINE_PSEUDONYMS,
    AuditEntry,
    SubjectSet,
    subject_pseudonyms,
    subject_set_items,
)
from gateway.audit import AgreementRef as EntryAgreement
from gateway.audit._log import AuditLog
from gateway.audit_search import person_forms
from gateway.auth import Principal
from gateway.errors import AuditUnavailable, GatewayError
from gateway.logs import get_logger
from gateway.metrics import AUDIT_APPEND_SECONDS, DECISIONS, agreement_label
from gateway.pb.pgw.v1 import common_pb2

log = get_logger("pgw.audit")


def response_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: Above this many subjects their audit form is computed in a worker thread.
INLINE_SUBJECTS = 4096


@dataclass(frozen=True)
class Pseudonymised:
    """The audit form of a list of subjects, computed ahead of the decision (a bulk compute
    hashes 2^20 of them while the partners encrypt, not after): the inline pseudonyms, or, for
    more than ``INLINE_PSEUDONYMS``, the subject set and its description."""

    count: int
    inline: tuple[str, ...] = ()
    subject_set: SubjectSet | None = None
    blob: bytes | None = None

    def __len__(self) -> int:
        return self.count


class AuditRecorder:
    """Builds entries and appends them to the (group-commit) audit log."""

    def __init__(self, audit_log: AuditLog, pseudonym_key: bytes) -> None:
        self.log = audit_log
        self._key = pseudonym_key

    def pseudonyms(self, subjects: Sequence[str]) -> tuple[str, ...]:
        return subject_pseudonyms(self._key, subjects)

    def person_forms(self, subject: str) -> dict[str, Any]:
        """A normalised id's keyed forms, for an officer's search (``gateway.audit_search``)."""
        return person_forms(self._key, subject)

    def pseudonymised(self, subjects: Sequence[str]) -> Pseudonymised:
        """Inline pseudonyms up to ``INLINE_PSEUDONYMS`` subjects, else a subject set (in a
        thread for many, see :meth:`pseudonymise`)."""
        if len(subjects) <= INLINE_PSEUDONYMS:
            return Pseudonymised(len(subjects), inline=self.pseudonyms(subjects))
        blob = subject_set_items(self._key, subjects)
        return Pseudonymised(len(subjects), subject_set=SubjectSet.of(blob), blob=blob)

    def pseudonymise(self, subjects: Sequence[str]) -> asyncio.Task[Pseudonymised]:
        """Start computing the audit form of ``subjects`` (e.g. while partners encrypt); pass
        the task's result to :meth:`record` as ``subjects``."""
        return asyncio.ensure_future(self._audited(subjects))

    async def _audited(self, subjects: Sequence[str]) -> Pseudonymised:
        """:meth:`pseudonymised`, on the event loop for a few subjects, else in a thread
        (numpy and AES release the GIL): never a long step on the loop."""
        if len(subjects) <= INLINE_SUBJECTS:
            return self.pseudonymised(subjects)
        return await asyncio.to_thread(self.pseudonymised, subjects)

    async def record(self, *, kind: str, request_id: str, principal: Principal, role: str,
                     purpose: str, agreements: Sequence[common_pb2.AgreementRef],
                     partners: Sequence[str], released: Sequence[tuple[str, str, str]],
                     subjects: Sequence[str] | Pseudonymised, decision: str, reason: str,
                     digest: str = "") -> common_pb2.AuditReceipt:
        audited = (subjects if isinstance(subjects, Pseudonymised)
                   else await self._audited(subjects))
        entry = AuditEntry(
            time=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            request_id=request_id, kind=kind, requester_org=principal.org,
            requester_subject=principal.subject, role=role, purpose=purpose,
            agreements=tuple(EntryAgreement(a.id, a.version, a.content_hash) for a in agreements),
            partners=tuple(sorted(partners)), released=tuple(sorted(released)),
            subject_count=audited.count, subject_pseudonyms=audited.inline,
            subject_set=audited.subject_set, decision=decision, reason=reason,
            response_digest=digest)
        data = entry.encode()
        try:
            with AUDIT_APPEND_SECONDS.time():
                result = await self.log.append(data, audited.blob)
        except GatewayError:
            log.error("audit_append_failed", request_id=request_id)
            raise
        except Exception as exc:  # noqa: BLE001 - any store failure: fail closed
            log.error("audit_append_failed", request_id=request_id, exc_type=type(exc).__name__)
            raise AuditUnavailable("audit append failed", reason=type(exc).__name__) from None
        # counted once the decision is durable; labels are kinds and agreement ids, never subjects
        DECISIONS.inc(kind=kind, decision=decision,
                      agreement=agreement_label([a.id for a in agreements]))
        proof = self.log.inclusion_proof(result.index, result.size)
        return common_pb2.AuditReceipt(
            leaf_index=result.index, tree_size=result.size, entry=data,
            inclusion_proof=proof, checkpoint=result.checkpoint_note, hash=self.log.hasher.name)
