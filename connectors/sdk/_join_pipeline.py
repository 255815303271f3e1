"""The cryptographic work of a join as chunk tasks, and the pipeline that keeps a pool busy.

Each task takes one chunk (items, or packed 32-byte points) and answers one packed chunk. Large
jobs run on a spawned :class:`PsiPool` (one pickled ``bytes`` each way per chunk); small ones in
a worker thread, without waking the pool. :func:`pipelined` keeps a bounded window of tasks in
flight and emits their results in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from typing import Any

from gateway.privacy import PsiKey, PsiPool, hmac_packed

#: Below this much work (points to blind or HMAC), a job runs in a thread, not the pool.
POOL_THRESHOLD = 8192
#: Chunks a party keeps in flight in its pool (bounded memory, always some queued work).
WINDOW = 4

Task = Callable[[], Awaitable[Any]]


def blind(key: PsiKey, packed: bytes, pool: PsiPool | None) -> asyncio.Future[bytes]:
    """Each packed point raised to ``key`` (call from the event loop)."""
    if pool is None:
        return asyncio.ensure_future(asyncio.to_thread(key.blind_packed, packed))
    return asyncio.wrap_future(key.submit_blind(pool, packed))


def hash_and_blind(key: PsiKey, items: Sequence[bytes],
                   pool: PsiPool | None) -> asyncio.Future[bytes]:
    """H(item)^key for each item, packed (hashing happens where the blinding does)."""
    if pool is None:
        return asyncio.ensure_future(asyncio.to_thread(key.hash_blind, items))
    return asyncio.wrap_future(key.submit_hash_blind(pool, items))


def hmac_chunk(key: bytes, items: Sequence[bytes], pool: PsiPool | None) -> asyncio.Future[bytes]:
    """HMAC-SHA256 tags of ``items`` under the job's key, packed."""
    if pool is None:
        return asyncio.ensure_future(asyncio.to_thread(hmac_packed, key, items))
    return asyncio.wrap_future(pool.hmac(key, items))


async def pipelined(jobs: Iterable[Task] | AsyncIterable[Task],
                    emit: Callable[[Any], Awaitable[None]], window: int = WINDOW) -> None:
    """Start each job (a callable returning an awaitable), at most ``window`` at once, and
    emit the results in order as soon as the oldest is done."""
    pending: list[asyncio.Future[Any]] = []

    async def drain(limit: int) -> None:
        while len(pending) > limit or (pending and pending[0].done()):
            await emit(await pending.pop(0))

    try:
        if isinstance(jobs, AsyncIterable):
            async for job in jobs:
                pending.append(asyncio.ensure_future(job()))
                await drain(window - 1)
        else:
            for job in jobs:
                pending.append(asyncio.ensure_future(job()))
                await drain(window - 1)
        await drain(0)
    finally:
        for f in pending:
            f.cancel()
