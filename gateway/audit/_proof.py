"""RFC 9162 proof generation over any source of complete-subtree hashes.

The algorithms here need only one thing from storage: the hash of a *complete* subtree,
``source.node(level, index)``, covering leaves ``[index * 2**level, (index + 1) * 2**level)``.
:class:`~gateway.audit._tree.MerkleTree` keeps every level in memory; a store can answer the
same question from its node table, so both share this code and produce identical proofs.

Every range the RFC 9162 recursion visits, ``D[lo:hi]``, starts at a multiple of the
smallest power of two >= ``hi - lo``; its hash is therefore the right-to-left fold of at most
``log2(n)`` complete subtrees (:func:`subtree_root`). A proof is O(log n) node reads.
"""

from __future__ import annotations

from typing import Protocol

from ._hasher import Hasher

__all__ = ["NodeSource", "consistency_proof", "inclusion_proof", "split_point", "subtree_root"]


class NodeSource(Protocol):
    """Anything that can return the hash of a complete, aligned subtree."""

    def node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree of height ``level`` at horizontal ``index``."""
        ...


def split_point(n: int) -> int:
    """RFC 9162 ``k``: the largest power of two strictly smaller than ``n`` (n >= 2)."""
    if n < 2:
        raise ValueError(f"split point of {n} leaves: want n >= 2")
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(source: NodeSource, hasher: Hasher, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range that RFC 9162 proofs visit (see module docstring).

    ``start == end`` gives the empty-tree root. Raises :class:`ValueError` for a range whose
    start is not aligned, which would mean a bug in the caller.
    """
    size = end - start
    if size < 0 or start < 0:
        raise ValueError(f"subtree range [{start}, {end}): want 0 <= start <= end")
    if size == 0:
        return hasher.empty_root()
    if start & ((1 << (size - 1).bit_length()) - 1):
        raise ValueError(f"subtree range [{start}, {end}): start is not aligned to its size")
    parts: list[bytes] = []
    pos = start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            parts.append(source.node(level, pos >> level))
            pos += 1 << level
    acc = parts.pop()
    while parts:
        acc = hasher.node(parts.pop(), acc)
    return acc


def inclusion_proof(source: NodeSource, hasher: Hasher, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1, leaf-side first."""
    if not 0 <= index < size:
        raise ValueError(f"inclusion proof for index {index} at size {size}: "
                         "want 0 <= index < size")
    top_down: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            top_down.append(subtree_root(source, hasher, lo + k, hi))
            hi = lo + k
        else:
            top_down.append(subtree_root(source, hasher, lo, lo + k))
            lo += k
    top_down.reverse()
    return top_down


def consistency_proof(source: NodeSource, hasher: Hasher, old_size: int,
                      new_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 section 2.1.4.1 (SUBPROOF with b=true).

    Empty when ``old_size`` is 0 or equal to ``new_size``.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"consistency proof from {old_size} to {new_size}: "
                         "want 0 <= old_size <= new_size")
    if old_size in (0, new_size):
        return []
    top_down: list[bytes] = []
    lo, hi, whole_old_tree = 0, new_size, True
    while old_size != hi:
        k = split_point(hi - lo)
        if old_size <= lo + k:
            top_down.append(subtree_root(source, hasher, lo + k, hi))
            hi = lo + k
        else:
            top_down.append(subtree_root(source, hasher, lo, lo + k))
            lo += k
            whole_old_tree = False
    proof = [] if whole_old_tree else [subtree_root(source, hasher, lo, hi)]
    proof.extend(reversed(top_down))
    return proof
