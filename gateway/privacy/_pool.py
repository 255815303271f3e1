"""Process pools for heavy primitives (HE recipes, X25519 blinding).

TenSEAL objects are not thread-safe and grpcio is not fork-safe once a channel or server exists
(DESIGN.md, implementation notes), so every pool here uses the ``spawn`` start method and passes
only bytes and plain Python values in and out. Spawned workers start cold (import cost about
0.2-0.5 s each): create one pool per process and reuse it.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Self

from gateway.privacy._errors import PrivacyError


def default_workers() -> int:
    """Worker processes to use by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class SpawnPool:
    """A ``ProcessPoolExecutor`` that always uses ``spawn``; a context manager."""

    def __init__(self, workers: int | None = None) -> None:
        workers = default_workers() if workers is None else workers
        if workers < 1:
            raise PrivacyError(f"pool workers: got {workers}, want at least 1")
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def _submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._executor.submit(fn, *args, **kwargs)

    def warm_up(self) -> None:
        """Start every worker now (instead of on first use), e.g. before a timed section."""
        for f in [self._executor.submit(os.getpid) for _ in range(self.workers * 2)]:
            f.result()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PsiPool(SpawnPool):
    """Workers for X25519 blinding and HMACs.

    Pass it to :meth:`PsiKey.submit_blind` / :meth:`PsiKey.submit_hash_blind` (one packed chunk
    per task), :meth:`PsiKey.blind_many` and the protocol steps; :meth:`hmac` tags a chunk.
    """

    def hmac(self, key: bytes, items: Sequence[bytes]) -> Future[bytes]:
        """HMAC-SHA256 tags of ``items`` under ``key``, packed, on a worker."""
        from gateway.privacy._items import as_items
        from gateway.privacy._keyed import hmac_packed

        return self._submit(hmac_packed, key, as_items(items))


class HePool(SpawnPool):
    """Runs HE recipes in worker processes (TenSEAL objects are not thread-safe).

    ``pool.submit(encrypt_column, public_ctx, values)`` returns a ``Future``; the context pickles
    as its bytes and each worker keeps the last few contexts it loaded. Only the public recipes
    are accepted: secret keys (:class:`HeKeys`) are never shipped to a worker.
    """

    def submit(self, recipe: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        from gateway.privacy import _he_ops

        allowed = {_he_ops.encrypt_column, _he_ops.weighted_sum, _he_ops.sum_slots,
                   _he_ops.masked_total, _he_ops.encrypt_counts, _he_ops.add}
        if recipe not in allowed:
            name = getattr(recipe, "__name__", type(recipe).__name__)
            raise PrivacyError(f"HePool recipe: got {name}, want a public HE recipe")
        return self._submit(recipe, *args, **kwargs)
