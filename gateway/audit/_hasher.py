"""RFC 9162 Merkle tree hashing (section 2.1.1) over SHA-256 or SM3.

A :class:`Hasher` is a small frozen value: the hash name, the digest size, and the three
domain-separated operations every other audit module builds on::

    leaf(d)     = H(0x00 || d)
    node(l, r)  = H(0x01 || l || r)
    empty_root  = H("")

SHA-256 goes through :mod:`hashlib` (fast, one C call per hash); SM3 through
``cryptography``'s ``hashes.SM3`` because :mod:`hashlib` does not promise it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes

__all__ = ["HASHER_NAMES", "Hasher", "get_hasher"]

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


_DIGESTS: dict[str, Callable[[bytes], bytes]] = {"sha256": _sha256, "sm3": _sm3}

#: The hash names a log may be created with, sorted.
HASHER_NAMES: tuple[str, ...] = tuple(sorted(_DIGESTS))


@dataclass(frozen=True)
class Hasher:
    """Domain-separated RFC 9162 hashing with one fixed hash function.

    Build it with :func:`get_hasher`; two hashers are equal when their names are.
    """

    name: str
    size: int
    _digest: Callable[[bytes], bytes] = field(repr=False, compare=False)

    def digest(self, data: bytes) -> bytes:
        """Plain H(data), without any domain-separation prefix."""
        return self._digest(data)

    def leaf(self, data: bytes) -> bytes:
        """Leaf hash H(0x00 || data) of one raw entry."""
        return self._digest(_LEAF_PREFIX + data)

    def node(self, left: bytes, right: bytes) -> bytes:
        """Interior node hash H(0x01 || left || right)."""
        return self._digest(_NODE_PREFIX + left + right)

    def empty_root(self) -> bytes:
        """Root of the empty tree, H("")."""
        return self._digest(b"")


_HASHERS: dict[str, Hasher] = {
    name: Hasher(name=name, size=len(fn(b"")), _digest=fn) for name, fn in _DIGESTS.items()
}


def get_hasher(name: str) -> Hasher:
    """Return the hasher called ``name`` ("sha256" or "sm3").

    Raises :class:`ValueError` naming the unknown name and the choices.
    """
    try:
        return _HASHERS[name]
    except (KeyError, TypeError):
        choices = ", ".join(HASHER_NAMES)
        raise ValueError(f"unknown audit hash {name!r}: want one of {choices}") from None
