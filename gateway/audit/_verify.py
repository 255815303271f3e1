"""Pure RFC 9162 proof verification: no tree, no storage, only hashes and sizes.

These functions are what an offline verifier or a witness runs; they trust nothing but
their arguments. Every failure raises :class:`ProofError` with a got/want reason.

Note that an inclusion proof binds the leaf, its index and the root; the tree size only
shapes the hash chain. The size is authenticated by the signed checkpoint that carries
the root, so always take ``size`` and ``root`` from the same verified checkpoint.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from ._hasher import Hasher

__all__ = [
    "ProofError",
    "compute_root",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
]


class ProofError(ValueError):
    """A Merkle proof, or the sizes and hashes it was checked against, did not verify."""


def _check_hashes(hasher: Hasher, what: str, hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if len(h) != hasher.size:
            raise ProofError(f"{what}[{i}] is {len(h)} bytes: want {hasher.size}")


def _check_hash(hasher: Hasher, what: str, h: bytes) -> None:
    if len(h) != hasher.size:
        raise ProofError(f"{what} is {len(h)} bytes: want {hasher.size}")


def _mismatch(what: str, got: bytes, want: bytes) -> ProofError:
    return ProofError(f"{what} mismatch: got {got.hex()}, want {want.hex()}")


def compute_root(hasher: Hasher, leaf_hashes: Sequence[bytes]) -> bytes:
    """Plain recursive MTH over leaf hashes (RFC 9162 section 2.1.1), for cross-checks."""
    n = len(leaf_hashes)
    if n == 0:
        return hasher.empty_root()
    if n == 1:
        return leaf_hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return hasher.node(compute_root(hasher, leaf_hashes[:k]), compute_root(hasher, leaf_hashes[k:]))


def root_from_inclusion(hasher: Hasher, index: int, size: int, leaf_hash: bytes,
                        proof: Sequence[bytes]) -> bytes:
    """Root implied by an inclusion proof (RFC 9162 section 2.1.3.2, steps 1-4)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} outside tree of size {size}: "
                         "want 0 <= index < size")
    _check_hash(hasher, "leaf hash", leaf_hash)
    _check_hashes(hasher, "proof", proof)
    fn, sn, r = index, size - 1, leaf_hash
    for i, p in enumerate(proof):
        if sn == 0:
            raise ProofError(f"inclusion proof has {len(proof)} hashes: want {i} "
                             f"for index {index} at size {size}")
        if fn & 1 or fn == sn:
            r = hasher.node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = hasher.node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof has {len(proof)} hashes: too short "
                         f"for index {index} at size {size}")
    return r


def verify_inclusion(hasher: Hasher, index: int, size: int, leaf_hash: bytes,
                     proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the size-``size`` tree with ``root``."""
    _check_hash(hasher, "root", root)
    got = root_from_inclusion(hasher, index, size, leaf_hash, proof)
    if not hmac.compare_digest(got, root):
        raise _mismatch("inclusion root", got, root)


def verify_consistency(hasher: Hasher, size1: int, size2: int, proof: Sequence[bytes],
                       root1: bytes, root2: bytes) -> None:
    """Check that the size-``size1`` tree with ``root1`` is a prefix of ``root2``'s tree.

    RFC 9162 section 2.1.4.2. Edge cases: equal sizes need an empty proof and equal
    roots; ``size1 == 0`` needs an empty proof and ``root1`` equal to the empty-tree root.
    """
    if not 0 <= size1 <= size2:
        raise ProofError(f"consistency from size {size1} to {size2}: "
                         "want 0 <= size1 <= size2")
    _check_hash(hasher, "root1", root1)
    _check_hash(hasher, "root2", root2)
    _check_hashes(hasher, "proof", proof)
    if size1 == 0 or size1 == size2:
        if proof:
            raise ProofError(f"consistency proof from {size1} to {size2} has "
                             f"{len(proof)} hashes: want 0")
        if size1 == 0 and not hmac.compare_digest(root1, empty := hasher.empty_root()):
            raise _mismatch("root1 at size 0 (empty tree)", root1, empty)
        if size1 == size2 and not hmac.compare_digest(root1, root2):
            raise _mismatch(f"root1 at equal size {size1}", root1, root2)
        return
    if not proof:
        raise ProofError(f"consistency proof from {size1} to {size2} is empty: want hashes")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is a proof node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof from {size1} to {size2} has "
                             f"{len(proof)} hashes: too long")
        if fn & 1 or fn == sn:
            fr = hasher.node(c, fr)
            sr = hasher.node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = hasher.node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof from {size1} to {size2} has "
                         f"{len(proof)} hashes: too short")
    if not hmac.compare_digest(fr, root1):
        raise _mismatch(f"root1 at size {size1}", fr, root1)
    if not hmac.compare_digest(sr, root2):
        raise _mismatch(f"root2 at size {size2}", sr, root2)
