"""The connector's ``PartnerComputeService`` (Encrypt, Aggregate) and its registration.

Built on the partner's :class:`ConnectorService`: the same spec verifier (signature, expiry,
replay), the same own copy of the agreements, the same DataSource. Each RPC checks the signed
spec against this partner's agreement before reading anything, and nothing leaves in the clear.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator
from datetime import date
from typing import TYPE_CHECKING

import grpc
from google.protobuf.message import DecodeError

from connectors.sdk._column_read import ColumnRead
from connectors.sdk._compute_cohorts import CohortSource, cohort_source_for
from connectors.sdk._compute_he import (
    context_digest,
    encrypt_chunks,
    encrypt_inline,
    pack_presence,
)
from connectors.sdk._server import ConnectorService
from gateway.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from gateway.packed_ids import (
    WIDTH,
    checked_beside,
    ids_digest,
    receive_ids,
    validate_packed_ids,
)
from gateway.pb.pgw.v1 import compute_pb2, compute_pb2_grpc, connector_pb2
from gateway.policy import Agreement, FieldGrant, check_spec_against
from gateway.privacy import SLOTS, HePool, PublicContext, Scheme
from gateway.status import rpc

if TYPE_CHECKING:
    import numpy as np

#: Hard ceiling on subjects per Encrypt, whatever an agreement allows (memory bound).
MAX_SUBJECTS = 1 << 21
_VALUE = re.compile(r"[0-9A-Za-z_.:-]{1,64}\Z")


class PartnerComputeService(compute_pb2_grpc.PartnerComputeServiceServicer):
    """Encrypt and Aggregate for one partner, under the connector's verifier and agreements."""

    def __init__(self, connector: ConnectorService, *, cohorts: CohortSource | None = None,
                 pool: HePool | None = None) -> None:
        self.connector = connector
        self.partner = connector.partner
        self._cohorts = cohorts if cohorts is not None else cohort_source_for(connector.source)
        self._pool = pool

    @property
    def _today(self) -> date:
        return self.connector._today()

    def _check(self, spec: connector_pb2.ReleaseSpec, operation: str, transform: str,
               subject_count: int | None) -> tuple[Agreement, FieldGrant]:
        """The spec against this partner's own agreement copy; the one granted field."""
        if spec.operation != operation:
            raise PermissionDenied(f"this endpoint takes {operation} specs only",
                                   reason=f"spec for operation {spec.operation!r} sent to "
                                   f"{operation}")
        if spec.partner != self.partner:
            raise PermissionDenied("spec is for another partner", reason="spec partner mismatch")
        if spec.subjects:
            raise PermissionDenied("compute specs carry a subject digest, not subjects",
                                   reason="spec subjects not empty")
        try:
            agreement = self.connector.policies.agreement(spec.agreement.id)
        except NotFound:
            raise PermissionDenied("no such agreement at this partner",
                                   reason="spec names an agreement unknown here") from None
        if (agreement.partner != self.partner or agreement.version != spec.agreement.version
                or agreement.content_hash != spec.agreement.content_hash):
            raise PermissionDenied("agreement differs from this partner's copy",
                                   reason="spec agreement version or hash mismatch")
        if len(spec.fields) != 1 or spec.fields[0].transform != transform:
            raise PermissionDenied(f"a compute spec names one field granted {transform}",
                                   reason="spec fields malformed")
        f = spec.fields[0]
        try:
            params = json.loads(f.params_json or "{}")
        except ValueError:
            raise PermissionDenied("spec params unreadable", reason="spec params_json") from None
        problems = check_spec_against(agreement, org=spec.requester_org, purpose=spec.purpose,
                                      fields={f.field: (f.transform, params)},
                                      today=self._today, subject_count=subject_count)
        if problems:
            raise PermissionDenied("spec is wider than the agreement", reason="; ".join(problems))
        grant = agreement.grant(f.field)
        assert grant is not None  # check_spec_against rules this out
        return agreement, grant

    @staticmethod
    def _context(material: bytes, digest: bytes) -> PublicContext:
        if context_digest(material) != digest:
            raise PermissionDenied("public context differs from the signed one",
                                   reason="context digest mismatch")
        ctx = PublicContext.load(material)
        if ctx.scheme is not Scheme.CKKS:
            raise InvalidArgument(FieldViolation("public_context", "want CKKS material"))
        return ctx

    @rpc
    async def Encrypt(self, request: AsyncIterator[compute_pb2.EncryptRequest],
                      context: grpc.aio.ServicerContext, rid: str) -> None:
        stream = aiter(request)
        first = await anext(stream, None)
        if first is None or not first.HasField("start"):
            raise InvalidArgument(FieldViolation("start", "want EncryptStart first"))
        spec = self.connector.verifier.verify(first.start.signed_spec)
        espec = compute_pb2.EncryptSpec()
        try:
            espec.ParseFromString(spec.operation_spec)
        except DecodeError:
            raise PermissionDenied("operation spec unreadable", reason="bad EncryptSpec") from None
        _, grant = self._check(spec, "encrypt", "encrypted", espec.subject_count)
        ops, models = grant.param_dict.get("ops", []), grant.param_dict.get("models", [])
        if (espec.field != grant.field or espec.op != "linear" or espec.op not in ops
                or espec.model not in models):
            raise PermissionDenied("operation not granted for this field",
                                   reason=f"encrypt op {espec.op!r} model {espec.model!r} "
                                   f"not granted for {grant.field}")
        if not 1 <= espec.chunk_slots <= SLOTS or not 1 <= espec.subject_count <= MAX_SUBJECTS:
            raise PermissionDenied("encrypt spec out of range", reason="chunk or count range")
        ctx = self._context(first.start.public_context, espec.context_sha256)
        # the source may scan its table while the ids arrive, and looks them up while they
        # are checked: a bad id still refuses the call before anything is encrypted
        read = await self.connector.source.start_values(grant.field, espec.subject_count)
        try:
            values, found = await self._looked_up(read, await self._subjects(stream, espec))
        finally:
            read.close()
        chunks = math.ceil(len(values) / espec.chunk_slots)
        await context.write(compute_pb2.EncryptResponse(summary=compute_pb2.EncryptSummary(
            request_id=spec.request_id, count=len(values), ciphertexts=chunks,
            found=pack_presence(found))))
        index = 0
        async for data in encrypt_chunks(ctx, values, chunk=espec.chunk_slots, pool=self._pool):
            await context.write(compute_pb2.EncryptResponse(
                chunk=compute_pb2.CiphertextChunk(index=index, ciphertext=data)))
            index += 1

    @staticmethod
    async def _subjects(stream: AsyncIterator[compute_pb2.EncryptRequest],
                        espec: compute_pb2.EncryptSpec) -> bytes:
        """The packed ids that follow, checked against the signed count and digest."""
        data = await receive_ids(stream, espec.subject_count)
        if len(data) != espec.subject_count * WIDTH or ids_digest(data) != espec.subjects_sha256:
            raise PermissionDenied("subjects differ from the signed digest",
                                   reason="subjects digest or count mismatch")
        return data

    @staticmethod
    async def _looked_up(read: ColumnRead, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        """``read``'s values for the ids in ``data``, looked up while the ids are validated:
        the outcome of validating first (``checked_beside``)."""
        return (await checked_beside(validate_packed_ids, data, read.values))[1]

    @rpc
    async def Aggregate(self, request: compute_pb2.AggregateRequest,
                        context: grpc.aio.ServicerContext,
                        rid: str) -> compute_pb2.AggregateResponse:
        spec = self.connector.verifier.verify(request.signed_spec)
        aspec = compute_pb2.AggregateSpec()
        try:
            aspec.ParseFromString(spec.operation_spec)
        except DecodeError:
            raise PermissionDenied("operation spec unreadable",
                                   reason="bad AggregateSpec") from None
        _, grant = self._check(spec, "aggregate", "aggregate", None)
        params = grant.param_dict
        if (aspec.field != grant.field or aspec.op not in {"sum", "mean", "count"}
                or aspec.op not in params.get("ops", [])
                or aspec.cohort_attribute not in params.get("cohort_by", [])
                or not _VALUE.match(aspec.cohort_value)):
            raise PermissionDenied("aggregate not granted",
                                   reason=f"aggregate op {aspec.op!r} by "
                                   f"{aspec.cohort_attribute!r} not granted for {grant.field}")
        ctx = self._context(request.public_context, aspec.context_sha256)
        if self._cohorts is None:
            raise FailedPrecondition("this connector cannot select cohorts",
                                     reason="no cohort source")
        values = [float(v) for v in await self._cohorts.cohort_values(
            grant.field, aspec.cohort_attribute, aspec.cohort_value) if v is not None]
        min_k = int(params["min_k"])
        if len(values) < min_k:
            raise FailedPrecondition(f"cohort smaller than min_k {min_k}; nothing released",
                                     reason=f"cohort below min_k {min_k}")
        total = math.fsum(values)
        result = {"sum": total, "mean": total / len(values), "count": float(len(values))}
        data = await asyncio.to_thread(encrypt_inline, ctx.material, [result[aspec.op]], 1)
        return compute_pb2.AggregateResponse(request_id=spec.request_id, count=len(values),
                                             ciphertext=data[0])


def add_compute_service(connector: ConnectorService, server: grpc.aio.Server) -> None:
    """Register the connector's PartnerComputeService on ``server`` (start_connector)."""
    compute_pb2_grpc.add_PartnerComputeServiceServicer_to_server(
        PartnerComputeService(connector), server)
