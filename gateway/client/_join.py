"""``JoinClient``: the requester's side of a private join. Keys stay here.

The PSI scalar a, the keyed-hash private key and HMAC key, and the HE secret key are made in
this process for one job and never leave it; the gateway gets only blinded points, HMACs and
public HE material. Ids are validated (GB 11643-1999) before anything is blinded; errors name
the item's position, never the id. Large sets are blinded in a spawned :class:`PsiPool` and
streamed in chunks while the partner works on earlier ones; ``progress(stage, done, total)``
reports each stage.

Id checks live in ``_join_items`` and the per-job protocol in ``_join_run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from connectors.sdk._join_wire import CHANNEL_OPTIONS, MODE_OF, OUTPUT_OF
from gateway.client._channel import open_channel
from gateway.client._join_items import check_items
from gateway.client._join_run import JoinResult, Progress, _Run
from gateway.pb.pgw.v1 import join_pb2_grpc
from gateway.privacy import PsiPool

#: Below this many items per side, blinding runs in a thread instead of the process pool.
POOL_THRESHOLD = 8192


class JoinClient:
    """One channel to the gateway's JoinService; use as an async context manager."""

    def __init__(self, address: str, token: str, *, timeout_s: float = 900.0,
                 pool: PsiPool | None = None, workers: int | None = None,
                 ca: bytes | None = None) -> None:
        self._channel = open_channel(address, ca=ca, options=CHANNEL_OPTIONS)
        self._stub = join_pb2_grpc.JoinServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout = timeout_s
        self._pool, self._own_pool, self._workers = pool, pool is None, workers

    async def __aenter__(self) -> JoinClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()
        if self._own_pool and self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.close)

    def _pool_for(self, n: int) -> PsiPool | None:
        if n < POOL_THRESHOLD:
            return None
        if self._pool is None:
            self._pool = PsiPool(self._workers)
        return self._pool

    async def join(self, partner: str, purpose: str, mode: str, output: str,
                   items: Sequence[str], *, value_field: str = "",
                   progress: Progress | None = None) -> JoinResult:
        """Run one job. ``mode``: ecdh-psi or keyed-hash; ``output``: membership, cardinality
        or intersection-sum. Raises ``ValueError`` on a bad id, ``grpc.RpcError`` on refusal."""
        if mode not in MODE_OF or output not in OUTPUT_OF:
            raise ValueError(f"mode/output: got {mode}/{output}, want one of "
                             f"{sorted(MODE_OF)} / {sorted(OUTPUT_OF)}")
        ids = check_items(items)
        if not ids:
            raise ValueError("items: got none, want at least one id")
        distinct = ids if len(set(ids)) == len(ids) else list(dict.fromkeys(ids))
        run = _Run(self, partner, purpose, mode, output, distinct, value_field,
                   progress or (lambda *_: None))
        result = await run.go()
        if result.membership is not None and len(distinct) != len(ids):
            index = {pid: i for i, pid in enumerate(distinct)}
            flags = result.membership
            result = dataclass_replace(result, membership=[flags[index[p]] for p in ids])
        return result


def dataclass_replace(result: JoinResult, **changes: Any) -> JoinResult:
    import dataclasses

    return dataclasses.replace(result, **changes)
