"""The requester API for encrypted compute: ``Compute`` (a linear score or a cohort aggregate).

Lifecycle (DESIGN.md "Usable but not visible"):

* **linear**: load the approved model (weights and bias are never the requester's); check the
  requester's org and purpose against it and, per partner, that the agreement in force grants
  each input ``encrypted`` with op ``linear`` and lists the model; sign one ``encrypt`` spec per
  input (field, subject digest, public-context hash); stream the subjects to each connector and
  its ciphertexts back; evaluate ``bias + sum(w * x)`` on ciphertexts (this process holds no
  secret key); audit; only then return the result ciphertexts.
* **aggregate**: check the field is granted ``aggregate`` with the op and the cohort attribute in
  ``cohort_by``; sign an ``aggregate`` spec; the connector selects the cohort itself and refuses
  below ``min_k``; the gateway re-checks ``min_k`` from the returned count; audit; return.

Both spend the agreements' budgets (``gateway.budgets``: rate and, for linear, volume and
per-subject; for aggregates, per-cohort) before anything is dispatched. Every refusal is audited
(kind ``compute``) with what was asked, never a value.

This module is the front door; the work lives in private modules:

* ``_compute_decision`` -- shared checks, spec signing, audited release;
* ``_compute_linear`` / ``_compute_aggregate`` -- the two operations;
* ``_compute_he`` -- evaluation on ciphertexts as partner streams arrive;
* ``_compute_partners`` -- channels to the connectors and their errors.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway._compute_aggregate import AGGREGATE_OPS, AggregateCompute
from gateway._compute_decision import Refused
from gateway._compute_he import BATCH, INLINE_CHUNKS
from gateway._compute_linear import MAX_SUBJECTS, LinearCompute
from gateway._compute_partners import MAX_MESSAGE, PartnerCompute
from gateway.auth import TokenVerifier, bearer_from_metadata
from gateway.budgets import Budgets
from gateway.errors import FieldViolation, InvalidArgument
from gateway.pb.pgw.v1 import compute_pb2, compute_pb2_grpc
from gateway.policy import ApprovedModel, PolicySet
from gateway.privacy import HePool
from gateway.recorder import AuditRecorder
from gateway.status import rpc

__all__ = [
    "AGGREGATE_OPS",
    "BATCH",
    "COMPUTE_TIMEOUT_S",
    "INLINE_CHUNKS",
    "MAX_MESSAGE",
    "MAX_SUBJECTS",
    "ComputeService",
    "PartnerCompute",
]

#: Compute can take minutes at 2^20 subjects: the per-call cap when the requester sets none.
COMPUTE_TIMEOUT_S = 900.0


class ComputeService(LinearCompute, AggregateCompute, compute_pb2_grpc.ComputeServiceServicer):
    def __init__(self, *, verifier: TokenVerifier, policies: PolicySet | Callable[[], PolicySet],
                 models: dict[str, ApprovedModel], partners: PartnerCompute,
                 recorder: AuditRecorder, spec_key: Ed25519PrivateKey, spec_ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.time, pool: HePool | None = None,
                 budgets: Budgets | None = None) -> None:
        self.verifier, self.models, self.partners = verifier, dict(models), partners
        self._policies = policies if callable(policies) else (lambda: policies)
        self.recorder, self._key, self._ttl, self._clock = recorder, spec_key, spec_ttl_s, clock
        self.budgets = budgets or Budgets.in_process()
        self._pool = pool

    @rpc
    async def Compute(self, request: AsyncIterator[compute_pb2.ComputeRequest],
                      context: grpc.aio.ServicerContext, rid: str) -> None:
        principal = self.verifier.verify(bearer_from_metadata(context.invocation_metadata()
                                                              or ()))
        stream = aiter(request)
        first = await anext(stream, None)
        if first is None or not first.HasField("header"):
            raise InvalidArgument(FieldViolation("header", "want a ComputeHeader first"))
        header = first.header
        audit: dict[str, Any] = dict(kind="compute", request_id=rid, principal=principal,
                                     role=sorted(r.value for r in principal.roles)[0],
                                     purpose=header.purpose, agreements=[], partners=[],
                                     subjects=[], released=[])
        remaining = context.time_remaining() or COMPUTE_TIMEOUT_S
        try:
            if header.WhichOneof("operation") == "linear":
                messages = await self._linear(header, stream, audit, principal, remaining)
            elif header.WhichOneof("operation") == "aggregate":
                messages = await self._aggregate(header, audit, principal, remaining)
            else:
                raise Refused(InvalidArgument(FieldViolation(
                    "header.operation", "want linear or aggregate")))
        except Refused as refused:
            await self.recorder.record(**audit, decision=refused.decision,
                                       reason=refused.error.reason)
            raise refused.error from None
        for message in messages:
            await context.write(message)
