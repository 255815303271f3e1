"""The gateway's evaluation, unit-tested: random columns and weights against numpy, through the
real ``ComputeService._evaluate`` (batching, pool hand-off, ordering) over fake partner streams;
and the gateway's context, which holds no secret key, cannot decrypt."""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.sdk._compute import encrypt_chunks, pack_presence, shared_pool
from gateway.compute_service import ComputeService
from gateway.pb.pgw.v1 import compute_pb2
from gateway.policy import ApprovedModel, ModelInput
from gateway.privacy import (
    SLOTS,
    HeKeys,
    PrivacyError,
    PublicContext,
    decrypt_vector,
    encrypt_column,
    weighted_sum,
)


class FakeStub:
    def __init__(self, ctx: PublicContext, column: list[float], pool: Any) -> None:
        self.ctx, self.column, self.pool = ctx, column, pool

    def Encrypt(self, requests: Any, timeout: float) -> AsyncIterator[Any]:  # noqa: N802
        async def answer() -> AsyncIterator[compute_pb2.EncryptResponse]:
            n = len(self.column)
            yield compute_pb2.EncryptResponse(summary=compute_pb2.EncryptSummary(
                count=n, ciphertexts=math.ceil(n / SLOTS), found=pack_presence([True] * n)))
            i = 0
            async for data in encrypt_chunks(self.ctx, self.column, pool=self.pool):
                yield compute_pb2.EncryptResponse(chunk=compute_pb2.CiphertextChunk(
                    index=i, ciphertext=data))
                i += 1
        return answer()


class FakePartners:
    def __init__(self, stubs: dict[str, FakeStub]) -> None:
        self._stubs = stubs

    def stub(self, partner: str) -> FakeStub:
        return self._stubs[partner]


def evaluate(keys: HeKeys, columns: list[list[float]], weights: list[float], bias: float,
             pool: Any) -> list[float]:
    ctx = PublicContext.load(keys.public_material())
    n = len(columns[0])
    names = [f"p{i}" for i in range(len(columns))]
    model = ApprovedModel("m", 1, "org", "purpose", "test", tuple(
        ModelInput(p, "f", w) for p, w in zip(names, weights, strict=True)), bias)
    service = ComputeService.__new__(ComputeService)
    service.partners = FakePartners({p: FakeStub(ctx, c, pool) for p, c in
                                     zip(names, columns, strict=True)})  # type: ignore[assignment]
    service._pool = pool
    subjects = [f"s{i}" for i in range(n)]
    _, result = asyncio.run(service._evaluate(model, ctx, subjects, [None] * len(columns),
                                              30.0))  # type: ignore[list-item]
    # each ciphertext's SHA-256, hashed as its job finished, in order (what the audit binds)
    assert result.digests == [hashlib.sha256(d).digest() for d in result]
    return decrypt_vector(keys, result, n)


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_small_evaluation_matches_numpy(data: st.DataObject) -> None:
    keys = _KEYS
    k = data.draw(st.integers(1, 4))
    n = data.draw(st.integers(1, 300))
    floats = st.floats(-1e3, 1e3, allow_nan=False)
    columns = [data.draw(st.lists(floats, min_size=n, max_size=n)) for _ in range(k)]
    weights = data.draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=k, max_size=k))
    bias = data.draw(st.floats(-100, 100, allow_nan=False))
    got = evaluate(keys, columns, weights, bias, None)
    want = np.asarray(weights) @ np.asarray(columns) + bias
    assert np.max(np.abs(np.asarray(got) - want)) < 1e-2


def test_pooled_evaluation_over_many_chunks_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    n = 5 * SLOTS * 2 + 123                      # 11 ciphertexts: several pool batches
    columns = [list(rng.uniform(0, 20000, n)), list(rng.integers(0, 300, n).astype(float)),
               list(rng.integers(0, 5, n).astype(float))]
    weights, bias = [0.0004, 0.01, 0.25], -1.0
    got = evaluate(_KEYS, columns, weights, bias, shared_pool())
    want = np.asarray(weights) @ np.asarray(columns) + bias
    assert np.max(np.abs(np.asarray(got) - want)) < 1e-2


def test_gateway_context_cannot_decrypt() -> None:
    ctx = PublicContext.load(_KEYS.public_material())
    cts = weighted_sum(ctx, [encrypt_column(ctx, [1.0, 2.0])], [3.0], 1.0, count=2)
    with pytest.raises(PrivacyError):
        decrypt_vector(ctx, cts, 2)  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - TenSEAL itself has no secret key here
        import tenseal as ts

        ts.ckks_vector_from(ctx._ctx, cts[0]).decrypt()
    with pytest.raises(PrivacyError):
        PublicContext.load(_KEYS.secret_material())  # the gateway refuses secret material
    assert decrypt_vector(_KEYS, cts, 2) == pytest.approx([4.0, 7.0], abs=1e-3)


_KEYS = HeKeys.ckks()
