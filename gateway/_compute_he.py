"""HE evaluation for the linear score: stream each input's ciphertexts from its partner and add
``bias + sum(w * x)`` batch by batch as they arrive (this process holds no secret key).

TenSEAL objects are not thread-safe: small jobs run in one thread with a context loaded there,
large ones in a :class:`HePool` whose workers each load their own context.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from typing import Any

import grpc

from connectors.sdk._compute_he import shared_pool
from gateway._compute_partners import PartnerCompute, encrypt_requests
from gateway.errors import UpstreamViolation
from gateway.packed_ids import PackedIds
from gateway.pb.pgw.v1 import connector_pb2
from gateway.policy import ApprovedModel
from gateway.privacy import SLOTS, HePool, PrivacyError, PublicContext, weighted_sum
from gateway.upstream import partner_failure

#: Ciphertexts per weighted-sum task in the pool; smaller jobs run in one thread.
BATCH = 4
INLINE_CHUNKS = 2


class Ciphertexts(list[bytes]):
    """The result ciphertexts in order, and the SHA-256 of each: hashed in a thread as each job
    finished, while later jobs ran, so that the release (which binds them all in its audit
    entry) does not hash 85 MB of them at 2^20 subjects after the last one."""

    def __init__(self, parts: list[tuple[list[bytes], list[bytes]]]) -> None:
        super().__init__(data for out, _ in parts for data in out)
        self.digests = [d for _, digests in parts for d in digests]


async def _hashed(job: asyncio.Future[list[bytes]]) -> tuple[list[bytes], list[bytes]]:
    out = await job
    return out, await asyncio.to_thread(lambda: [hashlib.sha256(d).digest() for d in out])


def _ws_inline(material: bytes, columns: list[list[bytes]], weights: list[float], bias: float,
               count: int) -> list[bytes]:
    # One thread, one context of its own (TenSEAL objects are not thread-safe).
    return weighted_sum(PublicContext.load(material), columns, weights, bias, count=count)


async def evaluate_linear(partners: PartnerCompute, own_pool: HePool | None,
                          model: ApprovedModel, ctx: PublicContext, subjects: PackedIds,
                          signed: list[connector_pb2.SignedReleaseSpec], remaining: float
                          ) -> tuple[list[tuple[str, bytes]], Ciphertexts]:
    """Stream each input from its partner and add the weighted ciphertexts as they come."""
    n, chunks = len(subjects), math.ceil(len(subjects) / SLOTS)
    columns: list[list[bytes]] = [[] for _ in model.inputs]
    presence: list[tuple[str, bytes]] = [("", b"")] * len(model.inputs)
    ready = asyncio.Condition()

    async def read(i: int) -> None:
        partner = model.inputs[i].partner
        call = partners.stub(partner).Encrypt(
            encrypt_requests(signed[i], ctx.material, subjects), timeout=remaining)
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
            raise partner_failure(partner, err, operation="compute") from None
        if len(columns[i]) != chunks:
            raise UpstreamViolation(f"{partner} answered too few ciphertexts",
                                    reason=f"{partner} encrypt chunk count")

    readers = [asyncio.ensure_future(read(i)) for i in range(len(model.inputs))]
    weights = [i.weight for i in model.inputs]
    small = chunks <= INLINE_CHUNKS and own_pool is None
    pool = None if small else (own_pool or shared_pool())
    jobs: list[asyncio.Future[tuple[list[bytes], list[bytes]]]] = []
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
            job: asyncio.Future[list[bytes]]
            if pool is None:
                job = asyncio.ensure_future(asyncio.to_thread(
                    _ws_inline, ctx.material, part, weights, model.bias, count))
            else:
                job = asyncio.wrap_future(pool.submit(
                    weighted_sum, ctx, part, weights, model.bias, count=count))
            jobs.append(asyncio.ensure_future(_hashed(job)))
        await asyncio.gather(*readers)
        result = Ciphertexts([await job for job in jobs])
    except PrivacyError as err:
        raise UpstreamViolation("a partner answered bytes that are not ciphertexts",
                                reason=f"weighted sum: {err.reason}") from None
    finally:
        tasks: list[asyncio.Future[Any]] = [*readers, *jobs]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*readers, *jobs, return_exceptions=True)
    return presence, result
