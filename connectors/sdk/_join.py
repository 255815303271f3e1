"""The partner's side of a private join; the front door of the join helpers all three parties share.

``PartnerJoinService`` runs in the partner's network next to the ``ConnectorService``. A job
opens with a gateway-signed ReleaseSpec (operation ``join``); the connector verifies it, checks
it against its *own* agreement copy (purpose, org, validity, join grant: mode and output,
requester set size, the aggregate grant and its ``min_k`` for intersection-sum), reads its set
of people from its own database (the agreement's ``where``, never the spec's), and answers:

* ecdh-psi: a fresh scalar b per job; (H(x)^a)^b for each requester point (in the requester's
  order for membership, shuffled otherwise) and H(y)^b for its own people, shuffled; for
  intersection-sum also Enc_R(v_y), slot j of ciphertext i for point 4096 i + j.
* keyed-hash: an ephemeral X25519 key; HMAC_K(y) for its own people, shuffled.

Blinding and HMACs run in a spawned :class:`PsiPool`; chunks are pipelined so the pool always
has work while the gateway streams. The parts live in private modules and are re-exported here:
``_join_wire`` (sizes, enums, chunk codecs), ``_join_pipeline`` (the
blocking crypto work and its pipeline), ``_join_grants`` (grant and spec checks) and
``_join_set`` (the partner's set of people).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date
from typing import Any

import grpc

from connectors.sdk._join_grants import check_join_spec, join_problems, sum_grant
from connectors.sdk._join_pipeline import (
    POOL_THRESHOLD,
    WINDOW,
    blind,
    hash_and_blind,
    hmac_chunk,
    pipelined,
)
from connectors.sdk._join_set import (
    InMemoryJoinSet,
    JoinSet,
    SqliteJoinSet,
    distinct_shuffled,
    open_join_set,
)
from connectors.sdk._join_wire import (
    BYTES_CHUNK,
    CHANNEL_OPTIONS,
    CHUNK_ITEMS,
    MAX_CHUNK_ITEMS,
    MAX_JOIN_ITEMS,
    MAX_JOIN_MESSAGE,
    MODE_OF,
    MODES,
    OUTPUT_OF,
    OUTPUTS,
    POINT,
    byte_chunks,
    chunk_of,
    item_bytes,
    items_of,
    split,
)
from connectors.sdk._spec import SpecVerifier
from gateway.errors import FailedPrecondition, FieldViolation, InvalidArgument
from gateway.logs import get_logger
from gateway.pb.pgw.v1 import connector_pb2, join_pb2, join_pb2_grpc
from gateway.policy import Agreement, PolicySet
from gateway.privacy import (
    KeyedJob,
    PrivacyError,
    PsiKey,
    PsiPool,
    PublicContext,
    Scheme,
    encrypt_column,
    shuffle_packed,
)
from gateway.status import rpc

# The public names of the join parts, importable from here as before the split.
__all__ = [
    "BYTES_CHUNK", "CHANNEL_OPTIONS", "CHUNK_ITEMS", "InMemoryJoinSet", "JoinSet",
    "MAX_CHUNK_ITEMS", "MAX_JOIN_ITEMS", "MAX_JOIN_MESSAGE", "MODES", "MODE_OF", "OUTPUTS",
    "OUTPUT_OF", "POINT", "POOL_THRESHOLD", "PartnerJoinService", "SqliteJoinSet", "WINDOW",
    "blind", "byte_chunks", "check_join_spec", "chunk_of", "hash_and_blind", "hmac_chunk",
    "item_bytes", "items_of", "join_problems", "open_join_set", "pipelined", "split",
    "sum_grant",
]

log = get_logger("pgw.join")


class PartnerJoinService(join_pb2_grpc.PartnerJoinServiceServicer):
    """One partner's join endpoint; the pool is started on the first job and reused."""

    def __init__(self, partner: str, join_set: JoinSet, policies: PolicySet,
                 verifier: SpecVerifier, *, today: Callable[[], date] = date.today,
                 workers: int | None = None) -> None:
        self.partner, self.join_set, self.policies = partner, join_set, policies
        self.verifier, self._today, self._workers = verifier, today, workers
        self._pool: PsiPool | None = None

    @property
    def pool(self) -> PsiPool:
        if self._pool is None:
            self._pool = PsiPool(self._workers)
        return self._pool

    def _pool_for(self, work: int) -> PsiPool | None:
        """The pool for large jobs; small ones run in a thread (no worker start-up)."""
        return self.pool if work >= POOL_THRESHOLD else None

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.close)

    def _check(self, spec: connector_pb2.ReleaseSpec) -> tuple[Agreement, join_pb2.JoinParams,
                                                                  str | None, int]:
        return check_join_spec(spec, self.partner, self.policies, self._today)

    @rpc
    async def PartnerJoin(self, request_iterator: AsyncIterator[join_pb2.PartnerJoinRequest],
                          context: grpc.aio.ServicerContext, rid: str) -> None:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("kind") != "spec":
            raise InvalidArgument(FieldViolation("spec", "missing: a join opens with its spec"))
        spec = self.verifier.verify(first.spec)
        agreement, params, value_field, _ = self._check(spec)
        assert agreement.join is not None
        members = await self.join_set.members(agreement.join.where, value_field)
        ids, values = await asyncio.to_thread(distinct_shuffled, members,
                                              value_field is not None)
        if len(ids) > MAX_JOIN_ITEMS:
            raise FailedPrecondition("the partner's set is larger than one job allows",
                                     reason=f"partner set {len(ids)} > {MAX_JOIN_ITEMS}")
        lock = asyncio.Lock()

        async def write(msg: join_pb2.PartnerJoinResponse) -> None:
            async with lock:
                await context.write(msg)

        log.info("join_accepted", request_id=spec.request_id, mode=MODES[params.mode],
                 output=OUTPUTS[params.output], requester=params.requester_count,
                 partner=len(ids))
        if params.mode == join_pb2.JOIN_MODE_KEYED_HASH:
            await self._keyed(params, ids, write)
        else:
            await self._psi(params, ids, values, requests, write)

    async def _keyed(self, params: join_pb2.JoinParams, ids: Sequence[bytes],
                     write: Callable[[join_pb2.PartnerJoinResponse], Awaitable[None]]) -> None:
        job, public = KeyedJob.start()
        key = job.derive(params.keyed_public_key)
        await write(join_pb2.PartnerJoinResponse(accepted=join_pb2.PartnerAccepted(
            partner_count=len(ids), keyed_public_key=public)))
        pool = self._pool_for(len(ids))
        offset = 0

        async def emit(packed: bytes) -> None:
            nonlocal offset
            await write(join_pb2.PartnerJoinResponse(partner_points=join_pb2.PointChunk(
                offset=offset, packed=packed)))
            offset += len(packed) // POINT

        await pipelined([functools.partial(hmac_chunk, key, ids[i:i + CHUNK_ITEMS], pool)
                         for i in range(0, len(ids), CHUNK_ITEMS)], emit)
        await write(join_pb2.PartnerJoinResponse(done=join_pb2.PartnerDone(
            partner_point_count=offset)))

    async def _psi(self, params: join_pb2.JoinParams, ids: Sequence[bytes], values: list[float],
                   requests: AsyncIterator[join_pb2.PartnerJoinRequest],
                   write: Callable[[join_pb2.PartnerJoinResponse], Awaitable[None]]) -> None:
        ctx = None
        if params.output == join_pb2.JOIN_OUTPUT_INTERSECTION_SUM:
            ctx = await asyncio.to_thread(PublicContext.load, params.he_public)
            if ctx.scheme is not Scheme.CKKS or ctx.can_sum:
                raise PrivacyError("HE public material: want CKKS public material without "
                                   "Galois keys")
        key, pool = PsiKey.generate(), self._pool_for(len(ids) + params.requester_count)
        await write(join_pb2.PartnerJoinResponse(accepted=join_pb2.PartnerAccepted(
            partner_count=len(ids))))
        in_order = params.output == join_pb2.JOIN_OUTPUT_MEMBERSHIP
        own_done = [0]

        async def emit_own(packed: bytes) -> None:
            await write(join_pb2.PartnerJoinResponse(partner_points=join_pb2.PointChunk(
                offset=own_done[0], packed=packed)))
            own_done[0] += len(packed) // POINT

        async def own() -> None:
            await pipelined([functools.partial(hash_and_blind, key, ids[i:i + CHUNK_ITEMS], pool)
                             for i in range(0, len(ids), CHUNK_ITEMS)], emit_own)
            if ctx is not None and ids:
                for data in await asyncio.to_thread(encrypt_column, ctx, values):
                    for piece in byte_chunks(data):
                        await write(join_pb2.PartnerJoinResponse(ciphertext=piece))

        theirs = bytearray()  # kept only when they must be shuffled before leaving
        received, sent = [0], [0]

        async def emit_double(packed: bytes) -> None:
            if in_order:
                await write(join_pb2.PartnerJoinResponse(double_blinded=join_pb2.PointChunk(
                    offset=sent[0], packed=packed)))
            else:
                theirs.extend(packed)
            sent[0] += len(packed) // POINT

        async def incoming() -> AsyncIterator[Callable[[], Any]]:
            async for msg in requests:
                kind = msg.WhichOneof("kind")
                if kind == "end":
                    return
                if kind != "items":
                    raise InvalidArgument(FieldViolation("kind", f"got {kind}, want items"))
                n, rest = divmod(len(msg.items.packed), POINT)
                if msg.items.offset != received[0] or rest or not 0 < n <= MAX_CHUNK_ITEMS:
                    raise InvalidArgument(FieldViolation("items.offset", "chunks out of order, "
                                                         "ragged or too large"))
                received[0] += n
                if received[0] > params.requester_count:
                    raise InvalidArgument(FieldViolation("items", "more items than announced"))
                yield functools.partial(blind, key, msg.items.packed, pool)

        own_task = asyncio.ensure_future(own())
        try:
            await pipelined(incoming(), emit_double)
            if received[0] != params.requester_count:
                raise InvalidArgument(FieldViolation(
                    "items", f"got {received[0]} items, want {params.requester_count}"))
            if not in_order:
                shuffled = await asyncio.to_thread(shuffle_packed, theirs)
                step = CHUNK_ITEMS * POINT
                for i in range(0, len(shuffled), step):
                    await write(join_pb2.PartnerJoinResponse(double_blinded=join_pb2.PointChunk(
                        offset=i // POINT, packed=shuffled[i:i + step])))
            await own_task
        finally:
            own_task.cancel()
        ciphertexts = -(-len(ids) // 4096) if ctx is not None and ids else 0
        await write(join_pb2.PartnerJoinResponse(done=join_pb2.PartnerDone(
            double_blinded_count=received[0], partner_point_count=own_done[0],
            ciphertext_count=ciphertexts)))

