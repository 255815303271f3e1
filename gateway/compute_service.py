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

Every refusal is audited (kind ``compute``) with what was asked, never a value.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.sdk._compute import context_digest, shared_pool, subjects_digest
from connectors.sdk._spec import sign_spec
from gateway.auth import Principal, TokenVerifier, bearer_from_metadata
from gateway.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    GatewayError,
    InvalidArgument,
    PermissionDenied,
    Unavailable,
    UpstreamViolation,
)
from gateway.limits import RateLimited, RateLimiter
from gateway.logs import get_logger
from gateway.pb.pgw.v1 import common_pb2, compute_pb2, compute_pb2_grpc, connector_pb2
from gateway.policy import Agreement, ApprovedModel, FieldGrant, PolicySet
from gateway.privacy import SLOTS, HePool, PrivacyError, PublicContext, Scheme, weighted_sum
from gateway.recorder import AuditRecorder, response_digest
from gateway.status import rpc
from gateway.validate import normalize_person_id

log = get_logger("pgw.compute")
MAX_MESSAGE = 16 * 1024 * 1024
#: Hard ceiling on subjects per call, whatever an agreement allows.
MAX_SUBJECTS = 1 << 21
#: Ciphertexts per weighted-sum task in the pool; smaller jobs run in one thread.
BATCH = 4
INLINE_CHUNKS = 2
#: Compute can take minutes at 2^20 subjects: the per-call cap when the requester sets none.
COMPUTE_TIMEOUT_S = 900.0
AGGREGATE_OPS = ("sum", "mean", "count")


class PartnerCompute:
    """Channels to the connectors' PartnerComputeService, opened lazily."""

    def __init__(self, addresses: dict[str, str]) -> None:
        self._addresses = dict(addresses)
        self._stubs: dict[str, compute_pb2_grpc.PartnerComputeServiceStub] = {}
        self._channels: list[grpc.aio.Channel] = []

    @property
    def partners(self) -> list[str]:
        return sorted(self._addresses)

    def stub(self, partner: str) -> compute_pb2_grpc.PartnerComputeServiceStub:
        if partner not in self._stubs:
            channel = grpc.aio.insecure_channel(
                self._addresses[partner],
                options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                         ("grpc.max_send_message_length", MAX_MESSAGE)])
            self._channels.append(channel)
            self._stubs[partner] = compute_pb2_grpc.PartnerComputeServiceStub(channel)
        return self._stubs[partner]

    async def aclose(self) -> None:
        for channel in self._channels:
            await channel.close()
        self._channels.clear()
        self._stubs.clear()


def convert(partner: str, err: grpc.aio.AioRpcError) -> GatewayError:
    """A connector's failure, in the pgw error tree (never the connector's text for refusals)."""
    code = err.code()
    log.warning("connector_compute_failed", partner=partner, code=code.name)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(f"partner {partner} refused: {err.details()}",
                                  reason=f"{partner}: {err.details()}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"partner {partner} did not answer before the deadline")
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.INVALID_ARGUMENT):
        return FailedPrecondition(f"partner {partner} refused the release spec",
                                  reason=f"connector answered {code.name}")
    return Unavailable(f"partner {partner} is unavailable; retry later",
                       reason=f"connector answered {code.name}")


def _ws_inline(material: bytes, columns: list[list[bytes]], weights: list[float], bias: float,
               count: int) -> list[bytes]:
    # One thread, one context of its own (TenSEAL objects are not thread-safe).
    return weighted_sum(PublicContext.load(material), columns, weights, bias, count=count)


class _Refused(Exception):
    """A refusal to audit as ``deny`` before raising ``error``."""

    def __init__(self, error: GatewayError) -> None:
        self.error = error


