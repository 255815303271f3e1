"""The admin API (``pgw.v1.AdminService``): the agreement lifecycle over gRPC.

Roles: ``policy-admin`` proposes; ``auditor`` approves (never the proposer, two distinct ones
activate); ``policy-admin`` or ``auditor`` revokes; any authenticated role lists and exports.
The rules and the persistence live in :class:`~gateway.policy.AgreementRegistry`; this module
authenticates, checks roles (auditing refusals), and maps records to protobuf. Each step is an
``admin`` audit entry written by :func:`admin_audit` before the change is acknowledged.

Partners: connectors check specs against their own agreement copies, so an agreement activated
here works only once the partner installs ``ExportAgreement``'s YAML (``pgw admin export ID``)
under its ``policies/agreements/`` and restarts its connector.
"""

from __future__ import annotations

from contextlib import suppress

import grpc

from gateway.auth import Principal, Role, TokenVerifier, bearer_from_metadata
from gateway.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from gateway.pb.pgw.v1 import admin_pb2, admin_pb2_grpc, common_pb2
from gateway.policy import AdminAudit, AdminEvent, AgreementRecord, AgreementRegistry
from gateway.recorder import AuditRecorder
from gateway.status import rpc

STATES = {"proposed": admin_pb2.AGREEMENT_STATE_PROPOSED,
          "active": admin_pb2.AGREEMENT_STATE_ACTIVE,
          "revoked": admin_pb2.AGREEMENT_STATE_REVOKED,
          "superseded": admin_pb2.AGREEMENT_STATE_SUPERSEDED}
MAX_REASON = 500


def admin_audit(recorder: AuditRecorder) -> AdminAudit:
    """The registry's audit sink: one durable ``kind="admin"`` entry per event."""

    async def append(event: AdminEvent) -> None:
        first = event.agreements[0] if event.agreements else None
        await recorder.record(
            kind="admin", request_id=event.request_id, principal=event.actor, role=event.role,
            purpose=first.purpose if first else "",
            agreements=[common_pb2.AgreementRef(id=a.id, version=a.version,
                                                content_hash=a.content_hash)
                        for a in event.agreements],
            partners=sorted({a.partner for a in event.agreements}), released=[], subjects=[],
            decision=event.decision, reason=event.reason)

    return append


def to_proto(record: AgreementRecord, required: int) -> admin_pb2.AgreementRecord:
    a = record.agreement
    return admin_pb2.AgreementRecord(
        proposal_id=record.proposal_id,
        agreement=common_pb2.AgreementRef(id=a.id, version=a.version,
                                          content_hash=a.content_hash),
        state=STATES[record.state], origin=record.origin, proposer=record.proposer,
        approvers=list(record.approvers), approvals_required=required,
        requester_org=a.requester_org, purpose=a.purpose, partner=a.partner,
        proposed_at=record.proposed_at, changed_at=record.changed_at)


class AdminService(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, *, verifier: TokenVerifier, registry: AgreementRegistry) -> None:
        self.verifier, self.registry = verifier, registry

    def _principal(self, context: grpc.aio.ServicerContext) -> Principal:
        return self.verifier.verify(bearer_from_metadata(context.invocation_metadata() or ()))

    async def _require(self, principal: Principal, step: str, rid: str, *roles: Role,
                       proposal_id: str = "") -> str:
        """The acting role, or audit the refusal and raise PermissionDenied."""
        held = [r.value for r in roles if principal.has(r)]
        if held:
            return held[0]
        wanted = " or ".join(r.value for r in roles)
        err = PermissionDenied(f"{step} requires role {wanted}",
                               reason=f"{step} requires role {wanted}; token has "
                               f"{', '.join(sorted(r.value for r in principal.roles))}")
        agreements = []
        if proposal_id:
            with suppress(NotFound):
                agreements = [self.registry.record(proposal_id).agreement]
        await self.registry.refuse(step, principal, sorted(r.value for r in principal.roles)[0],
                                   err.reason, rid, agreements)
        raise err

    def _out(self, record: AgreementRecord) -> admin_pb2.AgreementRecord:
        return to_proto(record, self.registry.approvals_required)

    @rpc
    async def ProposeAgreement(self, request: admin_pb2.ProposeAgreementRequest,
                               context: grpc.aio.ServicerContext,
                               rid: str) -> admin_pb2.ProposeAgreementResponse:
        principal = self._principal(context)
        role = await self._require(principal, "propose", rid, Role.POLICY_ADMIN)
        if not request.agreement_yaml.strip():
            raise InvalidArgument(FieldViolation("agreement_yaml", "want the agreement YAML"))
        record = await self.registry.propose(request.agreement_yaml, principal, role=role,
                                             request_id=rid)
        return admin_pb2.ProposeAgreementResponse(record=self._out(record))

    @rpc
    async def ApproveAgreement(self, request: admin_pb2.ApproveAgreementRequest,
                               context: grpc.aio.ServicerContext,
                               rid: str) -> admin_pb2.ApproveAgreementResponse:
        principal = self._principal(context)
        await self._require(principal, "approve", rid, Role.AUDITOR,
                            proposal_id=request.proposal_id)
        problems = [FieldViolation(name, "required") for name in ("proposal_id", "content_hash")
                    if not getattr(request, name)]
        if problems:
            raise InvalidArgument(problems)
        record = await self.registry.approve(request.proposal_id, request.content_hash,
                                             principal, request_id=rid)
        return admin_pb2.ApproveAgreementResponse(record=self._out(record))

    @rpc
    async def RevokeAgreement(self, request: admin_pb2.RevokeAgreementRequest,
                              context: grpc.aio.ServicerContext,
                              rid: str) -> admin_pb2.RevokeAgreementResponse:
        principal = self._principal(context)
        role = await self._require(principal, "revoke", rid, Role.POLICY_ADMIN, Role.AUDITOR)
        if not request.agreement_id:
            raise InvalidArgument(FieldViolation("agreement_id", "required"))
        if len(request.reason) > MAX_REASON:
            raise InvalidArgument(FieldViolation("reason", f"want at most {MAX_REASON} chars"))
        record = await self.registry.revoke(request.agreement_id, principal, role=role,
                                            reason=request.reason, request_id=rid)
        return admin_pb2.RevokeAgreementResponse(record=self._out(record))

    @rpc
    async def ListAgreements(self, request: admin_pb2.ListAgreementsRequest,
                             context: grpc.aio.ServicerContext,
                             rid: str) -> admin_pb2.ListAgreementsResponse:
        self._principal(context)
        await self.registry.refresh()
        return admin_pb2.ListAgreementsResponse(agreements=[
            self._out(r) for r in self.registry.records(request.agreement_id)])

    @rpc
    async def ExportAgreement(self, request: admin_pb2.ExportAgreementRequest,
                              context: grpc.aio.ServicerContext,
                              rid: str) -> admin_pb2.ExportAgreementResponse:
        self._principal(context)
        await self.registry.refresh()
        record = self.registry.active(request.agreement_id)
        return admin_pb2.ExportAgreementResponse(record=self._out(record),
                                                 agreement_yaml=record.document)
