"""The agreement registry: proposals, approvals and states, and the live :class:`PolicySet`.

Lifecycle: a ``policy-admin`` proposes an agreement (YAML, validated exactly as the loader
validates a policy file; a change must bump ``version`` above every known version of that id);
two distinct auditors other than the proposer approve the content hash they reviewed; on the
second approval it becomes active and supersedes the older version of the same id. Revocation
takes effect at once. :meth:`AgreementRegistry.current` is an immutable snapshot, rebuilt and
swapped (one attribute assignment) after every change.

Audit first: each step (``propose``, ``approve``, ``activate``, ``revoke``, and refusals) is
handed to the injected :class:`AdminAudit` sink, which appends an ``admin`` entry carrying the
agreement's id, version and content hash, *before* the state is written. If the sink fails the
step fails and nothing changes; if the write fails after the entry was made, an ``error`` entry
follows (best effort) and the step fails with UNAVAILABLE.

Storage: tables ``agreement_proposals`` and ``agreement_approvals`` in the audit store's
database (same DSN: ``sqlite:///path``, a path, or ``postgresql://``), created if absent. The
agreement files under ``policies/`` are the baseline: a file agreement is active unless the
registry holds a row for it (then the row's state rules) or a higher version of its id has
been activated. A file whose id and version match a row with another content hash stops the
start (bump the version). Several replicas on one PostgreSQL database: steps re-read the
tables first, and :meth:`AgreementRegistry.refresh` (run every ``refresh_interval_s``) picks
up other replicas' changes, so a revocation there reaches this replica within that interval.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import grpc
import yaml

from connectors.sdk._schema import Schema
from gateway.auth import Principal
from gateway.errors import (
    ConfigError,
    FailedPrecondition,
    FieldViolation,
    GatewayError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from gateway.logs import get_logger
from gateway.policy._decide import PolicySet
from gateway.policy._loader import PolicyProblem, _cross_check, _StrictLoader, load_policies
from gateway.policy._model import Agreement
from gateway.policy._parse import parse_agreement
from gateway.policy._registry_db import COLUMNS, Conflict, RegistryDb

log = get_logger("pgw.policy.registry")

PROPOSED, ACTIVE, REVOKED, SUPERSEDED = "proposed", "active", "revoked", "superseded"
STATES = (PROPOSED, ACTIVE, REVOKED, SUPERSEDED)
#: Distinct auditors, none of them the proposer, needed to activate a proposal.
APPROVALS_REQUIRED = 2
MAX_DOCUMENT = 64 * 1024
class AlreadyApproved(GatewayError):
    """This auditor's approval is already counted; it counts once."""

    code = grpc.StatusCode.ALREADY_EXISTS


@dataclass(frozen=True)
class AgreementRecord:
    """One version of one agreement and where it stands."""

    proposal_id: str
    agreement: Agreement
    document: str        # the YAML as proposed (or the file's text)
    state: str           # one of STATES
    origin: str          # "proposal" or "file"
    proposer: str = ""   # "org/subject"
    approvers: tuple[str, ...] = ()
    proposed_at: str = ""
    changed_at: str = ""


@dataclass(frozen=True)
class AdminEvent:
    """One lifecycle step to audit. ``step``: propose, approve, activate, revoke;
    ``decision``: allow, deny or error; ``agreements``: the one acted on first."""

    step: str
    decision: str
    actor: Principal
    role: str
    agreements: tuple[Agreement, ...]
    reason: str
    request_id: str


class AdminAudit(Protocol):
    """Appends one ``admin`` audit entry durably, or raises (the step then fails)."""

    def __call__(self, event: AdminEvent) -> Awaitable[None]: ...


def _who(org: str, subject: str) -> str:
    return f"{org}/{subject}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_READ_ALL = [(f"SELECT {COLUMNS} FROM agreement_proposals ORDER BY agreement_id, version", ()),
             ("SELECT proposal_id, approver_org, approver_subject FROM agreement_approvals"
              " ORDER BY approved_at, approver_org, approver_subject", ())]
