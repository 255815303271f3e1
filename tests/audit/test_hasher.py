"""Hashing known answers (RFC 6962 test tree, SM3) and the audit package front door."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import gateway.audit
from gateway.audit import HASHER_NAMES, MerkleTree, compute_root, get_hasher

KNOWN = json.loads((Path(__file__).parent.parent / "vectors" / "merkle_known.json").read_text())
LEAVES = [bytes.fromhex(x) for x in KNOWN["leaf_inputs"]]


def test_public_surface_is_sorted_and_fixed() -> None:
    assert gateway.audit.__all__ == sorted(gateway.audit.__all__)
    assert {"Hasher", "get_hasher", "MerkleTree", "ProofError", "verify_inclusion",
            "verify_consistency", "compute_root", "root_from_inclusion", "Checkpoint",
            "NoteSigner", "NoteVerifier", "NoteError", "SignedNote", "NoteSignature",
            "sign_note", "open_note", "cosign", "verify_cosignatures", "AuditEntry",
            "AgreementRef", "subject_pseudonym"} <= set(gateway.audit.__all__)
    for name in gateway.audit.__all__:
        assert hasattr(gateway.audit, name), name


def test_leaf_hashes_match_rfc6962_test_tree() -> None:
    h = get_hasher("sha256")
    assert [h.leaf(d).hex() for d in LEAVES] == KNOWN["leaf_hashes"]


@pytest.mark.parametrize("size", range(9))
def test_roots_match_published_values(size: int) -> None:
    h = get_hasher("sha256")
    tree = MerkleTree.from_leaves(h, LEAVES)
    want = KNOWN["roots"][size]
    assert tree.root(size).hex() == want
    assert compute_root(h, [h.leaf(d) for d in LEAVES[:size]]).hex() == want
    grown = MerkleTree.from_leaves(h, LEAVES[:size])
    assert grown.root().hex() == want and grown.size == size


def test_node_is_domain_separated_from_leaf() -> None:
    h = get_hasher("sha256")
    a, b = h.leaf(b"a"), h.leaf(b"b")
    assert h.node(a, b) == h.digest(b"\x01" + a + b)
    assert h.leaf(b"a") == h.digest(b"\x00a")
    assert h.node(a, b) != h.leaf(a + b)
    assert h.empty_root().hex() == KNOWN["roots"][0]


def test_sm3_known_answer_and_tree() -> None:
    h = get_hasher("sm3")
    assert (h.name, h.size) == ("sm3", 32)
    assert h.digest(bytes.fromhex(KNOWN["sm3"]["input"])).hex() == KNOWN["sm3"]["digest"]
    assert h.leaf(b"x") == h.digest(b"\x00x")
    leaves = [h.leaf(bytes([i])) for i in range(37)]
    tree = MerkleTree(h)
    tree.extend(leaves)
    assert tree.root() == compute_root(h, leaves) != compute_root(get_hasher("sha256"), leaves)


def test_unknown_hasher_names_name_and_choices() -> None:
    assert HASHER_NAMES == ("sha256", "sm3")
    with pytest.raises(ValueError, match=r"'md5'.*sha256, sm3"):
        get_hasher("md5")
    with pytest.raises(ValueError, match="SHA256"):
        get_hasher("SHA256")


def test_hasher_is_frozen_and_compares_by_name() -> None:
    h = get_hasher("sha256")
    assert h == get_hasher("sha256") != get_hasher("sm3")
    with pytest.raises(dataclasses.FrozenInstanceError):
        h.name = "sm3"  # type: ignore[misc]
