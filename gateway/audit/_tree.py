"""In-memory RFC 9162 Merkle tree over leaf hashes, sized for millions of entries.

Level 0 holds the leaf hashes; level ``l`` holds the hash of every *complete* subtree of
``2**l`` leaves, in order. Each level is one :class:`bytearray` of concatenated digests
(32 bytes a node, no per-object overhead: about 64 MB for 10**6 leaves). An append hashes
only the subtrees it completes, so it is amortised O(1); roots of any earlier size and
proofs are O(log n) node reads via :mod:`gateway.audit._proof`.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import _proof
from ._hasher import Hasher

__all__ = ["MerkleTree"]


class MerkleTree:
    """Append-only RFC 9162 Merkle tree.

    One writer at a time (the log serialises appends). Readers asking about sizes up to
    :attr:`size` may run alongside the writer: nodes are stored before ``size`` grows.
    """

    __slots__ = ("_hasher", "_levels", "_size")

    def __init__(self, hasher: Hasher) -> None:
        self._hasher = hasher
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0

    @classmethod
    def from_leaves(cls, hasher: Hasher, leaves: Iterable[bytes]) -> MerkleTree:
        """Build a tree from raw entry bytes, hashing each with ``hasher.leaf``."""
        tree = cls(hasher)
        tree.extend(hasher.leaf(data) for data in leaves)
        return tree

    @property
    def hasher(self) -> Hasher:
        """The hasher every node of this tree was made with."""
        return self._hasher

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def __len__(self) -> int:
        return self._size

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash; return its index. Completed subtrees are hashed now."""
        width = self._hasher.size
        if len(leaf_hash) != width:
            raise ValueError(f"leaf hash length {len(leaf_hash)}: want {width}")
        index = self._size
        levels = self._levels
        levels[0] += leaf_hash
        node, pos, level = bytes(leaf_hash), index, 0
        while pos & 1:
            left = bytes(levels[level][(pos - 1) * width:pos * width])
            node = self._hasher.node(left, node)
            pos >>= 1
            level += 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += node
        self._size = index + 1
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes in order."""
        for leaf_hash in leaf_hashes:
            self.append(leaf_hash)

    def node(self, level: int, index: int) -> bytes:
        """Hash of the complete subtree of ``2**level`` leaves at horizontal ``index``."""
        width = self._hasher.size
        if level < 0 or level >= len(self._levels) or not 0 <= index < self._count(level):
            raise IndexError(f"no complete subtree at level {level}, index {index} "
                             f"in a tree of {self._size} leaves")
        return bytes(self._levels[level][index * width:(index + 1) * width])

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash stored at ``index``."""
        if not 0 <= index < self._size:
            raise IndexError(f"leaf index {index}: want 0 <= index < {self._size}")
        return self.node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all); any ``size <= self.size``."""
        size = self._size if size is None else self._check_size(size, "root")
        return _proof.subtree_root(self, self._hasher, 0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves."""
        self._check_size(size, "inclusion proof")
        return _proof.inclusion_proof(self, self._hasher, index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof between the trees of ``old_size`` and ``new_size``."""
        self._check_size(new_size, "consistency proof")
        return _proof.consistency_proof(self, self._hasher, old_size, new_size)

    def _count(self, level: int) -> int:
        return self._size >> level

    def _check_size(self, size: int, what: str) -> int:
        if not 0 <= size <= self._size:
            raise ValueError(f"{what} at size {size}: want 0 <= size <= {self._size}")
        return size
