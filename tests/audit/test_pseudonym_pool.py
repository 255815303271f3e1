"""Bulk audit pseudonyms hashed in worker processes equal those hashed in the gateway.

A bulk compute hands its packed subjects to the HE workers (idle until ciphertexts arrive)
instead of a thread that would share the event loop's GIL. The subject set, its digest and
its order must be exactly those of the in-process path, however the ids split into parts.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.audit._pseudonyms import packed_pseudonym_blob, subject_pseudonym
from gateway.packed_ids import PackedIds, pack_ids
from gateway.privacy._pool import SpawnPool
from gateway.recorder import INLINE_SUBJECTS, AuditRecorder

KEY = bytes(range(32))
DOMAIN = b"pgw/audit/subject-pseudonym/v1\x00"


@pytest.fixture(scope="module")
def pool() -> Iterator[SpawnPool]:
    with SpawnPool(2) as p:
        yield p


def _ids(n: int) -> list[str]:
    return [f"{n:017d}"[:-6] + f"{i:06d}" + "X" for i in range(n)]  # packing needs 18 chars


@pytest.mark.parametrize("n", [INLINE_SUBJECTS + 1, 3 * INLINE_SUBJECTS + 7])
def test_pool_and_thread_give_the_same_subject_set(pool: SpawnPool, n: int) -> None:
    ids = _ids(n)
    packed = PackedIds(pack_ids(ids))
    recorder = AuditRecorder(None, KEY)  # type: ignore[arg-type] - pseudonymise never logs

    async def both() -> tuple[Any, Any]:
        return (await recorder.pseudonymise(packed, pool),
                await recorder.pseudonymise(packed))
    in_pool, in_thread = asyncio.run(both())
    assert in_pool == in_thread
    assert in_pool.count == n and in_pool.blob is not None
    assert in_pool.subject_set.sha256 == hashlib.sha256(in_pool.blob).hexdigest()
    for i in (0, n // 2, n - 1):  # order kept across parts; cross-checked with stdlib hmac
        raw = hmac.new(KEY, DOMAIN + ids[i].encode(), hashlib.sha256).digest()
        assert in_pool.blob[32 * i:32 * i + 32] == raw
        assert raw.hex() == subject_pseudonym(KEY, ids[i])


def test_packed_blob_refuses_a_ragged_buffer_and_a_short_key() -> None:
    with pytest.raises(ValueError, match="not a multiple of 18"):
        packed_pseudonym_blob(KEY, b"1" * 19, 18)
    with pytest.raises(ValueError, match="want at least 32"):
        packed_pseudonym_blob(KEY[:16], b"1" * 18, 18)
