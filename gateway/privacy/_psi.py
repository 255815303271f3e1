"""Raw ECDH-PSI on X25519: hashing items to u-coordinates and commutative blinding.

``hash_to_point`` is SHA-256 of a domain-separated item read as an X25519 u-coordinate (the
construction of SecretFlow's curve25519 PSI). Blinding is the X25519 function itself,
``X25519(k, u) = x([clamp(k)] P)`` for either point P with ``x(P) = u``, computed by libsodium's
``crypto_scalarmult`` through PyNaCl (31 us per multiplication here, against 42 us through
``cryptography``, whose per-call key objects cost a third on top of OpenSSL's ladder). Why this
commutes for *every* u:

* the Montgomery ladder works on x alone, for points of Curve25519 and of its quadratic twist
  alike (about half of all hashed u lie on the twist), and ``x([a][b]P) = x([ab]P) = x([b][a]P)``;
* clamped scalars are multiples of 8, a multiple of both cofactors (8 on the curve, 4 on the twist),
  so small-order components vanish after the first blinding and every later blinding acts in the
  prime-order subgroup. Curve25519 is twist-secure (twist subgroup order about 2^253), so DDH,
  on which PSI rests, is as hard for twist points as for curve points.

The price of clamping: two u that differ by a small-order point blind to the same value. For
hashed items that needs a SHA-256 preimage, so it does not happen. A peer that sends a
low-order point (libsodium refuses the all-zero result) is refused with :class:`PrivacyError`.

Points travel *packed*: one ``bytes`` of concatenated 32-byte values per chunk, so a chunk
crosses a process boundary as one object and no per-point Python object is kept.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import Future, as_completed
from typing import Any, TypeVar

from nacl.bindings import crypto_scalarmult
from nacl.exceptions import CryptoError

from gateway.privacy._errors import PrivacyError
from gateway.privacy._items import as_items, permutation, shuffle_rows, split_rows
from gateway.privacy._pool import PsiPool

POINT_BYTES = 32
HASH_DOMAIN = b"pgw/ecdh-psi/x25519/v1\x00"
#: Points per task sent to a pool worker: large enough to amortise pickling, small for progress.
BLIND_CHUNK = 16384

T = TypeVar("T")
Progress = Callable[[int, int], None]


def hash_to_point(item: bytes) -> bytes:
    """SHA-256 of the domain-separated item as a canonical u-coordinate (top bit cleared)."""
    digest = bytearray(hashlib.sha256(HASH_DOMAIN + item).digest())
    digest[31] &= 0x7F  # X25519 ignores bit 255 (RFC 7748); clear it so the value is canonical
    return bytes(digest)


def hash_many(items: Sequence[bytes]) -> list[bytes]:
    return [hash_to_point(item) for item in items]


def _check_packed(packed: bytes) -> None:
    # libsodium reads 32 bytes behind each pointer: a ragged buffer must never reach it.
    if not isinstance(packed, bytes) or len(packed) % POINT_BYTES:
        raise PrivacyError(f"PSI points: got a point that is not {POINT_BYTES} bytes")


def _blind_packed(scalar: bytes, packed: bytes) -> bytes:
    """X25519(scalar, u) for each 32-byte u of ``packed``, concatenated (also a pool task)."""
    _check_packed(packed)
    mult = crypto_scalarmult
    try:
        return b"".join([mult(scalar, packed[i:i + POINT_BYTES])
                         for i in range(0, len(packed), POINT_BYTES)])
    except CryptoError as exc:  # libsodium: the result was all zero, a low-order point
        raise PrivacyError("PSI point: got a malformed or low-order point") from exc


def _hash_blind(scalar: bytes, items: Sequence[bytes]) -> bytes:
    """H(item)^scalar for each item, packed (a pool task: hashing happens in the worker)."""
    return _blind_packed(scalar, b"".join(map(hash_to_point, items)))


def pack(points: Sequence[bytes]) -> bytes:
    """Concatenate 32-byte points (refuses any other length)."""
    if any(len(p) != POINT_BYTES for p in points):
        raise PrivacyError(f"PSI points: got a point that is not {POINT_BYTES} bytes")
    return b"".join(points)


def unpack(packed: bytes | bytearray) -> list[bytes]:
    """Packed 32-byte points -> list (refuses a ragged length)."""
    return split_rows(packed, POINT_BYTES)


class PsiKey:
    """A fresh secret blinding scalar for one PSI job: never reuse it across jobs."""

    __slots__ = ("_scalar",)

    def __init__(self, scalar: bytes) -> None:
        if len(scalar) != POINT_BYTES:
            raise PrivacyError(f"PSI key: got {len(scalar)} bytes, want {POINT_BYTES}")
        self._scalar = bytes(scalar)

    @classmethod
    def generate(cls) -> PsiKey:
        return cls(secrets.token_bytes(POINT_BYTES))

    def __repr__(self) -> str:
        return "PsiKey(<secret>)"

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("PsiKey is secret and is not picklable")

    def blind(self, points: Sequence[bytes]) -> list[bytes]:
        """Raise each point to this key, in this process."""
        return unpack(_blind_packed(self._scalar, pack(points)))

    def blind_packed(self, packed: bytes) -> bytes:
        """Raise each point of a packed chunk to this key, in this process."""
        return _blind_packed(self._scalar, packed)

    def hash_blind(self, items: Sequence[bytes]) -> bytes:
        """H(item)^key for each item, packed, in this process."""
        return _hash_blind(self._scalar, items)

    def submit_blind(self, pool: PsiPool, packed: bytes) -> Future[bytes]:
        """:meth:`blind_packed` on one of ``pool``'s workers (the scalar goes only there)."""
        _check_packed(packed)
        return pool._submit(_blind_packed, self._scalar, packed)

    def submit_hash_blind(self, pool: PsiPool, items: Sequence[bytes]) -> Future[bytes]:
        """:meth:`hash_blind` on one of ``pool``'s workers."""
        return pool._submit(_hash_blind, self._scalar, as_items(items))

    def blind_many(self, points: Sequence[bytes], *, pool: PsiPool | None = None,
                   chunk: int = BLIND_CHUNK, progress: Progress | None = None) -> list[bytes]:
        """Blind a large list in chunks, on ``pool``'s workers if given; order is kept.

        ``progress(done, total)`` is called after each chunk (from this thread).
        """
        packed = pack(points)
        if chunk < 1:
            raise PrivacyError(f"chunk: got {chunk}, want at least 1")
        total, step = len(points), chunk * POINT_BYTES
        starts = range(0, len(packed), step)
        if pool is None:
            parts = []
            for start in starts:
                parts.append(self.blind_packed(packed[start:start + step]))
                if progress:
                    progress(min(total, (start + step) // POINT_BYTES), total)
            return unpack(b"".join(parts))
        futures = {self.submit_blind(pool, packed[s:s + step]): s for s in starts}
        results: dict[int, bytes] = {}
        done = 0
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            done += len(results[futures[future]]) // POINT_BYTES
            if progress:
                progress(done, total)
        return unpack(b"".join(results[s] for s in starts))


def shuffle(items: Sequence[T], rng: random.Random | None = None) -> list[T]:
    """A shuffled copy, by default from the OS CSPRNG (see :func:`permutation`)."""
    if rng is not None:
        out = list(items)
        rng.shuffle(out)
        return out
    return [items[i] for i in permutation(len(items)).tolist()]


def shuffle_packed(packed: bytes | bytearray, size: int = POINT_BYTES) -> bytes:
    """The fixed-size values of ``packed`` in a random order (OS CSPRNG)."""
    return shuffle_rows(packed, size)
