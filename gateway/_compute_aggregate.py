"""The cohort aggregate: check the field is granted ``aggregate`` with the op and the cohort
attribute in ``cohort_by``; sign an ``aggregate`` spec; the connector selects the cohort and
refuses below ``min_k``; re-check ``min_k`` from the returned count; audit; release."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from connectors.sdk._compute_he import context_digest
from gateway._compute_decision import ComputeDecisions, Refused, agreement_ref
from gateway.auth import Principal
from gateway.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied
from gateway.pb.pgw.v1 import compute_pb2
from gateway.upstream import partner_failure

AGGREGATE_OPS = ("sum", "mean", "count")


class AggregateCompute(ComputeDecisions):
    """``Compute`` with an ``aggregate`` header."""

    async def _aggregate(self, header: compute_pb2.ComputeHeader, audit: dict[str, Any],
                         principal: Principal, remaining: float
                         ) -> Iterator[compute_pb2.ComputeResponse]:
        op = header.aggregate
        name = f"{op.partner}.{op.field}"
        audit["partners"] = [op.partner]
        what = f"aggregate {op.op} of {name} over {op.cohort_attribute}={op.cohort_value}"
        problems = []
        if op.partner not in self.partners.partners:
            problems.append(FieldViolation("header.aggregate.partner", "unknown partner; want "
                                           + ", ".join(self.partners.partners)))
        if op.op not in AGGREGATE_OPS:
            problems.append(FieldViolation("header.aggregate.op",
                                           f"got {op.op!r}, want one of {list(AGGREGATE_OPS)}"))
        if not op.cohort_attribute or not op.cohort_value or len(op.cohort_value) > 64:
            problems.append(FieldViolation("header.aggregate.cohort",
                                           "want ATTRIBUTE=VALUE, value up to 64 characters"))
        if problems:
            raise Refused(InvalidArgument(problems))
        ctx = self._context(header)
        agreement, grant = self._agreement(principal, header.purpose, op.partner, op.field)
        audit["agreements"] = [agreement_ref(agreement)]
        params = grant.param_dict
        if grant.transform != "aggregate":
            why = (f"{what}: {name} granted by {agreement.label} as {grant.describe()}, "
                   "want aggregate")
            raise Refused(PermissionDenied(why, refused_fields=[name], reason=why))
        if op.op not in params.get("ops", []):
            why = f"{what}: op {op.op} not in the ops {params.get('ops')} of {agreement.label}"
            raise Refused(PermissionDenied(why, refused_fields=[name], reason=why))
        if op.cohort_attribute not in params.get("cohort_by", []):
            why = (f"{what}: cohort attribute {op.cohort_attribute} not in cohort_by "
                   f"{params.get('cohort_by')} of {agreement.label}")
            raise Refused(PermissionDenied(why, refused_fields=[name], reason=why))
        await self._spend_cohort(principal, agreement, op.cohort_attribute, op.cohort_value)
        audit["released"] = [(op.partner, op.field, "aggregate")]
        signed = self._spec(audit["request_id"], principal, header.purpose, agreement, grant,
                            "aggregate", compute_pb2.AggregateSpec(
                                field=op.field, op=op.op, cohort_attribute=op.cohort_attribute,
                                cohort_value=op.cohort_value,
                                context_sha256=context_digest(ctx.material))
                            .SerializeToString(deterministic=True))
        min_k = int(params["min_k"])
        try:
            answer = await self.partners.stub(op.partner).Aggregate(
                compute_pb2.AggregateRequest(signed_spec=signed, public_context=ctx.material),
                timeout=remaining)
        except grpc.aio.AioRpcError as err:
            error = partner_failure(op.partner, err, operation="compute")
            below = err.code() == grpc.StatusCode.FAILED_PRECONDITION
            await self.recorder.record(**{**audit, "released": []},
                                       decision="deny" if below else "error",
                                       reason=f"{what}: {error.reason}")
            raise error from None
        if answer.count < min_k:
            why = f"{what}: cohort below min_k {min_k} (re-checked at the gateway)"
            await self.recorder.record(**{**audit, "released": []}, decision="deny", reason=why)
            raise FailedPrecondition(f"cohort smaller than min_k {min_k}; nothing released",
                                     reason=why)
        summary = compute_pb2.ComputeSummary(
            request_id=audit["request_id"], operation="aggregate", count=1, chunk_slots=1,
            ciphertexts=1, cohort_count=answer.count if "count" in params["ops"] else 0,
            agreements=audit["agreements"])
        return await self._release(audit, f"computed {what} (cohort >= min_k {min_k})",
                                   summary, [answer.ciphertext])
