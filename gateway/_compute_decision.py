"""Decision and audit for encrypted compute: the state a ComputeService holds, the checks every
operation shares (public context, agreement in force and its grant, subject limit, budgets),
signing the per-partner release spec, and the audited release of the result.

Every refusal is raised as :class:`Refused` so that the entry point audits it (as ``deny``, or
``error`` when the budget store cannot be reached).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.sdk._spec import sign_spec
from gateway._compute_partners import PartnerCompute
from gateway.auth import Principal, TokenVerifier
from gateway.budgets import Budgets, audit_decision
from gateway.errors import FieldViolation, GatewayError, InvalidArgument, PermissionDenied
from gateway.pb.pgw.v1 import common_pb2, compute_pb2, connector_pb2
from gateway.policy import Agreement, ApprovedModel, FieldGrant, PolicySet
from gateway.privacy import HePool, PrivacyError, PublicContext, Scheme
from gateway.recorder import AuditRecorder, response_digest


class Refused(Exception):
    """A refusal to audit (as ``decision``) before raising ``error``."""

    def __init__(self, error: GatewayError, decision: str = "deny") -> None:
        self.error, self.decision = error, decision


def agreement_ref(a: Agreement) -> common_pb2.AgreementRef:
    return common_pb2.AgreementRef(id=a.id, version=a.version, content_hash=a.content_hash)


class ComputeDecisions:
    """Shared checks, spec signing and audited release; ComputeService sets the state."""

    verifier: TokenVerifier
    models: dict[str, ApprovedModel]
    partners: PartnerCompute
    recorder: AuditRecorder
    budgets: Budgets
    _policies: Callable[[], PolicySet]
    _key: Ed25519PrivateKey
    _ttl: float
    _clock: Callable[[], float]
    _pool: HePool | None

    def _context(self, header: compute_pb2.ComputeHeader) -> PublicContext:
        try:
            ctx = PublicContext.load(header.public_context)
        except PrivacyError as err:
            raise Refused(InvalidArgument(FieldViolation("header.public_context",
                                                         err.message))) from None
        if ctx.scheme is not Scheme.CKKS:
            raise Refused(InvalidArgument(FieldViolation("header.public_context",
                                                         "got BFV material, want CKKS")))
        return ctx

    def _agreement(self, principal: Principal, purpose: str, partner: str,
                   field: str) -> tuple[Agreement, FieldGrant]:
        """The agreement in force for (org, role, purpose, partner) and its grant of ``field``."""
        policies = self._policies()
        decision = policies.decide(org=principal.org,
                                   roles=frozenset(r.value for r in principal.roles),
                                   purpose=purpose, selections={partner: [field]},
                                   subject_count=0, today=date.fromtimestamp(self._clock()))
        p = decision.partners[0]
        if p.agreement is None:
            raise Refused(PermissionDenied(p.reason, refused_fields=[f"{partner}.{field}"],
                                           reason=p.reason))
        grant = p.agreement.grant(field)
        if grant is None:
            why = f"{partner}.{field} not granted by {p.agreement.label}"
            raise Refused(PermissionDenied(why, refused_fields=[f"{partner}.{field}"],
                                           reason=why))
        return p.agreement, grant

    @staticmethod
    def _limit(agreement: Agreement, subject_count: int) -> None:
        limit = agreement.limits.max_subjects_per_request
        if subject_count > limit:
            why = (f"subject_count {subject_count} exceeds limits.max_subjects_per_request "
                   f"{limit} of {agreement.label}")
            raise Refused(PermissionDenied(why, reason=why))

    async def _spend(self, principal: Principal, agreements: Sequence[Agreement],
                     subjects: Sequence[str] = ()) -> None:
        """Rate, volume and per-subject budgets of a request about ``subjects``."""
        try:
            await self.budgets.request(principal.org, agreements, subjects=subjects)
        except GatewayError as err:
            raise Refused(err, audit_decision(err)) from None

    async def _spend_cohort(self, principal: Principal, agreement: Agreement, attribute: str,
                            value: str) -> None:
        """Rate and per-cohort budgets of an aggregate over ``attribute=value``."""
        try:
            await self.budgets.cohort(principal.org, agreement, attribute, value)
        except GatewayError as err:
            raise Refused(err, audit_decision(err)) from None

    def _spec(self, rid: str, principal: Principal, purpose: str, agreement: Agreement,
              grant: FieldGrant, operation: str, operation_spec: bytes
              ) -> connector_pb2.SignedReleaseSpec:
        now_ms = int(self._clock() * 1000)
        spec = connector_pb2.ReleaseSpec(
            request_id=rid, requester_org=principal.org, purpose=purpose,
            agreement=agreement_ref(agreement), partner=agreement.partner,
            fields=[common_pb2.FieldRelease(field=grant.field, transform=grant.transform,
                                            params_json=grant.params_json)],
            issued_at_ms=now_ms, expires_at_ms=now_ms + int(self._ttl * 1000),
            operation=operation, operation_spec=operation_spec)
        return sign_spec(spec, self._key)

    async def _release(self, audit: dict[str, Any], reason: str,
                       summary: compute_pb2.ComputeSummary, result: list[bytes]
                       ) -> Iterator[compute_pb2.ComputeResponse]:
        """Audit (durably) first, then hand back the summary and the result ciphertexts.

        The first response is built around the summary before the receipt joins it (a
        message passed to a constructor is copied whole). The receipt is small whatever the
        subject count: a bulk compute's pseudonyms are in a subject set beside its entry, not
        in the entry (``gateway.recorder``). The chunk messages are made as they are written.
        """
        h = hashlib.sha256(summary.SerializeToString(deterministic=True))
        digests = getattr(result, "digests", None)  # hashed as computed (_compute_he.Ciphertexts)
        for digest in digests or (hashlib.sha256(data).digest() for data in result):
            h.update(digest)
        first = compute_pb2.ComputeResponse(summary=summary)
        receipt = await self.recorder.record(**audit, decision="allow", reason=reason,
                                             digest=response_digest(h.digest()))
        first.summary.receipt.CopyFrom(receipt)
        return itertools.chain([first], (
            compute_pb2.ComputeResponse(chunk=compute_pb2.CiphertextChunk(index=i, ciphertext=d))
            for i, d in enumerate(result)))
