#!/usr/bin/env python3
"""Generate tests/vectors/merkle_mutated.json: valid RFC 9162 proofs and corrupted variants.

Usage: ``python scripts/gen_audit_vectors.py [--out DIR]`` (default ``tests/vectors``).
The output is deterministic (fixed leaves, no randomness, stable JSON), so the test suite
re-runs this script and requires a byte-identical file.

Each case is one JSON object per line: ``hasher``, ``type`` ("inclusion" or
"consistency"), ``mutation`` ("none" for the valid proof), ``valid`` and the verifier
arguments in hex. Mutations: a bit flip in the first or last proof hash, a truncated
proof, an extra hash, a prepended hash, an empty proof, a wrong or swapped root, a wrong
leaf, a wrong index and wrong sizes.

An inclusion proof binds leaf, index and root; the size only shapes the hash chain, so
some wrong sizes (and, for consistency, some wrong first sizes) give the same chain and
are rightly accepted; the size is authenticated by the signed checkpoint instead. For
those mutations the generator takes the first candidate from a fixed list that changes
the chain and is rejected; every other mutation must be rejected unconditionally, and
the generator stops with an error if one is not.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.audit import (  # noqa: E402  (path set up above)
    Hasher,
    MerkleTree,
    ProofError,
    get_hasher,
    verify_consistency,
    verify_inclusion,
)

LEAVES = 128
BASES: dict[str, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {
    # hasher: (inclusion (index, size) pairs, consistency (size1, size2) pairs)
    "sha256": ([(0, 1), (0, 2), (1, 2), (2, 3), (0, 8), (5, 8), (4, 5), (12, 13),
                (31, 32), (32, 33), (17, 100), (99, 100), (127, 128)],
               [(1, 2), (1, 8), (2, 5), (6, 7), (6, 8), (3, 4), (7, 8), (8, 9), (15, 17),
                (32, 33), (33, 64), (37, 100), (64, 128), (127, 128)]),
    "sm3": ([(0, 1), (3, 7), (31, 32), (60, 97)], [(1, 2), (6, 8), (5, 13), (64, 127)]),
}


def _flip(proof: list[bytes], pos: int, byte: int, mask: int) -> list[bytes]:
    out = list(proof)
    h = bytearray(out[pos])
    h[byte] ^= mask
    out[pos] = bytes(h)
    return out


def _rejected(check: Callable[..., None], *args: object) -> bool:
    try:
        check(*args)
    except ProofError:
        return True
    return False


def _inclusion(h: Hasher, tree: MerkleTree, index: int, size: int) -> Iterable[dict[str, object]]:
    proof, root, leaf = tree.inclusion_proof(index, size), tree.root(size), tree.leaf_hash(index)
    other_root = tree.root(size - 1) if size > 1 else tree.root(size + 1)
    unconditional: list[tuple[str, int, int, bytes, list[bytes], bytes]] = [
        ("wrong_leaf", index, size, h.leaf(b"not this entry"), proof, root),
        ("wrong_root", index, size, leaf, proof, other_root),
        ("extra_hash", index, size, leaf, [*proof, root], root),
        ("prepended_hash", index, size, leaf, [leaf, *proof], root),
    ]
    if proof:
        unconditional += [("flip_bit_first", index, size, leaf, _flip(proof, 0, 0, 0x08), root),
                          ("truncated", index, size, leaf, proof[:-1], root)]
    if len(proof) > 1:
        unconditional.append(("flip_bit_last", index, size, leaf, _flip(proof, -1, 31, 0x80), root))
    chosen: list[tuple[str, int, int, bytes, list[bytes], bytes]] = []
    for name, candidates in (("wrong_index", [(index ^ 1, size), (index + 1, size),
                                              (index - 1, size)]),
                             ("wrong_size", [(index, size + 1), (index, size - 1),
                                             (index, size * 2), (index, size // 2)])):
        for i, s in candidates:
            if 0 <= i < s and (i, s) != (index, size) and _rejected(
                    verify_inclusion, h, i, s, leaf, proof, root):
                chosen.append((name, i, s, leaf, proof, root))
                break
    yield _inc_case(h, "none", True, index, size, leaf, proof, root)
    for name, i, s, lf, p, r in unconditional + chosen:
        if not _rejected(verify_inclusion, h, i, s, lf, p, r):
            raise SystemExit(f"{h.name} inclusion {index}/{size}: mutation {name} verified")
        yield _inc_case(h, name, False, i, s, lf, p, r)


def _inc_case(h: Hasher, mutation: str, valid: bool, index: int, size: int, leaf: bytes,
              proof: list[bytes], root: bytes) -> dict[str, object]:
    return {"hasher": h.name, "type": "inclusion", "mutation": mutation, "valid": valid,
            "index": index, "size": size, "leaf_hash": leaf.hex(),
            "proof": [p.hex() for p in proof], "root": root.hex()}


def _consistency(h: Hasher, tree: MerkleTree, size1: int,
                 size2: int) -> Iterable[dict[str, object]]:
    proof, r1, r2 = tree.consistency_proof(size1, size2), tree.root(size1), tree.root(size2)
    unconditional: list[tuple[str, int, int, list[bytes], bytes, bytes]] = [
        ("swapped_roots", size1, size2, proof, r2, r1),
        ("wrong_root1", size1, size2, proof, tree.root(size1 - 1), r2),
        ("wrong_root2", size1, size2, proof, r1, tree.root(size2 - 1)),
        ("empty_proof", size1, size2, [], r1, r2),
        ("extra_hash", size1, size2, [*proof, r2], r1, r2),
        ("prepended_hash", size1, size2, [proof[0], *proof], r1, r2),
        ("truncated", size1, size2, proof[:-1], r1, r2),
        ("flip_bit_first", size1, size2, _flip(proof, 0, 0, 0x10), r1, r2),
    ]
    if len(proof) > 1:
        unconditional.append(("flip_bit_last", size1, size2, _flip(proof, -1, 31, 0x01), r1, r2))
    chosen: list[tuple[str, int, int, list[bytes], bytes, bytes]] = []
    for name, candidates in (("wrong_size1", [(size1 + 1, size2), (size1 - 1, size2),
                                              (size1 ^ 2, size2)]),
                             ("wrong_size2", [(size1, size2 + 1), (size1, size2 - 1),
                                              (size1, size2 * 2)])):
        for s1, s2 in candidates:
            if 0 < s1 <= s2 and (s1, s2) != (size1, size2) and _rejected(
                    verify_consistency, h, s1, s2, proof, r1, r2):
                chosen.append((name, s1, s2, proof, r1, r2))
                break
    yield _con_case(h, "none", True, size1, size2, proof, r1, r2)
    for name, s1, s2, p, a, b in unconditional + chosen:
        if not _rejected(verify_consistency, h, s1, s2, p, a, b):
            raise SystemExit(f"{h.name} consistency {size1}->{size2}: mutation {name} verified")
        yield _con_case(h, name, False, s1, s2, p, a, b)


def _con_case(h: Hasher, mutation: str, valid: bool, size1: int, size2: int,
              proof: list[bytes], root1: bytes, root2: bytes) -> dict[str, object]:
    return {"hasher": h.name, "type": "consistency", "mutation": mutation, "valid": valid,
            "size1": size1, "size2": size2, "proof": [p.hex() for p in proof],
            "root1": root1.hex(), "root2": root2.hex()}


def leaf_data(i: int) -> bytes:
    """The raw entry bytes of vector leaf ``i``."""
    return f"pgw audit vector leaf {i}".encode()


def generate() -> str:
    """The complete merkle_mutated.json text."""
    cases: list[dict[str, object]] = []
    for name, (inclusions, consistencies) in BASES.items():
        h = get_hasher(name)
        tree = MerkleTree.from_leaves(h, (leaf_data(i) for i in range(LEAVES)))
        for index, size in inclusions:
            cases.extend(_inclusion(h, tree, index, size))
        for size1, size2 in consistencies:
            cases.extend(_consistency(h, tree, size1, size2))
    head = {"generator": "scripts/gen_audit_vectors.py", "leaf_data": "pgw audit vector leaf {i}",
            "leaves": LEAVES, "description": "RFC 9162 proofs; valid=false cases must be rejected"}
    lines = [json.dumps(c, sort_keys=True, separators=(",", ":")) for c in cases]
    return (json.dumps(head, sort_keys=True)[:-1] + ', "cases": [\n'
            + ",\n".join(lines) + "\n]}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent
                        / "tests" / "vectors", help="output directory")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "merkle_mutated.json").write_text(generate(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
