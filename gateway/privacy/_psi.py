"""Raw ECDH-PSI on X25519: hashing items to u-coordinates and commutative blinding.

``hash_to_point`` is SHA-256 of a domain-separated item read as an X25519 u-coordinate (the
construction of SecretFlow's curve25519 PSI). Blinding is the X25519 function itself,
``X25519(k, u) = x([clamp(k)] P)`` for either point P with ``x(P) = u``, computed by OpenSSL
through ``cryptography``. Why this commutes for *every* u:

* the Montgomery ladder works on x alone, for points of Curve25519 and of its quadratic twist
  alike (about half of all hashed u lie on the twist), and ``x([a][b]P) = x([ab]P) = x([b][a]P)``;
* clamped scalars are multiples of 8, a multiple of both cofactors (8 on the curve, 4 on the twist),
  so small-order components vanish after the first blinding and every later blinding acts in the
  prime-order subgroup. Curve25519 is twist-secure (twist subgroup order about 2^253), so DDH,
  on which PSI rests, is as hard for twist points as for curve points.

The price of clamping: two u that differ by a small-order point blind to the same value. For
hashed items that needs a SHA-256 preimage, so it does not happen. A peer that sends a
low-order point (result all zero) is refused with :class:`PrivacyError`.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from gateway.privacy._errors import PrivacyError
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


def _blind(scalar: bytes, points: Sequence[bytes]) -> list[bytes]:
    exchange = X25519PrivateKey.from_private_bytes(scalar).exchange
    from_bytes = X25519PublicKey.from_public_bytes
    try:
        return [exchange(from_bytes(u)) for u in points]
    except ValueError as exc:  # wrong length, or a low-order point: OpenSSL yields all zero
        raise PrivacyError("PSI point: got a malformed or low-order point") from exc


def _blind_packed(scalar: bytes, packed: bytes) -> bytes:
    """Pool worker: blind concatenated 32-byte points (one bytes object pickles fast)."""
    points = [packed[i:i + POINT_BYTES] for i in range(0, len(packed), POINT_BYTES)]
    return b"".join(_blind(scalar, points))


class PsiKey:
    """A fresh secret blinding scalar for one PSI job: never reuse it across jobs."""

    __slots__ = ("_scalar",)

    def __init__(self, scalar: bytes) -> None:
        if len(scalar) != POINT_BYTES:
            raise PrivacyError(f"PSI key: got {len(scalar)} bytes, want {POINT_BYTES}")
        self._scalar = bytes(scalar)

    @classmethod
    def generate(cls) -> PsiKey:
        return cls(X25519PrivateKey.generate().private_bytes_raw())

    def __repr__(self) -> str:
        return "PsiKey(<secret>)"

    def __reduce__(self) -> object:
        raise TypeError("PsiKey is secret and is not picklable")

    def blind(self, points: Sequence[bytes]) -> list[bytes]:
        """Raise each point to this key, in this process."""
        _check_points(points)
        return _blind(self._scalar, points)

    def blind_many(self, points: Sequence[bytes], *, pool: PsiPool | None = None,
                   chunk: int = BLIND_CHUNK, progress: Progress | None = None) -> list[bytes]:
        """Blind a large list in chunks, on ``pool``'s workers if given; order is kept.

        ``progress(done, total)`` is called after each chunk (from this thread).
        """
        _check_points(points)
        if chunk < 1:
            raise PrivacyError(f"chunk: got {chunk}, want at least 1")
        total = len(points)
        starts = range(0, total, chunk)
        if pool is None:
            out: list[bytes] = []
            for start in starts:
                out.extend(_blind(self._scalar, points[start:start + chunk]))
                if progress:
                    progress(len(out), total)
            return out
        futures = {pool._submit(_blind_packed, self._scalar,
                                b"".join(points[start:start + chunk])): start for start in starts}
        results: dict[int, bytes] = {}
        done = 0
        for future in as_completed(futures):
            packed = future.result()
            results[futures[future]] = packed
            done += len(packed) // POINT_BYTES
            if progress:
                progress(done, total)
        joined = b"".join(results[start] for start in starts)
        return [joined[i:i + POINT_BYTES] for i in range(0, len(joined), POINT_BYTES)]


def _check_points(points: Sequence[bytes]) -> None:
    if any(len(p) != POINT_BYTES for p in points):
        raise PrivacyError(f"PSI points: got a point that is not {POINT_BYTES} bytes")


def shuffle(items: Sequence[T], rng: random.Random | None = None) -> list[T]:
    """A shuffled copy, by default with the OS CSPRNG (``secrets.SystemRandom``)."""
    out = list(items)
    (rng or secrets.SystemRandom()).shuffle(out)
    return out
