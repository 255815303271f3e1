"""One join job on the requester side: the protocol state machine for each mode.

:class:`_Run` owns the call, its single reader and serialised writers; ``_keyed`` and ``_psi``
drive the keyed-hash and ecdh-psi exchanges (blinding, HMACs and HE decryption happen here,
with keys made for this job only) and build the :class:`JoinResult`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from connectors.sdk._join_pipeline import blind, hash_and_blind, hmac_chunk, pipelined
from connectors.sdk._join_wire import CHUNK_ITEMS, MODE_OF, OUTPUT_OF, POINT, byte_chunks, items_of
from gateway.pb.pgw.v1 import common_pb2, join_pb2
from gateway.privacy import HeKeys, KeyedJob, PsiKey, decrypt_vector, match_packed

if TYPE_CHECKING:
    from gateway.client._join import JoinClient

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class JoinResult:
    """What the requester learns. ``membership`` follows the order of the items given."""

    mode: str
    output: str
    job_id: str
    requester_count: int
    partner_count: int
    membership: list[bool] | None
    match_count: int | None
    total: float | None
    receipt: common_pb2.AuditReceipt


class _Run:
    """One job on the requester side: the call, its single reader and serialised writers."""

    def __init__(self, client: JoinClient, partner: str, purpose: str, mode: str, output: str,
                 ids: list[str], value_field: str, progress: Progress) -> None:
        self.client, self.partner, self.purpose = client, partner, purpose
        self.mode, self.output, self.ids, self.value_field = mode, output, ids, value_field
        self.progress = progress
        self.call: Any = None
        self.lock = asyncio.Lock()

    async def write(self, message: join_pb2.JoinRequest) -> None:
        async with self.lock:
            await self.call.write(message)

    async def read(self) -> join_pb2.JoinResponse:
        msg = await self.call.read()
        if msg is grpc.aio.EOF:
            raise RuntimeError("the gateway ended the join without a result")
        return msg  # type: ignore[no-any-return]

    async def _accepted(self) -> join_pb2.JoinAccepted:
        while True:
            msg = await self.read()
            if msg.WhichOneof("kind") == "accepted":
                return msg.accepted  # type: ignore[no-any-return]

    async def go(self) -> JoinResult:
        c = self.client
        self.call = c._stub.Join(metadata=c._metadata, timeout=c._timeout)
        start = join_pb2.JoinStart(purpose=self.purpose, partner=self.partner,
                                   mode=MODE_OF[self.mode], output=OUTPUT_OF[self.output],
                                   requester_count=len(self.ids), value_field=self.value_field)
        try:
            if self.mode == "keyed-hash":
                return await self._keyed(start)
            return await self._psi(start)
        finally:
            self.call.cancel()

    def _result(self, accepted: join_pb2.JoinAccepted, result: join_pb2.JoinResult, *,
                membership: list[bool] | None = None, total: float | None = None) -> JoinResult:
        count = None if self.output == "membership" and self.mode == "ecdh-psi" \
            else int(result.match_count)
        if membership is not None:
            count = sum(membership)
        return JoinResult(self.mode, self.output, accepted.job_id, len(self.ids),
                          int(accepted.partner_count), membership, count, total, result.receipt)

    # ------------------------------------------------------------------ keyed-hash

    async def _keyed(self, start: join_pb2.JoinStart) -> JoinResult:
        job, public = KeyedJob.start()
        start.keyed_public_key = public
        await self.call.write(join_pb2.JoinRequest(start=start))
        accepted = await self._accepted()
        key = job.derive(accepted.keyed_public_key)
        pool = self.client._pool_for(len(self.ids))
        items = items_of(self.ids)
        step = accepted.chunk_items or CHUNK_ITEMS
        sent = [0]

        async def emit(packed: bytes) -> None:
            await self.write(join_pb2.JoinRequest(items=join_pb2.PointChunk(
                offset=sent[0], packed=packed)))
            sent[0] += len(packed) // POINT
            self.progress("hmac", sent[0], len(items))

        async def writer() -> None:
            await pipelined([functools.partial(hmac_chunk, key, items[i:i + step], pool)
                             for i in range(0, len(items), step)], emit)
            await self.write(join_pb2.JoinRequest(end=join_pb2.ItemsEnd()))

        task = asyncio.ensure_future(writer())
        flags = bytearray()
        try:
            while True:
                msg = await self.read()
                kind = msg.WhichOneof("kind")
                if kind == "membership":
                    flags += msg.membership.packed
                elif kind == "progress":
                    self.progress(msg.progress.stage, msg.progress.done, msg.progress.total)
                elif kind == "result":
                    await task
                    membership = None
                    if self.output == "membership":
                        if len(flags) != len(items):
                            raise RuntimeError(f"membership flags: got {len(flags)}, "
                                               f"want {len(items)}")
                        membership = np.frombuffer(flags, dtype=np.uint8).astype(bool).tolist()
                    return self._result(accepted, msg.result, membership=membership)
        finally:
            task.cancel()

    # ------------------------------------------------------------------ ecdh-psi

    async def _psi(self, start: join_pb2.JoinStart) -> JoinResult:
        keys = None
        if self.output == "intersection-sum":
            keys = await asyncio.to_thread(HeKeys.ckks)
            start.he_public = keys.public_material()
            sum_material = await asyncio.to_thread(keys.galois_for_sum)
        await self.call.write(join_pb2.JoinRequest(start=start))
        if keys is not None:
            for piece in byte_chunks(sum_material):
                await self.call.write(join_pb2.JoinRequest(he_sum=piece))
        accepted = await self._accepted()
        n, m = len(self.ids), int(accepted.partner_count)
        key = PsiKey.generate()  # fresh a for this job only
        pool = self.client._pool_for(max(n, m))
        step = accepted.chunk_items or CHUNK_ITEMS
        items = items_of(self.ids)
        sent = [0]

        async def emit_items(packed: bytes) -> None:
            await self.write(join_pb2.JoinRequest(items=join_pb2.PointChunk(
                offset=sent[0], packed=packed)))
            sent[0] += len(packed) // POINT
            self.progress("blind", sent[0], n)

        items_sent = asyncio.Event()  # re-blinded points may only follow the items' end

        async def writer() -> None:
            await pipelined([functools.partial(hash_and_blind, key, items[i:i + step], pool)
                             for i in range(0, n, step)], emit_items)
            await self.write(join_pb2.JoinRequest(end=join_pb2.ItemsEnd()))
            items_sent.set()

        queue: asyncio.Queue[bytes] = asyncio.Queue()
        theirs = bytearray()  # membership: P's points re-blinded, kept here
        reblinded = [0]
        matched = self.output != "membership"

        async def jobs() -> AsyncIterator[Callable[[], Any]]:
            got = 0
            while got < m:
                packed = await queue.get()
                got += len(packed) // POINT
                yield functools.partial(blind, key, packed, pool)

        async def emit_reblinded(packed: bytes) -> None:
            if matched:
                await items_sent.wait()
                await self.write(join_pb2.JoinRequest(reblinded=join_pb2.PointChunk(
                    offset=reblinded[0], packed=packed)))
            else:
                theirs.extend(packed)
            reblinded[0] += len(packed) // POINT
            self.progress("reblind", reblinded[0], m)

        async def reblinder() -> None:
            await pipelined(jobs(), emit_reblinded)
            if matched:
                await items_sent.wait()
                await self.write(join_pb2.JoinRequest(end=join_pb2.ItemsEnd()))

        tasks = [asyncio.ensure_future(writer()), asyncio.ensure_future(reblinder())]
        double = bytearray()
        try:
            while True:
                msg = await self.read()
                kind = msg.WhichOneof("kind")
                if kind == "double_blinded":
                    double += msg.double_blinded.packed
                    self.progress("partner-blind", len(double) // POINT, n)
                elif kind == "partner_points":
                    if len(msg.partner_points.packed) % POINT:
                        raise RuntimeError("partner points: got a ragged chunk")
                    queue.put_nowait(msg.partner_points.packed)
                elif kind == "progress":
                    self.progress(msg.progress.stage, msg.progress.done, msg.progress.total)
                elif kind == "result":
                    await asyncio.gather(*tasks)
                    break
        finally:
            for t in tasks:
                t.cancel()
        if self.output == "membership":
            if len(double) != n * POINT:
                raise RuntimeError(f"double-blinded points: got {len(double) // POINT}, "
                                   f"want {n}")
            flags = await asyncio.to_thread(match_packed, double, theirs)
            return self._result(accepted, msg.result, membership=flags.tolist())
        total = None
        if keys is not None:
            total = (await asyncio.to_thread(decrypt_vector, keys, [msg.result.encrypted_sum],
                                             1))[0]
        return self._result(accepted, msg.result, total=total)
