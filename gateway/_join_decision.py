"""The hub's decision on a join job, the audit of it, and the spec it signs for the partner.

:func:`decide` validates the opening ``JoinStart`` and checks it against the one agreement in
force (org, role, purpose, partner, the join grant: mode and output; intersection-sum also needs
the aggregate grant with op ``intersection-sum`` and its ``min_k``; the requester set is bounded
by ``limits.max_subjects_per_request``). :func:`record` audits a decided :class:`Job`;
:func:`partner_spec` is the ReleaseSpec (operation ``join``) the partner verifies.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.sdk._join_grants import join_problems, sum_grant
from connectors.sdk._join_wire import MAX_JOIN_ITEMS, MODES, OUTPUTS
from connectors.sdk._spec import sign_spec
from gateway.auth import Principal
from gateway.errors import FieldViolation
from gateway.pb.pgw.v1 import common_pb2, connector_pb2, join_pb2
from gateway.policy import (
    Agreement,
    PolicySet,
    choose_agreement,  # the one agreement in force (shared with Query)
)
from gateway.recorder import AuditRecorder
from gateway.requests import check_purpose, raise_if


@dataclass
class Job:
    """One decided job and what the hub learns while running it (sizes and counts only)."""

    rid: str
    principal: Principal
    start: join_pb2.JoinStart
    agreement: Agreement
    mode: str
    output: str
    value_field: str | None = None
    min_k: int = 0
    partner_count: int = 0
    audit: dict[str, Any] = field(default_factory=dict)
    audited: bool = False



def validate_start(start: join_pb2.JoinStart, policies: PolicySet,
                   partners: Collection[str]) -> None:
    """Refuses a malformed ``JoinStart`` with every field violation at once."""
    problems = check_purpose(start.purpose, policies.purposes)
    if start.partner not in partners:
        problems.append(FieldViolation("start.partner", "unknown partner; want one of "
                                       + ", ".join(sorted(partners))))
    if start.mode not in MODES:
        problems.append(FieldViolation("start.mode", "want ecdh-psi or keyed-hash"))
    if start.output not in OUTPUTS:
        problems.append(FieldViolation("start.output", "want membership, cardinality or "
                                       "intersection-sum"))
    if not 1 <= start.requester_count <= MAX_JOIN_ITEMS:
        problems.append(FieldViolation("start.requester_count",
                                       f"got {start.requester_count}, want 1..{MAX_JOIN_ITEMS}"))
    if start.mode == join_pb2.JOIN_MODE_KEYED_HASH and len(start.keyed_public_key) != 32:
        problems.append(FieldViolation("start.keyed_public_key", "want 32 bytes"))
    if (start.mode, start.output) == (join_pb2.JOIN_MODE_ECDH_PSI,
                                      join_pb2.JOIN_OUTPUT_INTERSECTION_SUM) \
            and not start.he_public:
        problems.append(FieldViolation("start.he_public", "missing: intersection-sum needs "
                                       "the requester's CKKS public material"))
    raise_if(problems)


def decide(rid: str, principal: Principal, start: join_pb2.JoinStart, policies: PolicySet,
           partners: Collection[str], clock: Callable[[], float]
           ) -> tuple[Job | None, str, dict[str, Any]]:
    """(job, "") when allowed, else (None, reason); plus the audit fields."""
    validate_start(start, policies, partners)
    mode, output = MODES[start.mode], OUTPUTS[start.output]
    roles = frozenset(r.value for r in principal.roles)
    candidates = [a for a in policies.agreements if (a.requester_org, a.purpose, a.partner)
                  == (principal.org, start.purpose, start.partner)]
    agreement, why = choose_agreement(candidates, principal.org, roles, start.purpose,
                                      start.partner, date.fromtimestamp(clock()))
    audit: dict[str, Any] = dict(
        kind="join", request_id=rid, principal=principal, purpose=start.purpose,
        partners=[start.partner], subjects=[],
        role=next((r for r in sorted(roles) if agreement and r in agreement.roles),
                  sorted(roles)[0] if roles else ""),
        agreements=[common_pb2.AgreementRef(id=agreement.id, version=agreement.version,
                                            content_hash=agreement.content_hash)]
        if agreement else [])
    what = f"{mode} {output}, requester set {start.requester_count}"
    if agreement is None:
        return None, f"join refused ({what}): {why}", audit
    problems = join_problems(agreement, mode, output)
    job = Job(rid, principal, start, agreement, mode, output, audit=audit)
    if output == "intersection-sum" and not problems:
        found = sum_grant(agreement, start.value_field)
        if isinstance(found, str):
            problems.append(found)
        else:
            job.value_field, job.min_k = found
    limit = agreement.limits.max_subjects_per_request
    if start.requester_count > limit:
        problems.append(f"requester set {start.requester_count} exceeds "
                        f"limits.max_subjects_per_request {limit} of {agreement.label}")
    if problems:
        return None, f"join refused ({what}): " + "; ".join(problems), audit
    return job, "", audit


async def record(recorder: AuditRecorder, job: Job, decision: str,
                 reason: str) -> common_pb2.AuditReceipt:
    """Audits ``job``; what was released is listed only when it was allowed."""
    released = [(job.start.partner, "join", f"{job.mode} {job.output}")]
    if job.value_field:
        released.append((job.start.partner, job.value_field, "aggregate intersection-sum"))
    receipt = await recorder.record(
        **job.audit, released=released if decision == "allow" else [], decision=decision,
        reason=reason)
    job.audited = True
    return receipt


def sizes(job: Job, matches: int | None = None) -> str:
    """What the hub learned of the job (sizes and counts only), for audit reasons."""
    text = (f"{job.mode} {job.output} under {job.agreement.label}: requester set "
            f"{job.start.requester_count}, partner set {job.partner_count}")
    return text + (f", {matches} matches" if matches is not None else "")


def partner_spec(job: Job, key: Ed25519PrivateKey, now: float,
                 ttl_s: float) -> connector_pb2.SignedReleaseSpec:
    """The signed ReleaseSpec (operation ``join``) that opens the job at the partner."""
    start = job.start
    params = join_pb2.JoinParams(
        mode=start.mode, output=start.output, requester_count=start.requester_count,
        keyed_public_key=start.keyed_public_key, value_field=job.value_field or "",
        he_public=start.he_public, min_count=job.min_k)
    now_ms = int(now * 1000)
    a = job.agreement
    spec = connector_pb2.ReleaseSpec(
        request_id=job.rid, requester_org=job.principal.org, purpose=start.purpose,
        agreement=common_pb2.AgreementRef(id=a.id, version=a.version,
                                          content_hash=a.content_hash),
        partner=start.partner, issued_at_ms=now_ms,
        expires_at_ms=now_ms + int(ttl_s * 1000), operation="join",
        operation_spec=params.SerializeToString(deterministic=True))
    return sign_spec(spec, key)
