"""Stream-level helpers for the hub's join relay: checks, the two-pump runner, HE.

Every chunk is checked (contiguous, bounded, whole points) and every stream counted to the
size announced; the requester's HE sum material is bounded. The partner's gRPC failures are
mapped into the pgw error tree by ``gateway.upstream``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from connectors.sdk._join_wire import MAX_CHUNK_ITEMS, POINT
from gateway.errors import FieldViolation, InvalidArgument, Unavailable
from gateway.pb.pgw.v1 import join_pb2
from gateway.privacy import (
    PjcReply,
    PrivacyError,
    PublicContext,
    Scheme,
    has_repeats,
    match_packed,
    pjc_total,
)

#: Most bytes of HE sum material a requester may stream (it is about 16 MiB).
MAX_HE_MATERIAL = 32 * 1024 * 1024
#: Membership flags (one byte per requester item) per message back to the requester.
FLAGS_CHUNK = 1 << 20


def check_chunk(chunk: join_pb2.PointChunk, expected_offset: int, what: str) -> int:
    """The running count after ``chunk``; refuses gaps, ragged or oversized chunks."""
    n, rest = divmod(len(chunk.packed), POINT)
    if chunk.offset != expected_offset or rest or not 0 < n <= MAX_CHUNK_ITEMS:
        raise InvalidArgument(FieldViolation(f"{what}.offset", f"got a chunk at {chunk.offset} "
                                             f"of {len(chunk.packed)} bytes, want offset "
                                             f"{expected_offset} and 1..{MAX_CHUNK_ITEMS} "
                                             f"points of {POINT} bytes"))
    return expected_offset + n


def expect(got: int, want: int, what: str) -> None:
    """Refuses a stream that ended short of (or past) its announced size."""
    if got != want:
        raise Unavailable(f"join stream incomplete: got {got} {what}, want {want}",
                          reason=f"{what}: got {got}, want {want}")


async def both(a: Any, b: Any) -> None:
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


async def read_he_material(requests: AsyncIterator[join_pb2.JoinRequest],
                           observe: Callable[[join_pb2.JoinRequest], None]) -> bytes:
    """The requester's HE sum material, streamed right after start (bounded)."""
    parts: list[bytes] = []
    size = 0
    async for msg in requests:
        observe(msg)
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


def check_he(public: bytes, sum_material: bytes) -> None:
    pub, summ = PublicContext.load(public), PublicContext.load(sum_material)
    if pub.scheme is not Scheme.CKKS or pub.can_sum:
        raise PrivacyError("he_public: want CKKS public material without Galois keys")
    if summ.scheme is not Scheme.CKKS or not summ.can_sum:
        raise PrivacyError("he_sum: want CKKS sum material (public key and sum Galois keys)")


def hub_count(double: bytearray, reblinded: bytearray) -> int:
    """Cardinality: how many of R's re-blinded points (distinct) are among P's double-blinded."""
    if has_repeats(reblinded):
        raise PrivacyError("re-blinded points: got repeated points, want distinct")
    return int(match_packed(reblinded, double).sum())


def hub_flags(mine: bytearray, theirs: bytearray) -> bytes:
    """keyed-hash: one byte per requester HMAC, in R's order: 1 when P sent the same HMAC."""
    return match_packed(mine, theirs).view(np.uint8).tobytes()


def hub_total(sum_material: bytes, reply: PjcReply, reblinded: list[bytes],
              min_k: int) -> tuple[bytes, int]:
    """In one worker thread: load the sum context and add the matching slots."""
    return pjc_total(PublicContext.load(sum_material), reply, reblinded, min_count=min_k)

