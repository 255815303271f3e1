"""The blocking cryptographic work of a join and the pipeline that keeps a pool busy.

Hashing, blinding and HMACs are blocking; :func:`pipelined` runs them in threads (each thread
waiting on a :class:`PsiPool` worker for large jobs) with a bounded window, emitting in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from gateway.privacy import PsiKey, PsiPool, hash_to_point

#: Below this much work (points to blind or HMAC), a job runs in a thread, not the pool.
POOL_THRESHOLD = 8192
#: Chunks a party keeps in flight in its pool (bounded memory, always some queued work).
WINDOW = 4


def hmac_packed(key: bytes, items: Sequence[bytes]) -> bytes:
    """Pool worker: concatenated HMAC-SHA256 tags of ``items`` under ``key``."""
    base = hmac.new(key, digestmod=hashlib.sha256)
    out = []
    for item in items:
        mac = base.copy()
        mac.update(item)
        out.append(mac.digest())
    return b"".join(out)


def hash_and_blind(key: PsiKey, items: Sequence[bytes], pool: PsiPool | None) -> list[bytes]:
    """H(item)^key for ``items`` (run in a thread: hashing here, blinding on the pool)."""
    return key.blind_many([hash_to_point(i) for i in items], pool=pool, chunk=max(1, len(items)))


def blind(key: PsiKey, points: Sequence[bytes], pool: PsiPool | None) -> list[bytes]:
    return key.blind_many(points, pool=pool, chunk=max(1, len(points)))


async def pipelined(jobs: AsyncIterator[Callable[[], Any]] | Sequence[Callable[[], Any]],
                    emit: Callable[[Any], Awaitable[None]], window: int = WINDOW) -> None:
    """Run blocking jobs in threads, at most ``window`` at once, emitting results in order."""
    pending: list[asyncio.Future[Any]] = []
    try:
        if isinstance(jobs, Sequence):
            for job in jobs:
                pending.append(asyncio.ensure_future(asyncio.to_thread(job)))
                while len(pending) >= window:
                    await emit(await pending.pop(0))
        else:
            async for job in jobs:
                pending.append(asyncio.ensure_future(asyncio.to_thread(job)))
                while len(pending) >= window or (pending and pending[0].done()):
                    await emit(await pending.pop(0))
        while pending:
            await emit(await pending.pop(0))
    finally:
        for f in pending:
            f.cancel()
