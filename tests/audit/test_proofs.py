"""RFC 9162 inclusion and consistency proofs: known answers, exhaustive round trips,
hypothesis beyond, and the generated corrupted-case vectors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import (
    MerkleTree,
    ProofError,
    compute_root,
    get_hasher,
    root_from_inclusion,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
KNOWN: Any = json.loads((VECTORS / "merkle_known.json").read_text())
SHA256 = get_hasher("sha256")
BIG = 4096


def _tree(n: int, hasher_name: str = "sha256") -> tuple[MerkleTree, list[bytes]]:
    h = get_hasher(hasher_name)
    leaves = [h.leaf(i.to_bytes(4, "big")) for i in range(n)]
    tree = MerkleTree(h)
    tree.extend(leaves)
    return tree, leaves


TREE_128, LEAVES_128 = _tree(128)
TREE_BIG, LEAVES_BIG = _tree(BIG)


def _hx(items: list[str]) -> list[bytes]:
    return [bytes.fromhex(x) for x in items]


# -- known answers ---------------------------------------------------------------------

def _known_tree() -> MerkleTree:
    return MerkleTree.from_leaves(SHA256, (bytes.fromhex(x) for x in KNOWN["leaf_inputs"]))


@pytest.mark.parametrize("case", KNOWN["inclusion"], ids=lambda c: f"{c['index']}@{c['size']}")
def test_known_inclusion_proofs(case: Any) -> None:
    tree, index, size, proof = _known_tree(), case["index"], case["size"], _hx(case["proof"])
    assert tree.inclusion_proof(index, size) == proof
    root = bytes.fromhex(KNOWN["roots"][size])
    verify_inclusion(SHA256, index, size, tree.leaf_hash(index), proof, root)


@pytest.mark.parametrize("case", KNOWN["consistency"], ids=lambda c: f"{c['size1']}-{c['size2']}")
def test_known_consistency_proofs(case: Any) -> None:
    tree, s1, s2, proof = _known_tree(), case["size1"], case["size2"], _hx(case["proof"])
    assert tree.consistency_proof(s1, s2) == proof
    verify_consistency(SHA256, s1, s2, proof, bytes.fromhex(KNOWN["roots"][s1]),
                       bytes.fromhex(KNOWN["roots"][s2]))


# -- exhaustive round trips, sizes 1..128 ----------------------------------------------

def test_every_root_matches_recursive_mth() -> None:
    for size in range(129):
        assert TREE_128.root(size) == compute_root(SHA256, LEAVES_128[:size])


@pytest.mark.parametrize("size", range(1, 129))
def test_every_inclusion_proof_verifies(size: int) -> None:
    root = TREE_128.root(size)
    for index in range(size):
        proof = TREE_128.inclusion_proof(index, size)
        verify_inclusion(SHA256, index, size, LEAVES_128[index], proof, root)
        assert root_from_inclusion(SHA256, index, size, LEAVES_128[index], proof) == root


@pytest.mark.parametrize("size2", range(1, 129))
def test_every_consistency_proof_verifies(size2: int) -> None:
    root2 = TREE_128.root(size2)
    for size1 in range(size2 + 1):
        proof = TREE_128.consistency_proof(size1, size2)
        verify_consistency(SHA256, size1, size2, proof, TREE_128.root(size1), root2)


# -- hypothesis beyond -----------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.integers(1, BIG).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_inclusion_round_trip_large(args: tuple[int, int]) -> None:
    index, size = args
    proof = TREE_BIG.inclusion_proof(index, size)
    assert len(proof) <= (size - 1).bit_length()
    verify_inclusion(SHA256, index, size, LEAVES_BIG[index], proof, TREE_BIG.root(size))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, BIG).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_consistency_round_trip_large(args: tuple[int, int]) -> None:
    size1, size2 = args
    proof = TREE_BIG.consistency_proof(size1, size2)
    verify_consistency(SHA256, size1, size2, proof, TREE_BIG.root(size1), TREE_BIG.root(size2))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3000), st.sampled_from(["sha256", "sm3"]))
def test_root_matches_recursive_mth_and_stays_after_appends(n: int, name: str) -> None:
    tree, leaves = _tree(n, name)
    root = tree.root()
    assert root == compute_root(tree.hasher, leaves)
    tree.extend(tree.hasher.leaf(b"more %d" % i) for i in range(5))
    assert tree.root(n) == root and tree.size == n + 5
    verify_consistency(tree.hasher, n, n + 5, tree.consistency_proof(n, n + 5), root,
                       tree.root())


@settings(max_examples=100, deadline=None)
@given(st.integers(2, BIG).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))),
       st.integers(0, 31), st.integers(0, 7))
def test_any_single_bit_flip_is_rejected(args: tuple[int, int], byte: int, bit: int) -> None:
    index, size = args
    proof = TREE_BIG.inclusion_proof(index, size)
    bad = bytearray(proof[index % len(proof)])
    bad[byte] ^= 1 << bit
    proof[index % len(proof)] = bytes(bad)
    with pytest.raises(ProofError, match="mismatch"):
        verify_inclusion(SHA256, index, size, LEAVES_BIG[index], proof, TREE_BIG.root(size))


# -- generated corrupted-case vectors --------------------------------------------------

MUTATED: Any = json.loads((VECTORS / "merkle_mutated.json").read_text())


def _check(case: Any) -> None:
    h, proof = get_hasher(case["hasher"]), _hx(case["proof"])
    if case["type"] == "inclusion":
        verify_inclusion(h, case["index"], case["size"], bytes.fromhex(case["leaf_hash"]),
                         proof, bytes.fromhex(case["root"]))
    else:
        verify_consistency(h, case["size1"], case["size2"], proof,
                           bytes.fromhex(case["root1"]), bytes.fromhex(case["root2"]))


def test_mutated_vectors_cover_every_mutation_kind() -> None:
    kinds = {(c["type"], c["mutation"]) for c in MUTATED["cases"]}
    for want in ["none", "flip_bit_first", "flip_bit_last", "truncated", "extra_hash",
                 "wrong_size", "wrong_index", "wrong_leaf", "wrong_root"]:
        assert ("inclusion", want) in kinds
    for want in ["none", "flip_bit_first", "truncated", "extra_hash", "swapped_roots",
                 "wrong_size1", "wrong_size2", "empty_proof"]:
        assert ("consistency", want) in kinds
    assert {c["hasher"] for c in MUTATED["cases"]} == {"sha256", "sm3"}


def test_every_valid_vector_verifies_and_every_mutant_is_rejected() -> None:
    accepted_bad, rejected_good = [], []
    for case in MUTATED["cases"]:
        try:
            _check(case)
        except ProofError:
            if case["valid"]:
                rejected_good.append(case)
        else:
            if not case["valid"]:
                accepted_bad.append(case)
    assert not rejected_good and not accepted_bad


def test_valid_vectors_match_fresh_proofs() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from gen_audit_vectors import LEAVES, leaf_data
    finally:
        sys.path.pop(0)
    trees = {name: MerkleTree.from_leaves(get_hasher(name), (leaf_data(i) for i in range(LEAVES)))
             for name in ("sha256", "sm3")}
    for case in (c for c in MUTATED["cases"] if c["valid"]):
        tree = trees[case["hasher"]]
        if case["type"] == "inclusion":
            assert _hx(case["proof"]) == tree.inclusion_proof(case["index"], case["size"])
        else:
            assert _hx(case["proof"]) == tree.consistency_proof(case["size1"], case["size2"])


def test_generator_is_deterministic(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_audit_vectors.py"),
                    "--out", str(tmp_path)], check=True, capture_output=True)
    assert (tmp_path / "merkle_mutated.json").read_bytes() == \
        (VECTORS / "merkle_mutated.json").read_bytes()


# -- argument errors and edge cases ----------------------------------------------------

def test_consistency_edge_cases() -> None:
    empty, r1 = SHA256.empty_root(), TREE_128.root(1)
    verify_consistency(SHA256, 0, 0, [], empty, empty)
    verify_consistency(SHA256, 0, 5, [], empty, TREE_128.root(5))
    verify_consistency(SHA256, 1, 1, [], r1, r1)
    cases = [((0, 5, [], r1, TREE_128.root(5)), "size 0"),          # root1 not the empty root
             ((1, 1, [], r1, TREE_128.root(2)), "equal size"),      # equal sizes, other roots
             ((1, 1, [r1], r1, r1), "want 0"),                      # equal sizes, proof given
             ((2, 1, [], r1, r1), "size1 <= size2"),                # time travel
             ((1, 2, [], r1, TREE_128.root(2)), "is empty"),        # missing proof
             ((1, 2, [b"short"], r1, TREE_128.root(2)), "5 bytes")]  # bad hash length
    for args, reason in cases:
        with pytest.raises(ProofError, match=reason):
            verify_consistency(SHA256, *args)


def test_inclusion_argument_errors() -> None:
    leaf, root = LEAVES_128[0], TREE_128.root(1)
    verify_inclusion(SHA256, 0, 1, leaf, [], root)
    with pytest.raises(ProofError, match="outside tree"):
        verify_inclusion(SHA256, 1, 1, leaf, [], root)
    with pytest.raises(ProofError, match="outside tree"):
        verify_inclusion(SHA256, 0, 0, leaf, [], SHA256.empty_root())
    with pytest.raises(ProofError, match="root is 3 bytes"):
        verify_inclusion(SHA256, 0, 1, leaf, [], b"abc")
    with pytest.raises(ProofError, match="leaf hash is 0 bytes"):
        verify_inclusion(SHA256, 0, 1, b"", [], root)
    with pytest.raises(ProofError, match="too short"):
        verify_inclusion(SHA256, 0, 4, leaf, TREE_128.inclusion_proof(0, 4)[:1], TREE_128.root(4))
    with pytest.raises(ProofError, match="want 2"):
        verify_inclusion(SHA256, 0, 4, leaf, [*TREE_128.inclusion_proof(0, 4), root],
                         TREE_128.root(4))


def test_tree_argument_errors() -> None:
    tree, _ = _tree(5)
    with pytest.raises(ValueError, match="want 0 <= size <= 5"):
        tree.root(6)
    with pytest.raises(ValueError, match="want 0 <= index < size"):
        tree.inclusion_proof(5, 5)
    with pytest.raises(ValueError, match="want 0 <= size <= 5"):
        tree.inclusion_proof(0, 6)
    with pytest.raises(ValueError, match="old_size <= new_size"):
        tree.consistency_proof(4, 3)
    with pytest.raises(ValueError, match="leaf hash length 3"):
        tree.append(b"abc")
    with pytest.raises(IndexError):
        tree.leaf_hash(5)
    with pytest.raises(IndexError):
        tree.node(1, 2)  # leaves 4..7 are not complete
    with pytest.raises(ValueError, match="not aligned"):
        subtree_root(tree, tree.hasher, 1, 3)
    assert tree.consistency_proof(0, 5) == [] == tree.consistency_proof(5, 5)
    assert tree.append(SHA256.leaf(b"x")) == 5 and len(tree) == 6
    assert tree.node(1, 2) == SHA256.node(tree.leaf_hash(4), tree.leaf_hash(5))
