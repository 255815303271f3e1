"""Keyed-hash join: both sides derive one key; the relay cannot; HMAC matching is exact."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.privacy import KeyedJob, PrivacyError, hmac_items, match


def test_both_sides_derive_the_same_key_and_a_third_party_cannot() -> None:
    r_job, r_pub = KeyedJob.start()
    p_job, p_pub = KeyedJob.start()
    key = r_job.derive(p_pub)
    assert key == p_job.derive(r_pub) and len(key) == 32
    # The hub relays both public keys but has neither private key: its best try differs.
    hub_job, _ = KeyedJob.start()
    assert hub_job.derive(p_pub) != key
    mallory = KeyedJob(X25519PrivateKey.generate(), r_pub)  # claims R's public key
    assert mallory.derive(p_pub) != key


def test_derive_once_and_refuse_bad_peers() -> None:
    job, pub = KeyedJob.start()
    with pytest.raises(PrivacyError, match="reflected"):
        job.derive(pub)
    with pytest.raises(PrivacyError, match="low-order"):
        job.derive(bytes(32))
    job.derive(KeyedJob.start()[1])
    with pytest.raises(PrivacyError, match="second derive"):
        job.derive(KeyedJob.start()[1])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(max_size=20), max_size=50), st.lists(st.binary(max_size=20), max_size=50))
def test_match_equals_membership(r_items: list[bytes], p_items: list[bytes]) -> None:
    key = bytes(range(32))
    got = match(hmac_items(key, r_items), hmac_items(key, p_items))
    assert got == [x in set(p_items) for x in r_items]


def test_hmacs_differ_across_jobs_and_from_items() -> None:
    items = [b"110101199003077777", b"110101199003078888"]
    a, b = hmac_items(bytes(32), items), hmac_items(bytes([1]) * 32, items)
    assert not set(a) & set(b) and not set(a) & set(items)