class ComputeService(compute_pb2_grpc.ComputeServiceServicer):
    def __init__(self, *, verifier: TokenVerifier, policies: PolicySet | Callable[[], PolicySet],
                 models: dict[str, ApprovedModel], partners: PartnerCompute,
                 recorder: AuditRecorder, spec_key: Ed25519PrivateKey, spec_ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.time, pool: HePool | None = None) -> None:
        self.verifier, self.models, self.partners = verifier, dict(models), partners
        self._policies = policies if callable(policies) else (lambda: policies)
        self.recorder, self._key, self._ttl, self._clock = recorder, spec_key, spec_ttl_s, clock
        self.limiter = RateLimiter()
        self._pool = pool

    # --- entry ----------------------------------------------------------------------------

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
                raise _Refused(InvalidArgument(FieldViolation(
                    "header.operation", "want linear or aggregate")))
        except _Refused as refused:
            await self.recorder.record(**audit, decision="deny", reason=refused.error.reason)
            raise refused.error from None
        for message in messages:
            await context.write(message)

    def _context(self, header: compute_pb2.ComputeHeader) -> PublicContext:
        try:
            ctx = PublicContext.load(header.public_context)
        except PrivacyError as err:
            raise _Refused(InvalidArgument(FieldViolation("header.public_context",
                                                          err.message))) from None
        if ctx.scheme is not Scheme.CKKS:
            raise _Refused(InvalidArgument(FieldViolation("header.public_context",
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
            raise _Refused(PermissionDenied(p.reason, refused_fields=[f"{partner}.{field}"],
                                            reason=p.reason))
        grant = p.agreement.grant(field)
        if grant is None:
            why = f"{partner}.{field} not granted by {p.agreement.label}"
            raise _Refused(PermissionDenied(why, refused_fields=[f"{partner}.{field}"],
                                            reason=why))
        return p.agreement, grant

    @staticmethod
    def _limit(agreement: Agreement, subject_count: int) -> None:
        limit = agreement.limits.max_subjects_per_request
        if subject_count > limit:
            why = (f"subject_count {subject_count} exceeds limits.max_subjects_per_request "
                   f"{limit} of {agreement.label}")
            raise _Refused(PermissionDenied(why, reason=why))

    def _take_rate(self, agreements: Sequence[Agreement]) -> None:
        try:
            for a in agreements:
                self.limiter.take(a.id, a.limits.requests_per_minute)
        except RateLimited as err:
            raise _Refused(err) from None

    def _spec(self, rid: str, principal: Principal, purpose: str, agreement: Agreement,
              grant: FieldGrant, operation: str, operation_spec: bytes
              ) -> connector_pb2.SignedReleaseSpec:
        now_ms = int(self._clock() * 1000)
        spec = connector_pb2.ReleaseSpec(
            request_id=rid, requester_org=principal.org, purpose=purpose,
            agreement=_ref(agreement), partner=agreement.partner,
            fields=[common_pb2.FieldRelease(field=grant.field, transform=grant.transform,
                                            params_json=grant.params_json)],
            issued_at_ms=now_ms, expires_at_ms=now_ms + int(self._ttl * 1000),
            operation=operation, operation_spec=operation_spec)
        return sign_spec(spec, self._key)

    # --- linear score ---------------------------------------------------------------------

    async def _subjects(self, header: compute_pb2.ComputeHeader,
                        stream: AsyncIterator[compute_pb2.ComputeRequest]) -> list[str]:
        want = header.subject_count
        if not 1 <= want <= MAX_SUBJECTS:
            raise _Refused(InvalidArgument(FieldViolation(
                "header.subject_count", f"got {want}, want 1..{MAX_SUBJECTS}")))
        raw: list[str] = []
        async for part in stream:
            raw.extend(part.subjects.subjects)
            if len(raw) > want:
                break
        if len(raw) != want:
            raise _Refused(InvalidArgument(FieldViolation(
                "subjects", f"got {len(raw)} ids, want header.subject_count {want}")))
        ids, problems = [], []
        for i, s in enumerate(raw):
            try:
                ids.append(normalize_person_id(s))
            except ValueError as exc:
                if len(problems) < 20:
                    problems.append(FieldViolation(f"subjects[{i}]",
                                                   f"not a GB 11643-1999 id: {exc}"))
        if not problems and len(set(ids)) != len(ids):
            problems.append(FieldViolation("subjects", "the same id is listed twice"))
        if problems:
            raise _Refused(InvalidArgument(problems))
        return ids

    async def _linear(self, header: compute_pb2.ComputeHeader,
                      stream: AsyncIterator[compute_pb2.ComputeRequest], audit: dict[str, Any],
                      principal: Principal, remaining: float) -> list[compute_pb2.ComputeResponse]:
        model = self.models.get(header.linear.model)
        if model is None:
            raise _Refused(InvalidArgument(FieldViolation(
                "header.linear.model", f"unknown model; want one of {sorted(self.models)}")))
        audit["partners"] = list(model.partners)
        what = (f"linear model {model.label} over "
                + ", ".join(i.name for i in model.inputs))
        ctx = self._context(header)
        subjects = await self._subjects(header, stream)
        audit["subjects"] = subjects
        if principal.org != model.requester_org or header.purpose != model.purpose:
            why = (f"{what}: model approved for {model.requester_org} / {model.purpose}, "
                   f"got {principal.org} / {header.purpose or 'no purpose'}")
            raise _Refused(PermissionDenied(why, reason=why))
        grants: list[tuple[Agreement, FieldGrant]] = []
        for item in model.inputs:
            agreement, grant = self._agreement(principal, header.purpose, item.partner,
                                               item.field)
            params = grant.param_dict
            if (grant.transform != "encrypted" or "linear" not in params.get("ops", [])
                    or model.id not in params.get("models", [])):
                why = (f"{item.name} granted by {agreement.label} as {grant.describe()}, "
                       f"want encrypted with op linear for model {model.id}")
                raise _Refused(PermissionDenied(why, refused_fields=[item.name], reason=why))
            grants.append((agreement, grant))
        for agreement, _ in grants:
            self._limit(agreement, len(subjects))
        unique = list({a.id: a for a, _ in grants}.values())
        audit["agreements"] = [_ref(a) for a in unique]
        audit["released"] = [(i.partner, i.field, "encrypted") for i in model.inputs]
        self._take_rate(unique)
        n = len(subjects)
        espec = dict(op="linear", model=model.id, context_sha256=context_digest(ctx.material),
                     subjects_sha256=subjects_digest(subjects), subject_count=n,
                     chunk_slots=SLOTS)
        signed = [self._spec(f"{audit['request_id']}-{i}", principal, header.purpose, a, g,
                             "encrypt", compute_pb2.EncryptSpec(field=g.field, **espec)
                             .SerializeToString(deterministic=True))
                  for i, (a, g) in enumerate(grants)]
        try:
            presence, result = await self._evaluate(model, ctx, subjects, signed, remaining)
        except GatewayError as err:
            await self.recorder.record(**audit, decision="error", reason=f"{what}: {err.reason}")
            raise
        except asyncio.CancelledError:
            await self.recorder.record(**audit, decision="error",
                                       reason=f"{what}: cancelled after dispatch")
            raise
        summary = compute_pb2.ComputeSummary(
            request_id=audit["request_id"], operation="linear", model=model.id,
            model_version=model.version, count=n, chunk_slots=SLOTS, ciphertexts=len(result),
            presence=[compute_pb2.Presence(partner=p, found=f) for p, f in presence],
            agreements=audit["agreements"])
        return await self._release(audit, f"computed {what} (content {model.content_hash[:16]})",
                                   summary, result)

    async def _evaluate(self, model: ApprovedModel, ctx: PublicContext, subjects: list[str],
                        signed: list[connector_pb2.SignedReleaseSpec], remaining: float
                        ) -> tuple[list[tuple[str, bytes]], list[bytes]]:
        """Stream each input from its partner and add the weighted ciphertexts as they come."""
        n, chunks = len(subjects), math.ceil(len(subjects) / SLOTS)
        columns: list[list[bytes]] = [[] for _ in model.inputs]
        presence: list[tuple[str, bytes]] = [("", b"")] * len(model.inputs)
        ready = asyncio.Condition()

        async def read(i: int) -> None:
            partner = model.inputs[i].partner
            call = self.partners.stub(partner).Encrypt(
                _encrypt_requests(signed[i], ctx.material, subjects), timeout=remaining)
            try:
                async for message in call:
                    if message.HasField("summary"):
                        s = message.summary
                        if (s.count != n or s.ciphertexts != chunks
                                or len(s.found) != math.ceil(n / 8) or presence[i][0]):
                            raise UpstreamViolation(f"{partner} summary malformed",
                                                    reason=f"{partner} encrypt summary shape")
                        presence[i] = (partner, s.found)
                    elif (not presence[i][0] or message.chunk.index != len(columns[i])
                          or len(columns[i]) >= chunks):
                        raise UpstreamViolation(f"{partner} chunk out of order",
                                                reason=f"{partner} encrypt chunk order")
                    else:
                        columns[i].append(message.chunk.ciphertext)
                        async with ready:
                            ready.notify_all()
            except grpc.aio.AioRpcError as err:
                raise convert(partner, err) from None
            if len(columns[i]) != chunks:
                raise UpstreamViolation(f"{partner} answered too few ciphertexts",
                                        reason=f"{partner} encrypt chunk count")

        readers = [asyncio.ensure_future(read(i)) for i in range(len(model.inputs))]
        weights = [i.weight for i in model.inputs]
        small = chunks <= INLINE_CHUNKS and self._pool is None
        pool = None if small else (self._pool or shared_pool())
        jobs: list[asyncio.Future[list[bytes]]] = []
        try:
            for start in range(0, chunks, BATCH):
                stop = min(start + BATCH, chunks)
                async with ready:
                    while min(len(c) for c in columns) < stop:
                        failed = [r for r in readers if r.done() and r.exception()]
                        if failed:
                            raise failed[0].exception()  # type: ignore[misc]
                        try:
                            await asyncio.wait_for(ready.wait(), 0.5)
                        except TimeoutError:
                            pass
                part = [c[start:stop] for c in columns]
                count = min(n, stop * SLOTS) - start * SLOTS
                if pool is None:
                    jobs.append(asyncio.ensure_future(asyncio.to_thread(
                        _ws_inline, ctx.material, part, weights, model.bias, count)))
                else:
                    jobs.append(asyncio.wrap_future(pool.submit(
                        weighted_sum, ctx, part, weights, model.bias, count=count)))
            await asyncio.gather(*readers)
            result = [data for job in jobs for data in await job]
        except PrivacyError as err:
            raise UpstreamViolation("a partner answered bytes that are not ciphertexts",
                                    reason=f"weighted sum: {err.reason}") from None
        finally:
            for task in [*readers, *jobs]:
                task.cancel()
            await asyncio.gather(*readers, *jobs, return_exceptions=True)
        return presence, result

    # --- cohort aggregate -----------------------------------------------------------------

    async def _aggregate(self, header: compute_pb2.ComputeHeader, audit: dict[str, Any],
                         principal: Principal, remaining: float
                         ) -> list[compute_pb2.ComputeResponse]:
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
            raise _Refused(InvalidArgument(problems))
        ctx = self._context(header)
        agreement, grant = self._agreement(principal, header.purpose, op.partner, op.field)
        audit["agreements"] = [_ref(agreement)]
        params = grant.param_dict
        if grant.transform != "aggregate":
            why = (f"{what}: {name} granted by {agreement.label} as {grant.describe()}, "
                   "want aggregate")
            raise _Refused(PermissionDenied(why, refused_fields=[name], reason=why))
        if op.op not in params.get("ops", []):
            why = f"{what}: op {op.op} not in the ops {params.get('ops')} of {agreement.label}"
            raise _Refused(PermissionDenied(why, refused_fields=[name], reason=why))
        if op.cohort_attribute not in params.get("cohort_by", []):
            why = (f"{what}: cohort attribute {op.cohort_attribute} not in cohort_by "
                   f"{params.get('cohort_by')} of {agreement.label}")
            raise _Refused(PermissionDenied(why, refused_fields=[name], reason=why))
        self._take_rate([agreement])
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
            error = convert(op.partner, err)
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

    # --- release --------------------------------------------------------------------------

    async def _release(self, audit: dict[str, Any], reason: str,
                       summary: compute_pb2.ComputeSummary, result: list[bytes]
                       ) -> list[compute_pb2.ComputeResponse]:
        """Audit (durably) first, then hand back the summary and the result ciphertexts."""
        h = hashlib.sha256(summary.SerializeToString(deterministic=True))
        for data in result:
            h.update(hashlib.sha256(data).digest())
        receipt = await self.recorder.record(**audit, decision="allow", reason=reason,
                                             digest=response_digest(h.digest()))
        summary.receipt.CopyFrom(receipt)
        return [compute_pb2.ComputeResponse(summary=summary)] + [
            compute_pb2.ComputeResponse(chunk=compute_pb2.CiphertextChunk(index=i, ciphertext=d))
            for i, d in enumerate(result)]


async def _encrypt_requests(signed: connector_pb2.SignedReleaseSpec, material: bytes,
                            subjects: list[str]) -> AsyncIterator[compute_pb2.EncryptRequest]:
    yield compute_pb2.EncryptRequest(start=compute_pb2.EncryptStart(
        signed_spec=signed, public_context=material))
    for i in range(0, len(subjects), 65536):
        yield compute_pb2.EncryptRequest(subjects=compute_pb2.SubjectChunk(
            subjects=subjects[i:i + 65536]))


def _ref(a: Agreement) -> common_pb2.AgreementRef:
    return common_pb2.AgreementRef(id=a.id, version=a.version, content_hash=a.content_hash)
