"""The requester API for private joins: the streaming ``Join`` RPC (DESIGN.md, protocol sketches).

The gateway (hub) authenticates, validates and decides every job (org, role, purpose,
partner, the agreement's join grant: mode and output; intersection-sum also needs the aggregate
grant with op ``intersection-sum`` and enforces its ``min_k``; the requester set is bounded by
``limits.max_subjects_per_request``), signs a ReleaseSpec (operation ``join``) for the partner,
and relays. It never holds a PSI scalar, an HMAC key or an HE secret key:

* ecdh-psi membership: R's H(x)^a go to P; P's (H(x)^a)^b (R's order) and H(y)^b (shuffled)
  go back to R, which finishes alone. Audited (sizes) before anything of P's reaches R.
* ecdh-psi cardinality / intersection-sum: P's (H(x)^a)^b arrive shuffled and stay here; only
  H(y)^b go on to R, whose (H(y)^b)^a come back; the hub counts matches (and adds the matching
  Enc_R(v_y) slots: R never receives a per-item ciphertext), checks min_k, audits, answers.
* keyed-hash: the two ephemeral X25519 public keys are relayed; both sides' HMACs stay here;
  the hub matches and returns flags (membership) or the count. Neither side sees the other's.

Refusals are audited; every allowed job is audited before its result is released.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.sdk._join import (
    CHANNEL_OPTIONS,
    CHUNK_ITEMS,
    MAX_CHUNK_ITEMS,
    MAX_JOIN_ITEMS,
    MODES,
    OUTPUTS,
    POINT,
    join_problems,
    split,
    stream_rpc,
    sum_grant,
)
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
)
from gateway.limits import RateLimited, RateLimiter
from gateway.logs import get_logger
from gateway.pb.pgw.v1 import common_pb2, connector_pb2, join_pb2, join_pb2_grpc
from gateway.policy import Agreement, PolicySet
from gateway.policy import choose_agreement  # the one agreement in force (shared with Query)
from gateway.privacy import BelowMinimum, PjcReply, PrivacyError, PublicContext, Scheme, pjc_total
from gateway.recorder import AuditRecorder
from gateway.requests import check_purpose, raise_if

log = get_logger("pgw.join")
#: Most bytes of HE sum material a requester may stream (it is about 16 MiB).
MAX_HE_MATERIAL = 32 * 1024 * 1024


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


class JoinService(join_pb2_grpc.JoinServiceServicer):
    def __init__(self, *, verifier: TokenVerifier, policies: Callable[[], PolicySet],
                 recorder: AuditRecorder, spec_key: Ed25519PrivateKey,
                 addresses: dict[str, str], spec_ttl_s: float = 30.0, timeout_s: float = 900.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.verifier, self._policies, self.recorder = verifier, policies, recorder
        self._key, self._ttl, self._timeout, self._clock = spec_key, spec_ttl_s, timeout_s, clock
        self._addresses = dict(addresses)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.limiter = RateLimiter()

    # Seams for wire tests (STYLE habit 1: test helpers as API): every message the hub
    # receives from the requester and from the partner passes through these.
    def observe_requester(self, message: join_pb2.JoinRequest) -> None:
        """Called with each message received from the requester (default: nothing)."""

    def observe_partner(self, message: join_pb2.PartnerJoinResponse) -> None:
        """Called with each message received from the partner (default: nothing)."""

    async def aclose(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    def _stub(self, partner: str) -> join_pb2_grpc.PartnerJoinServiceStub:
        if partner not in self._channels:
            self._channels[partner] = grpc.aio.insecure_channel(self._addresses[partner],
                                                                options=CHANNEL_OPTIONS)
        return join_pb2_grpc.PartnerJoinServiceStub(self._channels[partner])

    # ------------------------------------------------------------------ decision

    def _validate(self, start: join_pb2.JoinStart, policies: PolicySet) -> None:
        problems = check_purpose(start.purpose, policies.purposes)
        if start.partner not in self._addresses:
            problems.append(FieldViolation("start.partner", "unknown partner; want one of "
                                           + ", ".join(sorted(self._addresses))))
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

    def _decide(self, rid: str, principal: Principal, start: join_pb2.JoinStart
                ) -> tuple[Job | None, str, dict[str, Any]]:
        """(job, "") when allowed, else (None, reason); plus the audit fields."""
        policies = self._policies()
        self._validate(start, policies)
        mode, output = MODES[start.mode], OUTPUTS[start.output]
        roles = frozenset(r.value for r in principal.roles)
        candidates = [a for a in policies.agreements if (a.requester_org, a.purpose, a.partner)
                      == (principal.org, start.purpose, start.partner)]
        agreement, why = choose_agreement(candidates, principal.org, roles, start.purpose, start.partner,
                                 date.fromtimestamp(self._clock()))
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

    async def _record(self, job: Job, decision: str, reason: str) -> common_pb2.AuditReceipt:
        released = [(job.start.partner, "join", f"{job.mode} {job.output}")]
        if job.value_field:
            released.append((job.start.partner, job.value_field, "aggregate intersection-sum"))
        receipt = await self.recorder.record(
            **job.audit, released=released if decision == "allow" else [], decision=decision,
            reason=reason)
        job.audited = True
        return receipt

    def _sizes(self, job: Job, matches: int | None = None) -> str:
        text = (f"{job.mode} {job.output} under {job.agreement.label}: requester set "
                f"{job.start.requester_count}, partner set {job.partner_count}")
        return text + (f", {matches} matches" if matches is not None else "")

    # ------------------------------------------------------------------ the RPC

    @stream_rpc
    async def Join(self, request_iterator: AsyncIterator[join_pb2.JoinRequest],
                   context: grpc.aio.ServicerContext, rid: str) -> None:
        principal = self.verifier.verify(bearer_from_metadata(context.invocation_metadata() or ()))
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("kind") != "start":
            raise InvalidArgument(FieldViolation("start", "missing: a join opens with start"))
        self.observe_requester(first)
        start = first.start
        job, reason, audit = self._decide(rid, principal, start)
        if job is None:
            await self.recorder.record(**audit, released=[], decision="deny", reason=reason)
            raise PermissionDenied(reason, reason=reason)
        try:
            self.limiter.take(job.agreement.id, job.agreement.limits.requests_per_minute)
        except RateLimited as err:
            await self.recorder.record(**audit, released=[], decision="deny", reason=err.reason)
            raise
        try:
            await self._run(job, requests, context)
        except GatewayError as err:
            if not job.audited:
                await self.recorder.record(**audit, released=[], decision="error",
                                           reason=f"{self._sizes(job)}: {err.reason}")
            raise
        except asyncio.CancelledError:
            if not job.audited:
                await asyncio.shield(self.recorder.record(
                    **audit, released=[], decision="error",
                    reason=f"{self._sizes(job)}: cancelled by the requester"))
            raise

    async def _run(self, job: Job, requests: AsyncIterator[join_pb2.JoinRequest],
                   context: grpc.aio.ServicerContext) -> None:
        start = job.start
        sum_material = b""
        if job.output == "intersection-sum":
            sum_material = await self._he_material(requests)
            await asyncio.to_thread(_check_he, start.he_public, sum_material)
        remaining = context.time_remaining()
        timeout = self._timeout if remaining is None else max(0.001, min(self._timeout, remaining))
        call = self._stub(start.partner).PartnerJoin(timeout=timeout)
        try:
            accepted = await self._open_partner(job, call)
            job.partner_count = accepted.partner_count
            if job.partner_count > MAX_JOIN_ITEMS:
                raise FailedPrecondition("the partner's set is too large for one job",
                                         reason=f"partner set {job.partner_count}")
            reply = join_pb2.JoinAccepted(
                job_id=job.rid, agreement=job.audit["agreements"][0],
                partner_count=job.partner_count, keyed_public_key=accepted.keyed_public_key,
                chunk_items=CHUNK_ITEMS)
            if job.mode == "keyed-hash":
                await call.done_writing()
                await self._keyed(job, requests, call, context, reply)
            elif job.output == "membership":
                await self._membership(job, requests, call, context, reply)
            else:
                await self._matched(job, requests, call, context, reply, sum_material)
        except grpc.aio.AioRpcError as err:
            raise _partner_error(start.partner, err) from None
        finally:
            call.cancel()

    async def _he_material(self, requests: AsyncIterator[join_pb2.JoinRequest]) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for msg in requests:
            self.observe_requester(msg)
            if msg.WhichOneof("kind") != "he_sum":
                raise InvalidArgument(FieldViolation("he_sum", "missing: intersection-sum "
                                                     "streams the sum material after start"))
            size += len(msg.he_sum.data)
            if size > MAX_HE_MATERIAL:
                raise InvalidArgument(FieldViolation("he_sum", f"over {MAX_HE_MATERIAL} bytes"))
            parts.append(msg.he_sum.data)
            if msg.he_sum.last:
                return b"".join(parts)
        raise InvalidArgument(FieldViolation("he_sum", "stream ended inside the sum material"))

    async def _open_partner(self, job: Job, call: Any) -> join_pb2.PartnerAccepted:
        start = job.start
        params = join_pb2.JoinParams(
            mode=start.mode, output=start.output, requester_count=start.requester_count,
            keyed_public_key=start.keyed_public_key, value_field=job.value_field or "",
            he_public=start.he_public, min_count=job.min_k)
        now_ms = int(self._clock() * 1000)
        a = job.agreement
        spec = connector_pb2.ReleaseSpec(
            request_id=job.rid, requester_org=job.principal.org, purpose=start.purpose,
            agreement=common_pb2.AgreementRef(id=a.id, version=a.version,
                                              content_hash=a.content_hash),
            partner=start.partner, issued_at_ms=now_ms,
            expires_at_ms=now_ms + int(self._ttl * 1000), operation="join",
            operation_spec=params.SerializeToString(deterministic=True))
        await call.write(join_pb2.PartnerJoinRequest(spec=sign_spec(spec, self._key)))
        first = await call.read()
        if first is grpc.aio.EOF or first.WhichOneof("kind") != "accepted":
            raise Unavailable(f"partner {start.partner} did not accept the join",
                              reason="partner answered without accepting")
        self.observe_partner(first)
        return first.accepted  # type: ignore[no-any-return]

    async def _forward_items(self, job: Job, requests: AsyncIterator[join_pb2.JoinRequest],
                             call: Any) -> None:
        """R's blinded items to P, checked (contiguous, bounded, as many as announced)."""
        received = 0
        async for msg in requests:
            self.observe_requester(msg)
            kind = msg.WhichOneof("kind")
            if kind == "end":
                break
            if kind != "items":
                raise InvalidArgument(FieldViolation(kind or "kind", "want items, then end"))
            received = _check_chunk(msg.items, received, "items")
            if received > job.start.requester_count:
                raise InvalidArgument(FieldViolation("items", "more items than announced"))
            await call.write(join_pb2.PartnerJoinRequest(items=msg.items))
        if received != job.start.requester_count:
            raise InvalidArgument(FieldViolation(
                "items", f"got {received} items, want {job.start.requester_count}"))
        await call.write(join_pb2.PartnerJoinRequest(end=join_pb2.ItemsEnd()))
        await call.done_writing()

    async def _partner_messages(self, call: Any) -> AsyncIterator[join_pb2.PartnerJoinResponse]:
        while True:
            msg = await call.read()
            if msg is grpc.aio.EOF:
                raise Unavailable("the partner ended the join early",
                                  reason="partner stream ended before done")
            self.observe_partner(msg)
            if msg.WhichOneof("kind") == "done":
                return
            yield msg

    async def _membership(self, job: Job, requests: AsyncIterator[join_pb2.JoinRequest],
                          call: Any, context: grpc.aio.ServicerContext,
                          reply: join_pb2.JoinAccepted) -> None:
        receipt = await self._record(job, "allow", self._sizes(job))  # before any P data moves
        await context.write(join_pb2.JoinResponse(accepted=reply))
        counts = {"double_blinded": 0, "partner_points": 0}

        async def relay() -> None:
            async for msg in self._partner_messages(call):
                kind = msg.WhichOneof("kind")
                if kind not in counts:
                    raise Unavailable("the partner sent an unexpected message",
                                      reason=f"partner sent {kind} in membership")
                chunk = getattr(msg, kind)
                counts[kind] = _check_chunk(chunk, counts[kind], kind)
                await context.write(join_pb2.JoinResponse(**{kind: chunk}))

        await _both(self._forward_items(job, requests, call), relay())
        _expect(counts["double_blinded"], job.start.requester_count, "double-blinded points")
        _expect(counts["partner_points"], job.partner_count, "partner points")
        await context.write(join_pb2.JoinResponse(result=join_pb2.JoinResult(receipt=receipt)))

    async def _matched(self, job: Job, requests: AsyncIterator[join_pb2.JoinRequest],
                       call: Any, context: grpc.aio.ServicerContext,
                       reply: join_pb2.JoinAccepted, sum_material: bytes) -> None:
        await context.write(join_pb2.JoinResponse(accepted=reply))
        double: list[bytes] = []
        points: list[bytes] = []
        pieces: list[bytes] = []
        ciphertexts: list[bytes] = []
        reblinded: list[bytes] = []

        async def from_requester() -> None:
            await self._forward_items(job, requests, call)
            async for msg in requests:
                self.observe_requester(msg)
                kind = msg.WhichOneof("kind")
                if kind == "end":
                    return
                if kind != "reblinded":
                    raise InvalidArgument(FieldViolation(kind or "kind", "want reblinded"))
                _check_chunk(msg.reblinded, len(reblinded), "reblinded")
                reblinded.extend(split(msg.reblinded.packed))
                if len(reblinded) > job.partner_count:
                    raise InvalidArgument(FieldViolation("reblinded", "more than sent"))

        async def from_partner() -> None:
            async for msg in self._partner_messages(call):
                kind = msg.WhichOneof("kind")
                if kind == "double_blinded":
                    _check_chunk(msg.double_blinded, len(double), kind)
                    double.extend(split(msg.double_blinded.packed))
                    await context.write(join_pb2.JoinResponse(progress=join_pb2.JoinProgress(
                        stage="partner-blind", done=len(double),
                        total=job.start.requester_count)))
                elif kind == "partner_points":
                    _check_chunk(msg.partner_points, len(points), kind)
                    points.extend(split(msg.partner_points.packed))
                    await context.write(join_pb2.JoinResponse(partner_points=msg.partner_points))
                elif kind == "ciphertext" and job.output == "intersection-sum":
                    pieces.append(msg.ciphertext.data)
                    if msg.ciphertext.last:
                        ciphertexts.append(b"".join(pieces))
                        pieces.clear()
                else:
                    raise Unavailable("the partner sent an unexpected message",
                                      reason=f"partner sent {kind} in {job.output}")

        await _both(from_requester(), from_partner())
        _expect(len(double), job.start.requester_count, "double-blinded points")
        _expect(len(points), job.partner_count, "partner points")
        _expect(len(reblinded), job.partner_count, "re-blinded points")
        if job.output == "cardinality":
            if len(set(reblinded)) != len(reblinded):
                raise PrivacyError("re-blinded points: got repeated points, want distinct")
            theirs = set(double)
            count = sum(1 for p in reblinded if p in theirs)
            receipt = await self._record(job, "allow", self._sizes(job, count))
            await context.write(join_pb2.JoinResponse(result=join_pb2.JoinResult(
                match_count=count, receipt=receipt)))
            return
        _expect(len(ciphertexts), -(-job.partner_count // 4096), "ciphertexts")
        try:
            encrypted, count = await asyncio.to_thread(
                _pjc_total, sum_material, PjcReply(double, points, ciphertexts), reblinded,
                job.min_k)
        except BelowMinimum as err:
            await self._record(job, "deny", f"{self._sizes(job, err.got)}: {err.reason}")
            raise
        receipt = await self._record(job, "allow", self._sizes(job, count))
        await context.write(join_pb2.JoinResponse(result=join_pb2.JoinResult(
            match_count=count, encrypted_sum=encrypted, receipt=receipt)))

    async def _keyed(self, job: Job, requests: AsyncIterator[join_pb2.JoinRequest],
                     call: Any, context: grpc.aio.ServicerContext,
                     reply: join_pb2.JoinAccepted) -> None:
        await context.write(join_pb2.JoinResponse(accepted=reply))
        mine: list[bytes] = []  # R's HMAC chunks, packed, in R's order
        theirs: set[bytes] = set()
        received = [0, 0]

        async def from_requester() -> None:
            async for msg in requests:
                self.observe_requester(msg)
                kind = msg.WhichOneof("kind")
                if kind == "end":
                    return
                if kind != "items":
                    raise InvalidArgument(FieldViolation(kind or "kind", "want items, then end"))
                received[0] = _check_chunk(msg.items, received[0], "items")
                if received[0] > job.start.requester_count:
                    raise InvalidArgument(FieldViolation("items", "more items than announced"))
                mine.append(msg.items.packed)

        async def from_partner() -> None:
            async for msg in self._partner_messages(call):
                if msg.WhichOneof("kind") != "partner_points":
                    raise Unavailable("the partner sent an unexpected message",
                                      reason="partner sent non-HMACs in keyed-hash")
                received[1] = _check_chunk(msg.partner_points, received[1], "partner_points")
                theirs.update(split(msg.partner_points.packed))
                await context.write(join_pb2.JoinResponse(progress=join_pb2.JoinProgress(
                    stage="partner-set", done=received[1], total=job.partner_count)))

        await _both(from_requester(), from_partner())
        _expect(received[0], job.start.requester_count, "requester HMACs")
        _expect(received[1], job.partner_count, "partner HMACs")
        flags = [b"".join(b"\x01" if m in theirs else b"\x00" for m in split(packed))
                 for packed in mine]
        count = sum(f.count(1) for f in flags)
        receipt = await self._record(job, "allow", self._sizes(job, count))
        if job.output == "membership":
            offset = 0
            for f in flags:
                await context.write(join_pb2.JoinResponse(
                    membership=join_pb2.PointChunk(offset=offset, packed=f)))
                offset += len(f)
        await context.write(join_pb2.JoinResponse(result=join_pb2.JoinResult(
            match_count=count, receipt=receipt)))


def _check_chunk(chunk: join_pb2.PointChunk, expected_offset: int, what: str) -> int:
    """The running count after ``chunk``; refuses gaps, ragged or oversized chunks."""
    n, rest = divmod(len(chunk.packed), POINT)
    if chunk.offset != expected_offset or rest or not 0 < n <= MAX_CHUNK_ITEMS:
        raise InvalidArgument(FieldViolation(f"{what}.offset", f"got a chunk at {chunk.offset} "
                                             f"of {len(chunk.packed)} bytes, want offset "
                                             f"{expected_offset} and 1..{MAX_CHUNK_ITEMS} "
                                             f"points of {POINT} bytes"))
    return expected_offset + n


def _expect(got: int, want: int, what: str) -> None:
    if got != want:
        raise Unavailable(f"join stream incomplete: got {got} {what}, want {want}",
                          reason=f"{what}: got {got}, want {want}")


async def _both(a: Any, b: Any) -> None:
    """Run two pumps; the first failure cancels the other."""
    tasks = [asyncio.ensure_future(a), asyncio.ensure_future(b)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            t.result()
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()


def _check_he(public: bytes, sum_material: bytes) -> None:
    pub, summ = PublicContext.load(public), PublicContext.load(sum_material)
    if pub.scheme is not Scheme.CKKS or pub.can_sum:
        raise PrivacyError("he_public: want CKKS public material without Galois keys")
    if summ.scheme is not Scheme.CKKS or not summ.can_sum:
        raise PrivacyError("he_sum: want CKKS sum material (public key and sum Galois keys)")


def _pjc_total(sum_material: bytes, reply: PjcReply, reblinded: list[bytes],
               min_k: int) -> tuple[bytes, int]:
    """In one worker thread: load the sum context and add the matching slots."""
    return pjc_total(PublicContext.load(sum_material), reply, reblinded, min_count=min_k)


def _partner_error(partner: str, err: grpc.aio.AioRpcError) -> GatewayError:
    code = err.code()
    log.warning("partner_join_failed", partner=partner, code=code.name)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"partner {partner} did not finish the join before the deadline")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return PrivacyError(f"partner {partner} rejected the join data: {err.details()}")
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return FailedPrecondition(f"partner {partner} refused the join spec",
                                  reason=f"connector answered {code.name}: {err.details()}")
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(f"partner {partner}: {err.details()}")
    return Unavailable(f"partner {partner} is unavailable; retry later",
                       reason=f"connector answered {code.name}")
