"""CKKS work for the connector, and the encodings both sides of compute agree on.

* encryption off the event loop: small jobs in one worker thread with a context loaded there,
  large ones in the process-wide spawn :class:`HePool` (TenSEAL objects are not thread-safe);
* the digests a signed ``EncryptSpec`` / ``AggregateSpec`` binds (subjects, public context);
* the presence bitmap an ``EncryptSummary`` carries (whether a partner holds each subject).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
from collections.abc import AsyncIterator, Sequence

import numpy as np

from gateway.packed_ids import ids_digest, pack_ids
from gateway.privacy import SLOTS, HePool, PublicContext, encrypt_column

#: Ciphertexts per pool task (16,384 values): large enough to amortise the hand-off.
BATCH = 4
#: Jobs of at most this many ciphertexts run in a thread, without waking the process pool.
INLINE_CHUNKS = 2

_pool: HePool | None = None
_pool_lock = threading.Lock()


def shared_pool() -> HePool:
    """The process-wide HE worker pool (spawned on first use, shared by all services here)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = HePool()
        return _pool


def close_shared_pool() -> None:
    """Stop the process-wide HE pool, if one was started (its workers exit)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


def subjects_digest(subjects: Sequence[str]) -> bytes:
    """The digest a signed ``EncryptSpec`` binds: SHA-256 over the packed ids in order
    (:func:`gateway.packed_ids.ids_digest`); for callers holding strings."""
    return ids_digest(pack_ids(subjects))


def context_digest(material: bytes) -> bytes:
    return hashlib.sha256(material).digest()


def pack_presence(found: Sequence[bool] | np.ndarray) -> bytes:
    """Bit i set when subject i is held (least significant bit first)."""
    return bytes(np.packbits(np.asarray(found, dtype=bool), bitorder="little").tobytes())


def unpack_presence(data: bytes, n: int) -> list[bool]:
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    if len(bits) < n or len(data) != math.ceil(n / 8):
        raise ValueError(f"presence bitmap: got {len(data)} bytes, want {math.ceil(n / 8)}")
    return bits[:n].astype(bool).tolist()  # type: ignore[no-any-return]


def column_values(raw: Sequence[object], field: str = "values") -> tuple[np.ndarray, np.ndarray]:
    """(values as float64 with 0.0 for the missing, presence) from a read column.

    ``None`` marks a subject the partner does not hold or holds no value for; any other value
    is converted as ``float()`` would (ints, bools, numeric strings), in one numpy pass. A value
    that does not convert raises ``ValueError`` naming ``field``, never the value. A stored NaN
    is not missing: it stays NaN and present, so ``encrypt_column`` refuses the column as
    non-finite (as it does an infinity) rather than encrypting a silent zero for a broken value.
    """
    try:
        values = np.array(raw, dtype=np.float64)
        if values.shape != (len(raw),):  # list values would spread into a second axis
            raise ValueError("not one number per subject")
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{field}: got a value float() cannot convert, want numbers") from None
    found = np.ones(len(values), dtype=bool)
    holes = np.flatnonzero(np.isnan(values))  # None reads as NaN: tell them apart
    if len(holes):
        found[holes] = [raw[i] is not None for i in holes.tolist()]
        values[holes[~found[holes]]] = 0.0
    return values, found


def encrypt_inline(material: bytes, values: Sequence[float] | np.ndarray,
                   chunk: int) -> list[bytes]:
    """CKKS ciphertexts of ``values``; call in a worker thread (loads a context of its own)."""
    return encrypt_column(PublicContext.load(material), values, chunk=chunk)


async def encrypt_chunks(ctx: PublicContext, values: Sequence[float] | np.ndarray, *,
                         chunk: int = SLOTS,
                         pool: HePool | None = None) -> AsyncIterator[bytes]:
    """CKKS ciphertexts of ``values`` in order, ``chunk`` values each, as they are ready."""
    chunks = max(1, math.ceil(len(values) / chunk))
    if chunks <= INLINE_CHUNKS and pool is None:
        for data in await asyncio.to_thread(encrypt_inline, ctx.material, values, chunk):
            yield data
        return
    pool = pool or shared_pool()
    step = BATCH * chunk
    futures = [asyncio.wrap_future(pool.submit(encrypt_column, ctx, values[i:i + step],
                                               chunk=chunk))
               for i in range(0, len(values), step)]
    try:
        for future in futures:
            for data in await future:
                yield data
    finally:
        for future in futures:
            future.cancel()
