"""Packed matching, repeats and shuffles: exact, including values that share their first 8 bytes."""

from __future__ import annotations

import hmac
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.privacy import (
    PackedItems,
    PrivacyError,
    PsiKey,
    has_repeats,
    hash_to_point,
    hmac_packed,
    match_packed,
    shuffle,
    shuffle_packed,
    split_rows,
)

# Few distinct prefixes and tails: collisions on the first 64-bit word are the common case here.
values = st.builds(lambda head, tail: head * 8 + tail * 24, st.sampled_from([b"\0", b"\1"]),
                   st.sampled_from([b"a", b"b", b"c"]))


@settings(max_examples=60, deadline=None)
@given(st.lists(values, max_size=12), st.lists(values, max_size=12))
def test_match_packed_equals_membership_even_with_shared_prefixes(
        mine: list[bytes], theirs: list[bytes]) -> None:
    got = match_packed(b"".join(mine), b"".join(theirs)).tolist()
    assert got == [m in set(theirs) for m in mine]
    assert has_repeats(b"".join(mine)) == (len(set(mine)) != len(mine))


def test_match_packed_on_random_values() -> None:
    theirs = [os.urandom(32) for _ in range(3000)]
    mine = theirs[:1000] + [os.urandom(32) for _ in range(2000)]
    got = match_packed(bytearray(b"".join(mine)), b"".join(theirs))
    assert got.tolist() == [True] * 1000 + [False] * 2000
    assert not has_repeats(b"".join(theirs)) and has_repeats(b"".join(theirs + theirs[5:6]))


def test_ragged_buffers_are_refused() -> None:
    with pytest.raises(PrivacyError, match="multiple of 32"):
        match_packed(b"x" * 33, b"")
    with pytest.raises(PrivacyError, match="32 bytes"):
        PsiKey.generate().blind_packed(b"x" * 31)
    for ragged in (b"x" * 33, bytearray(b"x" * 65)):
        with pytest.raises(PrivacyError, match="multiple of 32"):
            split_rows(ragged, 32)
        with pytest.raises(PrivacyError, match="multiple of 32"):
            shuffle_packed(ragged)
    assert split_rows(bytearray(b"ab" * 32), 32) == [b"ab" * 16, b"ab" * 16]


def test_hmac_packed_is_rfc_2104_hmac_sha256() -> None:
    key, items = os.urandom(32), [b"", b"110101199003077777", os.urandom(100)]
    want = b"".join(hmac.digest(key, i, "sha256") for i in items)
    assert hmac_packed(key, items) == want


def test_packed_blinding_equals_listwise_blinding() -> None:
    key = PsiKey.generate()
    items = [b"%d" % i for i in range(50)]
    points = [hash_to_point(i) for i in items]
    assert key.hash_blind(items) == key.blind_packed(b"".join(points)) == b"".join(
        key.blind(points))


def test_shuffles_are_permutations() -> None:
    packed = b"".join(os.urandom(32) for _ in range(500))
    mixed = shuffle_packed(packed)
    rows = {packed[i:i + 32] for i in range(0, len(packed), 32)}
    assert mixed != packed and {mixed[i:i + 32] for i in range(0, len(mixed), 32)} == rows
    items = list(range(1000))
    assert sorted(shuffle(items)) == items and shuffle(items) != items


def test_packed_items_act_as_a_sequence_of_items() -> None:
    ids = ["110101199003077777", "110101199003078888", "110101199003079999"]
    items = PackedItems.from_ids(ids)
    assert items is not None and list(items) == [i.encode() for i in ids]
    assert items[1] == ids[1].encode() and items[-1] == ids[2].encode()
    assert list(items[1:]) == [i.encode() for i in ids[1:]] and len(items[5:]) == 0
    assert sorted(items.shuffled()) == sorted(items)
    assert PackedItems.from_ids(["a", "bb"]) is None and PackedItems.from_ids(["é"]) is None
    key = PsiKey.generate()
    assert key.hash_blind(items) == key.hash_blind(list(items))
    assert hmac_packed(bytes(32), items) == hmac_packed(bytes(32), list(items))
    with pytest.raises(PrivacyError, match="whole number"):
        PackedItems(b"abc", 2)
