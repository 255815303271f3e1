"""The requester API: ``Query`` and ``Explain``.

Lifecycle of a query (DESIGN.md): authenticate -> validate -> decide (deny by default, whole
request refused if any field is not granted) -> dispatch signed ReleaseSpecs to the partners in
parallel -> check each answer against its spec -> append the audit entry durably -> respond with
the audit receipt. Refusals are audited too; if the audit cannot be written nothing is released.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.sdk._spec import sign_spec
from gateway.answers import check_answer
from gateway.auth import Principal, TokenVerifier, bearer_from_metadata
from gateway.budgets import Budgets, audit_decision
from gateway.dispatch import ConnectorClients
from gateway.errors import FieldViolation, GatewayError, PermissionDenied
from gateway.pb.pgw.v1 import common_pb2, connector_pb2, gateway_pb2, gateway_pb2_grpc
from gateway.policy import PartnerDecision, PolicySet, RequestDecision
from gateway.recorder import AuditRecorder, response_digest
from gateway.requests import check_purpose, check_selections, check_subjects, raise_if
from gateway.status import rpc


def agreement_refs(decision: RequestDecision) -> list[common_pb2.AgreementRef]:
    return [common_pb2.AgreementRef(id=p.agreement.id, version=p.agreement.version,
                                    content_hash=p.agreement.content_hash)
            for p in decision.partners if p.agreement is not None]


def acting_role(principal: Principal, decision: RequestDecision) -> str:
    """The principal's role that the applied agreements admit (or its first role)."""
    for p in decision.partners:
        if p.agreement is not None:
            for role in sorted(r.value for r in principal.roles):
                if role in p.agreement.roles:
                    return role
    return sorted(r.value for r in principal.roles)[0]


