"""ECDH-PSI: results equal the true set operations; the hub sees no item or its hash."""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.privacy import (
    BelowMinimum,
    HeKeys,
    PrivacyError,
    PsiKey,
    PsiPool,
    PublicContext,
    decrypt_vector,
    finish_cardinality,
    finish_membership,
    hash_to_point,
    pjc_reblind,
    pjc_respond,
    pjc_total,
    prepare,
    respond,
    respond_cardinality,
    shuffle,
)

FAST = settings(max_examples=15, deadline=None)
ids = st.binary(min_size=1, max_size=20)


def sets(n: int, overlap: float, seed: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(seed)
    shared = int(n * overlap)
    r = [b"%018d" % rng.randrange(10**18) for _ in range(n)]
    p = r[:shared] + [b"%018d" % rng.randrange(10**18) for _ in range(n - shared)]
    return r, shuffle(p, rng)


def test_blinding_commutes_for_random_u_including_twist_points() -> None:
    a, b = PsiKey.generate(), PsiKey.generate()
    points = [os.urandom(32) for _ in range(500)]  # about half lie on the twist
    assert a.blind(b.blind(points)) == b.blind(a.blind(points))


def test_low_order_and_malformed_points_refused() -> None:
    key = PsiKey.generate()
    with pytest.raises(PrivacyError, match="low-order"):
        key.blind([bytes(32)])
    with pytest.raises(PrivacyError, match="32 bytes"):
        key.blind([b"short"])


@pytest.mark.parametrize("overlap", [0.0, 0.5, 1.0])
def test_membership_and_cardinality(overlap: float) -> None:
    r_items, p_items = sets(300, overlap, seed=int(overlap * 10))
    state, blinded = prepare(r_items)
    double, theirs = respond(blinded, p_items)
    assert finish_membership(state, double, theirs) == [x in set(p_items) for x in r_items]
    state, blinded = prepare(r_items)
    double, theirs = respond_cardinality(blinded, p_items)
    assert finish_cardinality(state, double, theirs) == len(set(r_items) & set(p_items))


@FAST
@given(st.lists(ids, max_size=40), st.lists(ids, max_size=40))
def test_psi_equals_set_intersection(r_items: list[bytes], p_items: list[bytes]) -> None:
    state, blinded = prepare(r_items)
    double, theirs = respond(blinded, p_items)
    assert finish_membership(state, double, theirs) == [x in set(p_items) for x in r_items]
    state, blinded = prepare(r_items)
    assert finish_cardinality(state, *respond_cardinality(blinded, p_items)) == len(
        set(r_items) & set(p_items))


@pytest.mark.parametrize("overlap", [0.0, 0.5, 1.0])
def test_cardinality_agrees_with_openmined_psi(overlap: float) -> None:
    psi = pytest.importorskip("private_set_intersection.python")
    r_items, p_items = sets(500, overlap, seed=3)
    client, server = psi.client.CreateWithNewKey(False), psi.server.CreateWithNewKey(False)
    setup = server.CreateSetupMessage(1e-9, len(r_items), [x.decode() for x in p_items],
                                      psi.DataStructure.RAW)
    response = server.ProcessRequest(client.CreateRequest([x.decode() for x in r_items]))
    state, blinded = prepare(r_items)
    ours = finish_cardinality(state, *respond_cardinality(blinded, p_items))
    assert ours == client.GetIntersectionSize(setup, response) == int(500 * overlap)


def test_hub_sees_no_item_and_no_plain_hash() -> None:
    r_items, p_items = sets(200, 0.5, seed=9)
    state, blinded = prepare(r_items)
    double, theirs = respond(blinded, p_items)
    seen = set(blinded) | set(double) | set(theirs)
    forbidden = set(r_items) | set(p_items)
    forbidden |= {hashlib.sha256(x).digest() for x in forbidden}
    forbidden |= {hash_to_point(x) for x in r_items + p_items}
    assert not seen & forbidden
    assert not any(x in s for s in seen for x in r_items[:20])


def test_pool_blinding_keeps_order_and_reports_progress() -> None:
    key, points = PsiKey.generate(), [hash_to_point(b"%d" % i) for i in range(3000)]
    reports: list[tuple[int, int]] = []
    with PsiPool(workers=2) as pool:
        got = key.blind_many(points, pool=pool, chunk=500,
                             progress=lambda done, total: reports.append((done, total)))
    assert got == key.blind(points)
    assert len(reports) == 6 and reports[-1] == (3000, 3000)


@pytest.fixture(scope="module")
def pjc_parts(ckks_keys: HeKeys, public_ctx: PublicContext,
              sum_ctx: PublicContext) -> tuple[HeKeys, PublicContext, PublicContext]:
    return ckks_keys, public_ctx, sum_ctx


@pytest.mark.parametrize("overlap", [0.0, 0.5, 1.0])
def test_intersection_sum(pjc_parts: tuple[HeKeys, PublicContext, PublicContext],
                          overlap: float) -> None:
    keys, public_ctx, sum_ctx = pjc_parts
    r_items, p_items = sets(400, overlap, seed=5)
    values = dict(zip(p_items, np.random.default_rng(1).uniform(0, 1e4, len(p_items)),
                      strict=True))
    state, blinded = prepare(r_items)
    reply = pjc_respond(blinded, list(values.items()), public_ctx)
    reblinded = pjc_reblind(state, reply.points)  # R sees only points, never reply.values
    want_count = len(set(r_items) & set(p_items))
    if want_count < 10:
        with pytest.raises(BelowMinimum):
            pjc_total(sum_ctx, reply, reblinded, min_count=10)
        return
    total, count = pjc_total(sum_ctx, reply, reblinded, min_count=10)
    assert count == want_count
    want = sum(v for k, v in values.items() if k in set(r_items))
    # The 0/1 match mask costs a CKKS rescale: about 1e-7 relative error on the total.
    assert abs(decrypt_vector(keys, [total], 1)[0] - want) < 1e-2 + 1e-6 * abs(want)


def test_intersection_sum_refuses_repeated_points(
        pjc_parts: tuple[HeKeys, PublicContext, PublicContext]) -> None:
    _, public_ctx, sum_ctx = pjc_parts
    r_items, p_items = sets(20, 1.0, seed=2)
    state, blinded = prepare(r_items)
    reply = pjc_respond(blinded, [(x, 1.0) for x in p_items], public_ctx)
    reblinded = pjc_reblind(state, reply.points)
    with pytest.raises(PrivacyError, match="repeated"):
        pjc_total(sum_ctx, reply, [reblinded[0]] * len(reblinded), min_count=1)