_FINGERPRINT = [("SELECT COUNT(*), MAX(changed_at) FROM agreement_proposals", ()),
                ("SELECT COUNT(*) FROM agreement_approvals", ())]


class AgreementRegistry:
    """Persisted agreement lifecycle over a file baseline; build it with :meth:`open`."""

    approvals_required = APPROVALS_REQUIRED

    def __init__(self, db: RegistryDb, baseline: PolicySet, documents: Mapping[str, str],
                 audit: AdminAudit) -> None:
        self._db, self._baseline, self._documents, self._audit = db, baseline, documents, audit
        self._lock = asyncio.Lock()
        self._records: dict[str, AgreementRecord] = {}
        self._current = baseline
        self._fingerprint: Any = None
        self._watch: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, dsn: str, policies: str | Path, *, audit: AdminAudit,
                   catalogues: Mapping[str, Schema] | None = None,
                   refresh_interval_s: float = 0.0) -> AgreementRegistry:
        """Load the policy directory as the baseline and the stored states over it."""
        baseline = load_policies(policies, catalogues)
        documents = {a.content_hash: Path(a.source).read_text(encoding="utf-8")
                     for a in baseline.agreements}
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
        return self._current

    def records(self, agreement_id: str = "") -> tuple[AgreementRecord, ...]:
        """Every known version (all ids, or one), by id and version."""
        return tuple(sorted((r for r in self._records.values()
                             if not agreement_id or r.agreement.id == agreement_id),
                            key=lambda r: (r.agreement.id, r.agreement.version)))

    def record(self, proposal_id: str) -> AgreementRecord:
        try:
            return self._records[proposal_id]
        except KeyError:
            raise NotFound(f"proposal_id: got {proposal_id!r}, want a known proposal") from None

    def active(self, agreement_id: str) -> AgreementRecord:
        """The active version of ``agreement_id``; NotFound if it has none."""
        for r in self._records.values():
            if r.agreement.id == agreement_id and r.state == ACTIVE:
                return r
        known = sorted({r.state for r in self.records(agreement_id)})
        why = f"its versions are {', '.join(known)}" if known else "it is unknown"
        raise NotFound(f"agreement_id: {agreement_id!r} has no active version ({why})")

    # -- the lifecycle ------------------------------------------------------------------

    async def propose(self, document: str, actor: Principal, *, role: str,
                      request_id: str) -> AgreementRecord:
        """Validate and store a proposal (not in force until approved)."""
        async with self._lock:
            await self._refresh()
            agreement = self._parse(document)
            self._check_version(agreement)
            self._check_overlap(agreement)
            pid = secrets.token_hex(8)
            now = _now()
            await self._audit(AdminEvent(
                "propose", "allow", actor, role, (agreement,),
                f"propose: {agreement.label} as proposal {pid}; needs {APPROVALS_REQUIRED} "
                "auditor approvals", request_id))
            await self._write(actor, role, agreement, request_id, [(
                f"INSERT INTO agreement_proposals ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (pid, agreement.id, agreement.version, agreement.content_hash, document,
                 "proposal", actor.org, actor.subject, now, PROPOSED, now,
                 _who(actor.org, actor.subject)))])
            return self._records[pid]

    async def approve(self, proposal_id: str, content_hash: str, actor: Principal, *,
                      request_id: str) -> AgreementRecord:
        """Count one auditor's approval; the second distinct one activates the proposal."""
        async with self._lock:
            await self._refresh()
            rec = self.record(proposal_id)
            a = rec.agreement
            me = _who(actor.org, actor.subject)
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
                    older = self._check_activation(a)
                except GatewayError as err:
                    refusal = err
            if refusal is not None:
                await self._audit(AdminEvent("approve", "deny", actor, "auditor", (a,),
                                             f"approve refused: {refusal.message}", request_id))
                raise refusal
            now = _now()
            count = len(rec.approvers) + 1
            await self._audit(AdminEvent(
                "approve", "allow", actor, "auditor", (a,),
                f"approve: {a.label} proposal {proposal_id} by {me} "
                f"({count} of {APPROVALS_REQUIRED})", request_id))
            writes: list[tuple[str, tuple[Any, ...]]] = [(
                "INSERT INTO agreement_approvals (proposal_id, approver_org, approver_subject,"
                " approved_at) VALUES (?,?,?,?)", (proposal_id, actor.org, actor.subject, now))]
            if activate:
                replaced = (older.agreement,) if older else ()
                note = f"; supersedes {older.agreement.label}" if older else ""
                await self._audit(AdminEvent(
                    "activate", "allow", actor, "auditor", (a, *replaced),
                    f"activate: {a.label} proposal {proposal_id} approved by "
                    f"{', '.join([*rec.approvers, me])}{note}", request_id))
                writes += self._supersede(older, me, now) + [(
                    "UPDATE agreement_proposals SET state = ?, changed_at = ?, changed_by = ?"
                    " WHERE proposal_id = ? AND state = ?",
                    (ACTIVE, now, me, proposal_id, PROPOSED))]
            await self._write(actor, "auditor", a, request_id, writes)
            return self._records[proposal_id]

    async def revoke(self, agreement_id: str, actor: Principal, *, role: str, reason: str,
                     request_id: str) -> AgreementRecord:
        """Revoke the active version of ``agreement_id``; in force no more, at once."""
        async with self._lock:
            await self._refresh()
            rec = self.active(agreement_id)
            a, me, now = rec.agreement, _who(actor.org, actor.subject), _now()
            await self._audit(AdminEvent(
                "revoke", "allow", actor, role, (a,),
                f"revoke: {a.label} ({rec.proposal_id}) by {me}: {reason or 'no reason given'}",
                request_id))
            await self._write(actor, role, a, request_id,
                              self._set_state(rec, REVOKED, me, now))
            return self._records[rec.proposal_id]

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
        fingerprint = await asyncio.to_thread(self._db.read, _FINGERPRINT)
        if not force and fingerprint == self._fingerprint:
            return
        rows, approvals = await asyncio.to_thread(self._db.read, _READ_ALL)
        self._records = self._build(rows, approvals)
        self._current = PolicySet(
            self._baseline.purposes,
            (r.agreement for r in self.records() if r.state == ACTIVE),
            self._baseline.catalogues)
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

    def _build(self, rows: list[tuple[Any, ...]],
               approvals: list[tuple[Any, ...]]) -> dict[str, AgreementRecord]:
        approvers: dict[str, list[str]] = {}
        for pid, org, subject in approvals:
            approvers.setdefault(str(pid), []).append(_who(str(org), str(subject)))
        records: dict[str, AgreementRecord] = {}
        for (pid, aid, version, digest, document, origin, p_org, p_sub, at, state, changed,
             _by) in rows:
            agreement = self._parse(str(document), source=f"registry:{pid}")
            if (agreement.id, agreement.version, agreement.content_hash) != (aid, version, digest):
                raise ConfigError(f"agreement registry row {pid}: stored {aid} v{version} "
                                  f"{digest} does not match its document")
            records[str(pid)] = AgreementRecord(
                str(pid), agreement, str(document), str(state), str(origin),
                _who(str(p_org), str(p_sub)) if p_org else "",
                tuple(approvers.get(str(pid), ())), str(at), str(changed))
        by_version = {(r.agreement.id, r.agreement.version): r for r in records.values()}
        for a in self._baseline.agreements:
            row = by_version.get((a.id, a.version))
            if row is not None:
                if row.agreement.content_hash != a.content_hash:
                    raise ConfigError(
                        f"{a.source}: version: {a.label} in the file differs from {a.label} in "
                        f"the agreement registry ({row.proposal_id}, {row.agreement.content_hash})"
                        "; a changed agreement needs a new version and approval")
                continue
            newer = any(r.agreement.id == a.id and r.agreement.version > a.version
                        and r.state != PROPOSED for r in records.values())
            pid = f"file:{a.id}@v{a.version}"
            records[pid] = AgreementRecord(pid, a, self._documents[a.content_hash],
                                           SUPERSEDED if newer else ACTIVE, "file")
        best: dict[str, AgreementRecord] = {}
        for r in records.values():  # at most one active version per id: the highest
            if r.state == ACTIVE:
                other = best.get(r.agreement.id)
                if other is None or r.agreement.version > other.agreement.version:
                    best[r.agreement.id] = r
        return {pid: r if r.state != ACTIVE or best[r.agreement.id] is r
                else replace(r, state=SUPERSEDED) for pid, r in records.items()}

    def _parse(self, document: str, source: str = "proposal") -> Agreement:
        if len(document.encode("utf-8")) > MAX_DOCUMENT:
            raise InvalidArgument(FieldViolation("agreement_yaml",
                                                 f"want at most {MAX_DOCUMENT} bytes"))
        try:
            data = yaml.load(document, Loader=_StrictLoader)
        except yaml.YAMLError as exc:
            raise InvalidArgument(FieldViolation("yaml", " ".join(str(exc).split()))) from None
        problems: list[tuple[str, str]] = []
        agreement = parse_agreement(data, source, self._baseline.purposes,
                                    self._baseline.catalogues, problems)
        if problems or agreement is None:
            raise InvalidArgument([FieldViolation(rule, reason) for rule, reason in problems]
                                  or FieldViolation("document", "not an agreement"))
        return agreement

    def _check_version(self, a: Agreement) -> None:
        known = self.records(a.id)
        if known and a.version <= known[-1].agreement.version:
            top = known[-1]
            raise InvalidArgument(FieldViolation("version", (
                f"got {a.version}, want above {top.agreement.version}: {top.agreement.label} "
                f"is already {top.state} ({top.proposal_id}); a change must bump the version")))

    def _check_overlap(self, a: Agreement) -> None:
        others = [r.agreement for r in self._records.values()
                  if r.state == ACTIVE and r.agreement.id != a.id]
        problems: list[PolicyProblem] = []
        _cross_check([*others, a], problems)
        if problems:
            raise InvalidArgument([FieldViolation(p.rule, p.reason) for p in problems])

    def _check_activation(self, a: Agreement) -> AgreementRecord | None:
        """The active version this one replaces; refuses a downgrade or an overlap."""
        try:
            older = self.active(a.id)
        except NotFound:
            older = None
        top = max((r.agreement.version for r in self.records(a.id) if r.state != PROPOSED),
                  default=0)
        if a.version <= top:
            raise FailedPrecondition(f"version: {a.label} is not above v{top} of {a.id}, "
                                     "which was already in force; propose a higher version")
        try:
            self._check_overlap(a)
        except InvalidArgument as err:
            raise FailedPrecondition(f"overlap: {err.message}") from None
        return older

    def _set_state(self, rec: AgreementRecord, state: str, me: str,
                   now: str) -> list[tuple[str, tuple[Any, ...]]]:
        if rec.origin == "file" and rec.proposal_id.startswith("file:") and not rec.proposed_at:
            a = rec.agreement
            return [(f"INSERT INTO agreement_proposals ({COLUMNS})"
                     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                     (rec.proposal_id, a.id, a.version, a.content_hash, rec.document, "file",
                      "", "", now, state, now, me))]
        return [("UPDATE agreement_proposals SET state = ?, changed_at = ?, changed_by = ?"
                 " WHERE proposal_id = ? AND state = ?",
                 (state, now, me, rec.proposal_id, ACTIVE))]

    def _supersede(self, older: AgreementRecord | None, me: str,
                   now: str) -> list[tuple[str, tuple[Any, ...]]]:
        return [] if older is None else self._set_state(older, SUPERSEDED, me, now)

    async def _write(self, actor: Principal, role: str, agreement: Agreement, request_id: str,
                     statements: list[tuple[str, tuple[Any, ...]]]) -> None:
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