class GatewayService(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, *, verifier: TokenVerifier,
                 policies: PolicySet | Callable[[], PolicySet], clients: ConnectorClients,
                 recorder: AuditRecorder, spec_key: Ed25519PrivateKey, spec_ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.time, budgets: Budgets | None = None) -> None:
        self.verifier, self.clients = verifier, clients
        if isinstance(policies, PolicySet):
            fixed = policies
            self._policies: Callable[[], PolicySet] = lambda: fixed
        else:
            self._policies = policies
        self.recorder, self._key, self._ttl, self._clock = recorder, spec_key, spec_ttl_s, clock
        self.budgets = budgets or Budgets.in_process()

    @property
    def policies(self) -> PolicySet:
        """The agreements in force now; a callable source (the registry) is asked per call."""
        return self._policies()

    def _principal(self, context: grpc.aio.ServicerContext) -> Principal:
        return self.verifier.verify(bearer_from_metadata(context.invocation_metadata() or ()))

    async def _decide(self, principal: Principal, purpose: str, subject_count: int,
                      selections: list[common_pb2.Selection],
                      problems: list[FieldViolation]) -> tuple[dict[str, list[str]],
                                                               RequestDecision]:
        """Validate everything (all problems reported at once), then decide."""
        policies = self.policies  # one snapshot for the whole decision
        problems = problems + check_purpose(purpose, policies.purposes)
        chosen, more = await check_selections(selections, self.clients)
        raise_if(problems + more)
        decision = policies.decide(
            org=principal.org, roles=frozenset(r.value for r in principal.roles), purpose=purpose,
            selections=chosen, subject_count=subject_count,
            today=date.fromtimestamp(self._clock()))
        return chosen, decision

    @rpc
    async def Query(self, request: gateway_pb2.QueryRequest, context: grpc.aio.ServicerContext,
                    rid: str) -> gateway_pb2.QueryResponse:
        principal = self._principal(context)
        subjects, problems = check_subjects(list(request.subjects))
        chosen, decision = await self._decide(principal, request.purpose, len(subjects),
                                              list(request.selections), problems)
        audit: dict[str, Any] = dict(kind="query", request_id=rid, principal=principal,
                     role=acting_role(principal, decision), purpose=request.purpose,
                     agreements=agreement_refs(decision), partners=list(chosen), subjects=subjects)
        if not decision.allowed:
            await self.recorder.record(**audit, released=[], decision="deny",
                                       reason=decision.reason)
            raise _refusal(decision)
        try:  # rate, volume and per-subject budgets; exhausted: deny, store down: error
            await self.budgets.request(principal.org, [p.agreement for p in decision.partners
                                                       if p.agreement is not None],
                                       subjects=subjects)
        except GatewayError as err:
            await self.recorder.record(**audit, released=[], decision=audit_decision(err),
                                       reason=err.reason)
            raise
        specs = [self._spec(rid, principal, request.purpose, p, subjects)
                 for p in decision.partners]
        # Once specs go out, partners release data to the hub: _release audits the dispatch
        # even if the requester cancels (the partners' calls are cancelled with it).
        return await self._release(audit, specs, context.time_remaining())

    async def _release(self, audit: dict[str, Any], specs: list[connector_pb2.ReleaseSpec],
                       remaining: float | None) -> gateway_pb2.QueryResponse:
        """Dispatch signed specs, check the answers, audit, and build the response."""
        try:
            answers = await asyncio.gather(*(
                self.clients.fetch(spec.partner, sign_spec(spec, self._key), remaining)
                for spec in specs))
            for spec, answer in zip(specs, answers, strict=True):
                catalogue = await self.clients.catalogue(spec.partner)
                check_answer(spec, answer, catalogue.fields)
        except GatewayError as err:
            await self.recorder.record(**audit, released=[], decision="error", reason=err.reason)
            raise
        except asyncio.CancelledError:
            await self.recorder.record(**audit, released=[], decision="error",
                                       reason="cancelled by the requester after dispatch")
            raise
        response = gateway_pb2.QueryResponse(request_id=audit["request_id"],
                                             agreements=audit["agreements"])
        response.results.extend(_merge(len(audit["subjects"]), specs, answers))
        released = [(s.partner, f.field, f.transform) for s in specs for f in s.fields]
        receipt = await self.recorder.record(
            **audit, released=released, decision="allow", reason="granted",
            digest=response_digest(response.SerializeToString(deterministic=True)))
        response.receipt.CopyFrom(receipt)
        return response

    @rpc
    async def Explain(self, request: gateway_pb2.ExplainRequest,
                      context: grpc.aio.ServicerContext, rid: str) -> gateway_pb2.ExplainResponse:
        principal = self._principal(context)
        chosen, decision = await self._decide(principal, request.purpose,
                                              max(1, request.subject_count),
                                              list(request.selections), [])
        await self.recorder.record(
            kind="explain", request_id=rid, principal=principal,
            role=acting_role(principal, decision), purpose=request.purpose,
            agreements=agreement_refs(decision), partners=list(chosen), subjects=[],
            released=[], decision="allow" if decision.allowed else "deny", reason=decision.reason)
        allow, deny = gateway_pb2.VERDICT_ALLOW, gateway_pb2.VERDICT_DENY
        fields = []
        for p in decision.partners:
            for g in p.granted:
                fields.append(gateway_pb2.FieldDecision(
                    partner=p.partner, field=g.field, verdict=allow, transform=g.transform,
                    reason=f"granted as {g.describe()} by {p.agreement.id} v{p.agreement.version}"
                    if p.agreement else "granted"))
            for name, why in p.refused:
                fields.append(gateway_pb2.FieldDecision(partner=p.partner, field=name,
                                                        verdict=deny, reason=why))
        return gateway_pb2.ExplainResponse(
            request_id=rid, verdict=allow if decision.allowed else deny, reason=decision.reason,
            fields=fields, agreements=agreement_refs(decision))

    def _spec(self, rid: str, principal: Principal, purpose: str, p: PartnerDecision,
              subjects: list[str]) -> connector_pb2.ReleaseSpec:
        a = p.agreement
        assert a is not None  # only allowed decisions are dispatched
        now_ms = int(self._clock() * 1000)
        return connector_pb2.ReleaseSpec(
            request_id=rid, requester_org=principal.org, purpose=purpose,
            agreement=common_pb2.AgreementRef(id=a.id, version=a.version,
                                              content_hash=a.content_hash),
            partner=p.partner, subjects=subjects,
            fields=[common_pb2.FieldRelease(
                field=g.field, transform=g.transform,
                params_json=g.params_json)
                for g in p.granted],
            issued_at_ms=now_ms, expires_at_ms=now_ms + int(self._ttl * 1000))


def _refusal(decision: RequestDecision) -> PermissionDenied:
    refused = [f"{p.partner}.{name}" for p in decision.partners for name, _ in p.refused]
    return PermissionDenied(decision.reason, refused_fields=refused, reason=decision.reason)


def _merge(n: int, specs: list[connector_pb2.ReleaseSpec],
           answers: list[connector_pb2.FetchResponse]) -> list[gateway_pb2.SubjectResult]:
    results = [gateway_pb2.SubjectResult(subject_index=i) for i in range(n)]
    for spec, answer in zip(specs, answers, strict=True):
        for row in answer.rows:
            target = results[row.subject_index]
            if row.found:
                target.values.extend(row.values)
            else:
                target.not_found.append(spec.partner)
    return results
