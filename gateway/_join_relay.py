"""The hub's relay for one allowed join job: a state machine per mode and output.

* ecdh-psi membership (:meth:`JobRelay.membership`): audited (sizes) before anything of P's
  moves, then R's points go to P and P's answers straight back to R.
* ecdh-psi cardinality / intersection-sum (:meth:`JobRelay.matched`): P's double-blinded points
  stay here; the hub counts R's re-blinded matches (and adds the matching slots), checks
  ``min_k``, audits and answers.
* keyed-hash (:meth:`JobRelay.keyed`): both sides' HMACs stay here; the hub matches and returns
  flags (membership) or the count.

Every message in either direction passes through the service's ``observe_*`` seams.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from connectors.sdk._join_wire import split
from gateway._join_decision import Job, record, sizes
from gateway._join_streams import both, check_chunk, expect, hub_total
from gateway.errors import FieldViolation, InvalidArgument, Unavailable
from gateway.pb.pgw.v1 import common_pb2, join_pb2
from gateway.privacy import BelowMinimum, PjcReply, PrivacyError

if TYPE_CHECKING:
    from gateway.join_service import JoinService


class JobRelay:
    """The streams of one decided job: requester in, partner call, requester out."""

    def __init__(self, service: JoinService, job: Job,
                 requests: AsyncIterator[join_pb2.JoinRequest], call: Any,
                 context: grpc.aio.ServicerContext) -> None:
        self.service, self.job, self.requests = service, job, requests
        self.call, self.context = call, context

    async def _record(self, decision: str, reason: str) -> common_pb2.AuditReceipt:
        return await record(self.service.recorder, self.job, decision, reason)

    async def _forward_items(self) -> None:
        """R's blinded items to P, checked (contiguous, bounded, as many as announced)."""
        job, requests, call = self.job, self.requests, self.call
        received = 0
        async for msg in requests:
            self.service.observe_requester(msg)
            kind = msg.WhichOneof("kind")
            if kind == "end":
                break
            if kind != "items":
                raise InvalidArgument(FieldViolation(kind or "kind", "want items, then end"))
            received = check_chunk(msg.items, received, "items")
            if received > job.start.requester_count:
                raise InvalidArgument(FieldViolation("items", "more items than announced"))
            await call.write(join_pb2.PartnerJoinRequest(items=msg.items))
        if received != job.start.requester_count:
            raise InvalidArgument(FieldViolation(
                "items", f"got {received} items, want {job.start.requester_count}"))
        await call.write(join_pb2.PartnerJoinRequest(end=join_pb2.ItemsEnd()))
        await call.done_writing()

    async def _partner_messages(self) -> AsyncIterator[join_pb2.PartnerJoinResponse]:
        while True:
            msg = await self.call.read()
            if msg is grpc.aio.EOF:
                raise Unavailable("the partner ended the join early",
                                  reason="partner stream ended before done")
            self.service.observe_partner(msg)
            if msg.WhichOneof("kind") == "done":
                return
            yield msg

    async def membership(self, reply: join_pb2.JoinAccepted) -> None:
        """ecdh-psi membership: audited before any of P's data moves, then relayed as is."""
        job, context = self.job, self.context
        receipt = await self._record("allow", sizes(job))  # before any P data moves
        await context.write(join_pb2.JoinResponse(accepted=reply))
        counts = {"double_blinded": 0, "partner_points": 0}

        async def relay() -> None:
            async for msg in self._partner_messages():
                kind = msg.WhichOneof("kind")
                if kind not in counts:
                    raise Unavailable("the partner sent an unexpected message",
                                      reason=f"partner sent {kind} in membership")
                chunk = getattr(msg, kind)
                counts[kind] = check_chunk(chunk, counts[kind], kind)
                await context.write(join_pb2.JoinResponse(**{kind: chunk}))

        await both(self._forward_items(), relay())
        expect(counts["double_blinded"], job.start.requester_count, "double-blinded points")
        expect(counts["partner_points"], job.partner_count, "partner points")
        await context.write(join_pb2.JoinResponse(result=join_pb2.JoinResult(receipt=receipt)))

    async def matched(self, reply: join_pb2.JoinAccepted, sum_material: bytes) -> None:
        """ecdh-psi cardinality / intersection-sum: P's double-blinded points stay here."""
        job, requests, context = self.job, self.requests, self.context
        await context.write(join_pb2.JoinResponse(accepted=reply))
        double: list[bytes] = []
        points: list[bytes] = []
        pieces: list[bytes] = []
        ciphertexts: list[bytes] = []
        reblinded: list[bytes] = []

        async def from_requester() -> None:
            await self._forward_items()
            async for msg in requests:
                self.service.observe_requester(msg)
                kind = msg.WhichOneof("kind")
                if kind == "end":
                    return
                if kind != "reblinded":
                    raise InvalidArgument(FieldViolation(kind or "kind", "want reblinded"))
                check_chunk(msg.reblinded, len(reblinded), "reblinded")
                reblinded.extend(split(msg.reblinded.packed))
                if len(reblinded) > job.partner_count:
                    raise InvalidArgument(FieldViolation("reblinded", "more than sent"))

        async def from_partner() -> None:
            async for msg in self._partner_messages():
                kind = msg.WhichOneof("kind")
                if kind == "double_blinded":
                    check_chunk(msg.double_blinded, len(double), kind)
                    double.extend(split(msg.double_blinded.packed))
                    await context.write(join_pb2.JoinResponse(progress=join_pb2.JoinProgress(
                        stage="partner-blind", done=len(double),
                        total=job.start.requester_count)))
                elif kind == "partner_points":
                    check_chunk(msg.partner_points, len(points), kind)
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

        await both(from_requester(), from_partner())
        expect(len(double), job.start.requester_count, "double-blinded points")
        expect(len(points), job.partner_count, "partner points")
        expect(len(reblinded), job.partner_count, "re-blinded points")
        if job.output == "cardinality":
            if len(set(reblinded)) != len(reblinded):
                raise PrivacyError("re-blinded points: got repeated points, want distinct")
            theirs = set(double)
            count = sum(1 for p in reblinded if p in theirs)
            receipt = await self._record("allow", sizes(job, count))
            await context.write(join_pb2.JoinResponse(result=join_pb2.JoinResult(
                match_count=count, receipt=receipt)))
            return
        expect(len(ciphertexts), -(-job.partner_count // 4096), "ciphertexts")
        try:
            encrypted, count = await asyncio.to_thread(
                hub_total, sum_material, PjcReply(double, points, ciphertexts), reblinded,
                job.min_k)
        except BelowMinimum as err:
            await self._record("deny", f"{sizes(job, err.got)}: {err.reason}")
            raise
        receipt = await self._record("allow", sizes(job, count))
        await context.write(join_pb2.JoinResponse(result=join_pb2.JoinResult(
            match_count=count, encrypted_sum=encrypted, receipt=receipt)))

    async def keyed(self, reply: join_pb2.JoinAccepted) -> None:
        """keyed-hash: both sides' HMACs stay here; flags or the count go back."""
        job, requests, context = self.job, self.requests, self.context
        await context.write(join_pb2.JoinResponse(accepted=reply))
        mine: list[bytes] = []  # R's HMAC chunks, packed, in R's order
        theirs: set[bytes] = set()
        received = [0, 0]

        async def from_requester() -> None:
            async for msg in requests:
                self.service.observe_requester(msg)
                kind = msg.WhichOneof("kind")
                if kind == "end":
                    return
                if kind != "items":
                    raise InvalidArgument(FieldViolation(kind or "kind", "want items, then end"))
                received[0] = check_chunk(msg.items, received[0], "items")
                if received[0] > job.start.requester_count:
                    raise InvalidArgument(FieldViolation("items", "more items than announced"))
                mine.append(msg.items.packed)

        async def from_partner() -> None:
            async for msg in self._partner_messages():
                if msg.WhichOneof("kind") != "partner_points":
                    raise Unavailable("the partner sent an unexpected message",
                                      reason="partner sent non-HMACs in keyed-hash")
                received[1] = check_chunk(msg.partner_points, received[1], "partner_points")
                theirs.update(split(msg.partner_points.packed))
                await context.write(join_pb2.JoinResponse(progress=join_pb2.JoinProgress(
                    stage="partner-set", done=received[1], total=job.partner_count)))

        await both(from_requester(), from_partner())
        expect(received[0], job.start.requester_count, "requester HMACs")
        expect(received[1], job.partner_count, "partner HMACs")
        flags = [b"".join(b"\x01" if m in theirs else b"\x00" for m in split(packed))
                 for packed in mine]
        count = sum(f.count(1) for f in flags)
        receipt = await self._record("allow", sizes(job, count))
        if job.output == "membership":
            offset = 0
            for f in flags:
                await context.write(join_pb2.JoinResponse(
                    membership=join_pb2.PointChunk(offset=offset, packed=f)))
                offset += len(f)
        await context.write(join_pb2.JoinResponse(result=join_pb2.JoinResult(
            match_count=count, receipt=receipt)))
