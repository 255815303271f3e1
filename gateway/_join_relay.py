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
from gateway._join_streams import (
    FLAGS_CHUNK,
    both,
    check_chunk,
    expect,
    hub_count,
    hub_flags,
    hub_total,
)
from gateway.errors import FieldViolation, InvalidArgument, Unavailable
from gateway.pb.pgw.v1 import common_pb2, join_pb2
from gateway.privacy import BelowMinimum, PjcReply

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
        double, points, reblinded = bytearray(), bytearray(), bytearray()
        counts = {"double": 0, "points": 0, "reblinded": 0}
        pieces: list[bytes] = []
        ciphertexts: list[bytes] = []

        async def from_requester() -> None:
            await self._forward_items()
            async for msg in requests:
                self.service.observe_requester(msg)
                kind = msg.WhichOneof("kind")
                if kind == "end":
                    return
                if kind != "reblinded":
                    raise InvalidArgument(FieldViolation(kind or "kind", "want reblinded"))
                counts["reblinded"] = check_chunk(msg.reblinded, counts["reblinded"],
                                                  "reblinded")
                if counts["reblinded"] > job.partner_count:
                    raise InvalidArgument(FieldViolation("reblinded", "more than sent"))
                reblinded.extend(msg.reblinded.packed)

        async def from_partner() -> None:
            async for msg in self._partner_messages():
                kind = msg.WhichOneof("kind")
                if kind == "double_blinded":
                    counts["double"] = check_chunk(msg.double_blinded, counts["double"], kind)
                    double.extend(msg.double_blinded.packed)
                    await context.write(join_pb2.JoinResponse(progress=join_pb2.JoinProgress(
                        stage="partner-blind", done=counts["double"],
                        total=job.start.requester_count)))
                elif kind == "partner_points":
                    counts["points"] = check_chunk(msg.partner_points, counts["points"], kind)
                    points.extend(msg.partner_points.packed)
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
        expect(counts["double"], job.start.requester_count, "double-blinded points")
        expect(counts["points"], job.partner_count, "partner points")
        expect(counts["reblinded"], job.partner_count, "re-blinded points")
        if job.output == "cardinality":
            count = await asyncio.to_thread(hub_count, double, reblinded)
            receipt = await self._record("allow", sizes(job, count))
            await context.write(join_pb2.JoinResponse(result=join_pb2.JoinResult(
                match_count=count, receipt=receipt)))
            return
        expect(len(ciphertexts), -(-job.partner_count // 4096), "ciphertexts")
        try:
            encrypted, count = await asyncio.to_thread(
                hub_total, sum_material, PjcReply(split(double), split(points), ciphertexts),
                split(reblinded), job.min_k)
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
        mine, theirs = bytearray(), bytearray()  # R's HMACs in R's order; P's HMACs
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
                mine.extend(msg.items.packed)

        async def from_partner() -> None:
            async for msg in self._partner_messages():
                if msg.WhichOneof("kind") != "partner_points":
                    raise Unavailable("the partner sent an unexpected message",
                                      reason="partner sent non-HMACs in keyed-hash")
                received[1] = check_chunk(msg.partner_points, received[1], "partner_points")
                theirs.extend(msg.partner_points.packed)
                await context.write(join_pb2.JoinResponse(progress=join_pb2.JoinProgress(
                    stage="partner-set", done=received[1], total=job.partner_count)))

        await both(from_requester(), from_partner())
        expect(received[0], job.start.requester_count, "requester HMACs")
        expect(received[1], job.partner_count, "partner HMACs")
        flags = await asyncio.to_thread(hub_flags, mine, theirs)
        del mine[:], theirs[:]
        count = flags.count(1)
        receipt = await self._record("allow", sizes(job, count))
        if job.output == "membership":
            for offset in range(0, len(flags), FLAGS_CHUNK):
                await context.write(join_pb2.JoinResponse(membership=join_pb2.PointChunk(
                    offset=offset, packed=flags[offset:offset + FLAGS_CHUNK])))
        await context.write(join_pb2.JoinResponse(result=join_pb2.JoinResult(
            match_count=count, receipt=receipt)))
