"""The agreement registry: proposals, approvals and states, and the live :class:`PolicySet`.

Lifecycle: a ``policy-admin`` proposes an agreement (YAML, validated exactly as the loader
validates a policy file; a change must bump ``version`` above every known version of that id);
two distinct auditors other than the proposer approve the content hash they reviewed; on the
second approval it becomes active and supersedes the older version of the same id. Revocation
takes effect at once. :meth:`AgreementRegistry.current` is an immutable snapshot, rebuilt and
swapped (one attribute assignment) after every change (see :mod:`._registry_snapshot`).

Audit first: each step (``propose``, ``approve``, ``activate``, ``revoke``, and refusals) is
handed to the injected :class:`AdminAudit` sink, which appends an ``admin`` entry carrying the
agreement's id, version and content hash, *before* the state is written. If the sink fails the
step fails and nothing changes; if the write fails after the entry was made, an ``error`` entry
follows (best effort) and the step fails with UNAVAILABLE.

Storage: tables ``agreement_proposals`` and ``agreement_approvals`` in the audit store's
database (same DSN: ``sqlite:///path``, a path, or ``postgresql://``), created if absent; the
agreement files under ``policies/`` are the baseline. Several replicas on one PostgreSQL
database: steps re-read the tables first, and :meth:`AgreementRegistry.refresh` (run every
``refresh_interval_s``) picks up other replicas' changes, so a revocation there reaches this
replica within that interval.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from connectors.sdk._schema import Schema
from gateway.auth import Principal
from gateway.errors import FailedPrecondition, GatewayError, PermissionDenied
from gateway.logs import get_logger
from gateway.policy._decide import PolicySet
from gateway.policy._loader import load_policies
from gateway.policy._model import Agreement
from gateway.policy._registry_db import Conflict, RegistryDb, Stmt
from gateway.policy._registry_snapshot import Snapshot, build_snapshot, parse_document
from gateway.policy._registry_sql import (
    FINGERPRINT,
    READ_ALL,
    activate_proposal,
    insert_approval,
    insert_proposal,
    set_state,
    supersede,
)
from gateway.policy._registry_types import (
    APPROVALS_REQUIRED,
    PROPOSED,
    REVOKED,
    AdminAudit,
    AdminEvent,
    AgreementRecord,
    AlreadyApproved,
    utc_now,
    who,
)

log = get_logger("pgw.policy.registry")


class AgreementRegistry:
    """Persisted agreement lifecycle over a file baseline; build it with :meth:`open`."""

    approvals_required = APPROVALS_REQUIRED

    def __init__(self, db: RegistryDb, baseline: PolicySet, documents: Mapping[str, str],
                 audit: AdminAudit) -> None:
        self._db, self._baseline, self._documents, self._audit = db, baseline, documents, audit
        self._lock = asyncio.Lock()
        self._snap = Snapshot({}, baseline)
        self._fingerprint: Any = None
        self._watch: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, dsn: str, policies: str | Path, *, audit: AdminAudit,
                   catalogues: Mapping[str, Schema] | None = None,
                   refresh_interval_s: float = 0.0) -> AgreementRegistry:
        """Load the policy directory as the baseline and the stored states over it."""
        baseline = load_policies(policies, catalogues)
        documents = await asyncio.to_thread(lambda: {
            a.content_hash: Path(a.source).read_text(encoding="utf-8")
            for a in baseline.agreements})
        db = await asyncio.to_thread(RegistryDb, dsn)
        registry = cls(db, baseline, documents, audit)
        try:
            await registry._refresh(force=True)
        except BaseException:
            db.close()
            raise
        if refresh_interval_s > 0:
            registry._watch = asyncio.create_task(registry._poll(refresh_interval_s),
                                                  name="agreement-registry-refresh")
        return registry

    def current(self) -> PolicySet:
        """The active agreements now: an immutable snapshot."""
        return self._snap.current

    def records(self, agreement_id: str = "") -> tuple[AgreementRecord, ...]:
        """Every known version (all ids, or one), by id and version."""
        return self._snap.records(agreement_id)

    def record(self, proposal_id: str) -> AgreementRecord:
        return self._snap.record(proposal_id)

    def active(self, agreement_id: str) -> AgreementRecord:
        """The active version of ``agreement_id``; NotFound if it has none."""
        return self._snap.active(agreement_id)

    # -- the lifecycle ------------------------------------------------------------------

    async def propose(self, document: str, actor: Principal, *, role: str,
                      request_id: str) -> AgreementRecord:
        """Validate and store a proposal (not in force until approved)."""
        async with self._lock:
            await self._refresh()
            agreement = parse_document(document, self._baseline)
            self._snap.check_version(agreement)
            self._snap.check_overlap(agreement)
            pid = secrets.token_hex(8)
            now = utc_now()
            await self._audit(AdminEvent(
                "propose", "allow", actor, role, (agreement,),
                f"propose: {agreement.label} as proposal {pid}; needs {APPROVALS_REQUIRED} "
                "auditor approvals", request_id))
            await self._write(actor, role, agreement, request_id,
                              [insert_proposal(pid, agreement, document, actor, now)])
            return self._snap.by_id[pid]

    async def approve(self, proposal_id: str, content_hash: str, actor: Principal, *,
                      request_id: str) -> AgreementRecord:
        """Count one auditor's approval; the second distinct one activates the proposal."""
        async with self._lock:
            await self._refresh()
            rec = self.record(proposal_id)
            a = rec.agreement
            me = who(actor.org, actor.subject)
            refusal: GatewayError | None = None
            if rec.origin != "proposal" or rec.state != PROPOSED:
                refusal = FailedPrecondition(f"proposal {proposal_id} is {rec.state} "
                                             f"({rec.origin}): only proposed ones are approved")
            elif content_hash != a.content_hash:
                refusal = FailedPrecondition(
                    f"content_hash: got {content_hash or '(empty)'}, want {a.content_hash}: "
                    f"proposal {proposal_id} is not what was reviewed; review it again")
            elif me == rec.proposer:
                refusal = PermissionDenied(f"the proposer ({me}) cannot approve proposal "
                                           f"{proposal_id}; two other auditors must")
            elif me in rec.approvers:
                refusal = AlreadyApproved(f"{me} already approved proposal {proposal_id}; "
                                          "an auditor's approval counts once")
            activate = refusal is None and len(rec.approvers) + 1 >= APPROVALS_REQUIRED
            older: AgreementRecord | None = None
            if activate:
                try:
                    older = self._snap.check_activation(a)
                except GatewayError as err:
                    refusal = err
            if refusal is not None:
                await self._audit(AdminEvent("approve", "deny", actor, "auditor", (a,),
                                             f"approve refused: {refusal.message}", request_id))
                raise refusal
            now = utc_now()
            count = len(rec.approvers) + 1
            await self._audit(AdminEvent(
                "approve", "allow", actor, "auditor", (a,),
                f"approve: {a.label} proposal {proposal_id} by {me} "
                f"({count} of {APPROVALS_REQUIRED})", request_id))
            writes = [insert_approval(proposal_id, actor, now)]
            if activate:
                replaced = (older.agreement,) if older else ()
                note = f"; supersedes {older.agreement.label}" if older else ""
                await self._audit(AdminEvent(
                    "activate", "allow", actor, "auditor", (a, *replaced),
                    f"activate: {a.label} proposal {proposal_id} approved by "
                    f"{', '.join([*rec.approvers, me])}{note}", request_id))
                writes += supersede(older, me, now) + [activate_proposal(proposal_id, me, now)]
            await self._write(actor, "auditor", a, request_id, writes)
            return self._snap.by_id[proposal_id]

    async def revoke(self, agreement_id: str, actor: Principal, *, role: str, reason: str,
                     request_id: str) -> AgreementRecord:
        """Revoke the active version of ``agreement_id``; in force no more, at once."""
        async with self._lock:
            await self._refresh()
            rec = self.active(agreement_id)
            a, me, now = rec.agreement, who(actor.org, actor.subject), utc_now()
            await self._audit(AdminEvent(
                "revoke", "allow", actor, role, (a,),
                f"revoke: {a.label} ({rec.proposal_id}) by {me}: {reason or 'no reason given'}",
                request_id))
            await self._write(actor, role, a, request_id, set_state(rec, REVOKED, me, now))
            return self._snap.by_id[rec.proposal_id]

    async def refuse(self, step: str, actor: Principal, role: str, why: str, request_id: str,
                     agreements: Iterable[Agreement] = ()) -> None:
        """Audit a refusal decided outside the registry (a missing role)."""
        await self._audit(AdminEvent(step, "deny", actor, role, tuple(agreements),
                                     f"{step} refused: {why}", request_id))

    # -- state ------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Re-read the tables (cheap when nothing changed) and swap the snapshot."""
        async with self._lock:
            await self._refresh()

    async def _refresh(self, *, force: bool = False) -> None:
        fingerprint = await asyncio.to_thread(self._db.read, FINGERPRINT)
        if not force and fingerprint == self._fingerprint:
            return
        rows, approvals = await asyncio.to_thread(self._db.read, READ_ALL)
        self._snap = build_snapshot(rows, approvals, self._baseline, self._documents)
        self._fingerprint = fingerprint

    async def _poll(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except GatewayError as err:
                log.warning("agreement_registry_refresh_failed", reason=err.reason)

    async def aclose(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with suppress(asyncio.CancelledError):
                await self._watch
        await asyncio.to_thread(self._db.close)

    async def _write(self, actor: Principal, role: str, agreement: Agreement, request_id: str,
                     statements: list[Stmt]) -> None:
        """Apply audited changes; on failure audit an ``error`` entry (best effort)."""
        try:
            try:
                await asyncio.to_thread(self._db.write, statements)
            except Conflict as exc:
                raise FailedPrecondition("a concurrent change to the same agreement won; "
                                         "list the agreements and retry",
                                         reason=f"registry conflict: {exc}") from None
        except GatewayError as err:
            with suppress(GatewayError):
                await self._audit(AdminEvent("store", "error", actor, role, (agreement,),
                                             f"not applied: {err.reason}", request_id))
            raise
        await self._refresh(force=True)

