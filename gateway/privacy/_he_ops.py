"""HE recipes: encrypt a column, weighted sums, slot sums, decryption, BFV counts.

Ciphertexts travel as bytes (TenSEAL serialisation, about 324 KiB per 4096 CKKS values; stream
them, gRPC's default message limit is 4 MiB). A column of n values is ``ceil(n / chunk)``
ciphertexts of ``chunk`` slots each, the last padded with zeros; :func:`sum_slots` wants the default
``chunk=4096`` so that it rotates over the whole ring and every slot of its result carries the
same total: no slot is left holding a partial sum or a single value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tenseal as ts

from gateway.privacy._errors import BelowMinimum, PrivacyError
from gateway.privacy._he import BFV_PLAIN_MODULUS, SLOTS, HeKeys, PublicContext, Scheme


def _require_secret(keys: HeKeys, scheme: Scheme) -> None:
    if not isinstance(keys, HeKeys):
        raise PrivacyError(f"decrypt: got {type(keys).__name__}, want the requester's HeKeys "
                           "(no secret key here)")
    _require(keys, scheme)


def _require(ctx: PublicContext | HeKeys, scheme: Scheme) -> None:
    if ctx.scheme is not scheme:
        raise PrivacyError(f"HE context: got scheme {ctx.scheme.value}, want {scheme.value}")


def _chunks(values: Sequence[Any], chunk: int) -> list[list[Any]]:
    if not 1 <= chunk <= SLOTS:
        raise PrivacyError(f"chunk: got {chunk}, want 1..{SLOTS}")
    out = [list(values[i:i + chunk]) for i in range(0, len(values), chunk)]
    return [part + [0] * (chunk - len(part)) for part in out]


def _load(ctx: PublicContext | HeKeys, data: bytes, scheme: Scheme) -> Any:
    load = ts.ckks_vector_from if scheme is Scheme.CKKS else ts.bfv_vector_from
    try:
        vec = load(ctx._ctx, bytes(data))
    except Exception as exc:  # TenSEAL raises bare ValueError/RuntimeError
        raise PrivacyError(f"ciphertext: got bytes that are not a {scheme.value} vector") from exc
    if not 1 <= vec.size() <= SLOTS:
        raise PrivacyError(f"ciphertext: got {vec.size()} slots, want 1..{SLOTS}")
    return vec


def _dump(vec: Any) -> bytes:
    return bytes(vec.serialize())


def encrypt_column(public_ctx: PublicContext, values: Sequence[float] | np.ndarray, *,
                   chunk: int = SLOTS) -> list[bytes]:
    """CKKS-encrypt ``values`` packed into slots, ``chunk`` per ciphertext (connector side).

    Takes a list or a float64 array; checked and padded with numpy, not value by value.
    """
    _require(public_ctx, Scheme.CKKS)
    if not 1 <= chunk <= SLOTS:
        raise PrivacyError(f"chunk: got {chunk}, want 1..{SLOTS}")
    try:
        column = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise PrivacyError("values: got something other than real numbers") from None
    if column.ndim != 1 or not np.isfinite(column).all():
        raise PrivacyError("values: got a non-finite number, want finite reals")
    padded = np.zeros(-(-len(column) // chunk) * chunk, dtype=np.float64)
    padded[:len(column)] = column
    return [_dump(ts.ckks_vector(public_ctx._ctx, padded[i:i + chunk].tolist()))
            for i in range(0, len(padded), chunk)]


def weighted_sum(public_ctx: PublicContext, columns: list[list[bytes]],
                 weights: Sequence[float], bias: float, *, count: int) -> list[bytes]:
    """Per person ``bias + sum_j weights[j] * columns[j]`` (gateway side).

    ``count`` is the number of people packed in each column: the bias goes into their slots
    only, so padding stays zero and a later :func:`sum_slots` adds exactly ``count`` scores.

    Ciphertext-plaintext products by scalars only: needs no Galois or relinearisation keys, and
    uses the one multiplicative level the recipes budget for. The weights must be the approved
    model named in the agreement, never values a requester chose (DESIGN.md, linear score).
    """
    _require(public_ctx, Scheme.CKKS)
    if not columns or len(columns) != len(weights):
        raise PrivacyError(f"weights: got {len(weights)} for {len(columns)} columns, want equal")
    lengths = {len(col) for col in columns}
    if len(lengths) != 1:
        raise PrivacyError(f"columns: got chunk counts {sorted(lengths)}, want one count")
    if not all(math.isfinite(w) for w in [*weights, bias]):
        raise PrivacyError("weights: got a non-finite number, want finite reals")
    if count < 1 or not columns[0]:
        raise PrivacyError(f"count: got {count} people in {len(columns[0])} chunks, want >= 1")
    out, left, used = [], count, 0
    for parts in zip(*columns, strict=True):
        acc = None
        for data, weight in zip(parts, weights, strict=True):
            term = _load(public_ctx, data, Scheme.CKKS) * float(weight)
            acc = term if acc is None else acc + term
        assert acc is not None
        used = min(left, acc.size())
        left -= used
        # a full chunk takes the bias as a scalar (every slot is a person's): one constant,
        # not a 4096-slot vector to encode (0.6 ms a chunk); a partial one keeps padding at 0
        bias_term = (float(bias) if used == acc.size() == SLOTS
                     else [float(bias)] * used + [0.0] * (acc.size() - used))
        out.append(_dump(acc + bias_term))
    if left != 0 or used == 0:
        raise PrivacyError(f"count: got {count}, which does not fill {len(out)} chunks")
    return out


def sum_slots(public_ctx: PublicContext, column: list[bytes], *, count: int,
              min_count: int) -> bytes:
    """The total of a packed column as one ciphertext (gateway side; needs the sum material).

    Adds the chunks slot-wise, then rotates and adds over all 4096 slots (12 rotations with
    the keys of :meth:`HeKeys.galois_for_sum`): every slot then holds the same total, so the
    requester learns the total and nothing per person. ``count`` is the number of people in
    the column; below ``min_count`` (the agreement's k) nothing is computed.
    """
    _require(public_ctx, Scheme.CKKS)
    if not public_ctx.can_sum:
        raise PrivacyError("HE context: got public material without the sum Galois keys")
    if min_count < 1:
        raise PrivacyError(f"min_count: got {min_count}, want at least 1")
    if count < min_count:
        raise BelowMinimum("cohort size", got=count, minimum=min_count)
    if len(column) != math.ceil(count / SLOTS):  # sums want chunks of the full 4096 slots
        raise PrivacyError(f"column: got {len(column)} chunks for {count} people, "
                           f"want {math.ceil(count / SLOTS)} of {SLOTS} slots")
    return _dump(_slot_total(public_ctx, [_load(public_ctx, c, Scheme.CKKS) for c in column]))


def _slot_total(public_ctx: PublicContext, vectors: list[Any]) -> Any:
    acc = vectors[0]
    for vec in vectors[1:]:
        acc = acc + vec
    if acc.size() != SLOTS:  # TenSEAL rotates ceil(log2(size)) times: insist on the full ring
        raise PrivacyError(f"ciphertext: got {acc.size()} slots, want {SLOTS} (chunk=4096)")
    return acc.sum()


def masked_total(public_ctx: PublicContext, column: list[bytes],
                 positions: Sequence[int]) -> bytes:
    """The total of the slots at ``positions`` (intersection-sum): mask, add, rotate-and-sum."""
    _require(public_ctx, Scheme.CKKS)
    if not public_ctx.can_sum:
        raise PrivacyError("HE context: got public material without the sum Galois keys")
    if not column:
        raise PrivacyError("column: got no ciphertexts")
    masks = [[0.0] * SLOTS for _ in column]
    for pos in positions:
        if not 0 <= pos < len(column) * SLOTS:
            raise PrivacyError(f"position: got {pos}, want 0..{len(column) * SLOTS - 1}")
        masks[pos // SLOTS][pos % SLOTS] = 1.0
    vectors = [_load(public_ctx, c, Scheme.CKKS) * m for c, m in zip(column, masks, strict=True)]
    return _dump(_slot_total(public_ctx, vectors))


def decrypt_vector(keys: HeKeys, ciphertexts: Sequence[bytes],
                   n: int | None = None) -> list[float]:
    """Decrypt CKKS chunks and return the first ``n`` values (all when ``n`` is None;
    requester side)."""
    _require_secret(keys, Scheme.CKKS)
    out: list[float] = []
    for data in ciphertexts:
        out.extend(_load(keys, data, Scheme.CKKS).decrypt())
    if n is None:
        return out
    if n > len(out):
        raise PrivacyError(f"n: got {n}, want at most {len(out)} (the packed values)")
    return out[:n]


def encrypt_counts(public_ctx: PublicContext, counts: Sequence[int], *,
                   chunk: int = SLOTS) -> list[bytes]:
    """BFV-encrypt non-negative integer counts packed into slots (exact modulo 1032193)."""
    _require(public_ctx, Scheme.BFV)
    if not all(isinstance(c, int) and 0 <= c < BFV_PLAIN_MODULUS // 2 for c in counts):
        raise PrivacyError(f"counts: got a value outside 0..{BFV_PLAIN_MODULUS // 2 - 1}")
    return [_dump(ts.bfv_vector(public_ctx._ctx, part)) for part in _chunks(counts, chunk)]


def add(public_ctx: PublicContext, a: Sequence[bytes], b: Sequence[bytes]) -> list[bytes]:
    """Slot-wise sum of two BFV count columns (gateway side; no keys needed)."""
    _require(public_ctx, Scheme.BFV)
    if len(a) != len(b):
        raise PrivacyError(f"columns: got {len(a)} and {len(b)} chunks, want equal")
    return [_dump(_load(public_ctx, x, Scheme.BFV) + _load(public_ctx, y, Scheme.BFV))
            for x, y in zip(a, b, strict=True)]


def decrypt_counts(keys: HeKeys, ciphertexts: Sequence[bytes], n: int) -> list[int]:
    """Decrypt BFV chunks and return the first ``n`` counts (requester side)."""
    _require_secret(keys, Scheme.BFV)
    out: list[int] = []
    for data in ciphertexts:
        out.extend(int(v) for v in _load(keys, data, Scheme.BFV).decrypt())
    if n > len(out):
        raise PrivacyError(f"n: got {n}, want at most {len(out)} (the packed counts)")
    return out[:n]
