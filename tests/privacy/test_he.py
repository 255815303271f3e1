"""HE recipes: CKKS within 1e-2 of numpy, BFV exact, and what the public material holds."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import tenseal as ts
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.privacy import (
    SLOTS,
    BelowMinimum,
    HeKeys,
    HePool,
    PrivacyError,
    PublicContext,
    add,
    decrypt_counts,
    decrypt_vector,
    encrypt_column,
    encrypt_counts,
    sum_slots,
    weighted_sum,
)

TOL = 1e-2
FAST = settings(max_examples=8, deadline=None)
reals = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


# CKKS error is relative (about 1e-7 of |w|·|x| at scale 2^40): with inputs up to 1e4 the
# 1e-2 absolute bound holds for |weights| <= 1, the range of an approved linear model
# (hpf-loan-risk weights are 1e-4 .. 0.2); larger weights need a larger scale.
@FAST
@given(st.integers(1, 3).flatmap(lambda k: st.tuples(
    st.lists(st.lists(reals, min_size=k, max_size=k), min_size=1, max_size=2),  # rows ignored
    st.integers(1, 40), st.lists(st.floats(-1, 1), min_size=k, max_size=k), st.floats(-100, 100))))
def test_weighted_sum_matches_numpy(ckks_keys: HeKeys, public_ctx: PublicContext,
                                    case: tuple[object, int, list[float], float]) -> None:
    _, n, weights, bias = case
    rng = np.random.default_rng(n)
    cols = rng.uniform(-1e4, 1e4, size=(len(weights), n))
    enc = [encrypt_column(public_ctx, list(c), chunk=16) for c in cols]
    got = decrypt_vector(ckks_keys, weighted_sum(public_ctx, enc, weights, bias, count=n), n)
    want = np.asarray(weights) @ cols + bias
    assert np.abs(np.asarray(got) - want).max() < TOL


@FAST
@given(st.lists(reals, min_size=1, max_size=300))
def test_encrypt_decrypt_round_trip(ckks_keys: HeKeys, public_ctx: PublicContext,
                                    values: list[float]) -> None:
    got = decrypt_vector(ckks_keys, encrypt_column(public_ctx, values, chunk=128), len(values))
    assert np.abs(np.asarray(got) - values).max() < TOL


@pytest.mark.parametrize("n", [1, 4096, 5000])
def test_sum_slots_every_slot_holds_the_total(ckks_keys: HeKeys, public_ctx: PublicContext,
                                              sum_ctx: PublicContext, n: int,
                                              all_slots: Callable[..., list[float]]) -> None:
    values = np.random.default_rng(n).uniform(0, 1e4, n)
    total = sum_slots(sum_ctx, encrypt_column(public_ctx, list(values)), count=n, min_count=1)
    assert abs(decrypt_vector(ckks_keys, [total], 1)[0] - values.sum()) < TOL
    raw = np.asarray(all_slots(ckks_keys, total))  # what a curious requester could read
    assert raw.shape == (SLOTS,) and np.abs(raw - values.sum()).max() < TOL


def test_sum_of_scores_adds_bias_once_per_person(ckks_keys: HeKeys, public_ctx: PublicContext,
                                                 sum_ctx: PublicContext) -> None:
    n, rng = 5000, np.random.default_rng(7)
    a, b = rng.uniform(-100, 100, n), rng.uniform(0, 10, n)
    scores = weighted_sum(public_ctx, [encrypt_column(public_ctx, list(a)),
                                       encrypt_column(public_ctx, list(b))], [0.5, -2.0], 3.0,
                          count=n)
    total = decrypt_vector(ckks_keys, [sum_slots(sum_ctx, scores, count=n, min_count=10)], 1)[0]
    assert abs(total - (0.5 * a - 2.0 * b + 3.0).sum()) < TOL


def test_sum_refuses_small_cohorts_and_plain_material(public_ctx: PublicContext,
                                                      sum_ctx: PublicContext) -> None:
    column = encrypt_column(public_ctx, [1.0, 2.0])
    with pytest.raises(BelowMinimum):
        sum_slots(sum_ctx, column, count=2, min_count=5)
    with pytest.raises(PrivacyError, match="sum Galois keys"):
        sum_slots(public_ctx, column, count=2, min_count=1)
    with pytest.raises(PrivacyError, match="slots"):  # short chunks would leave partial sums
        sum_slots(sum_ctx, encrypt_column(public_ctx, [1.0, 2.0], chunk=2), count=2, min_count=1)


@FAST
@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)), min_size=1, max_size=200))
def test_bfv_counts_exact(bfv_keys: HeKeys, bfv_ctx: PublicContext,
                          pairs: list[tuple[int, int]]) -> None:
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    got = decrypt_counts(bfv_keys, add(bfv_ctx, encrypt_counts(bfv_ctx, a, chunk=64),
                                       encrypt_counts(bfv_ctx, b, chunk=64)), len(pairs))
    assert got == [x + y for x, y in pairs]


def test_gateway_context_cannot_decrypt(ckks_keys: HeKeys, public_ctx: PublicContext,
                                       sum_ctx: PublicContext) -> None:
    data = encrypt_column(public_ctx, [42.0])[0]
    for ctx in (public_ctx, sum_ctx):
        assert not ctx._ctx.is_private() and not ctx._ctx.has_secret_key()
        with pytest.raises(ValueError, match="secret"):
            ts.ckks_vector_from(ctx._ctx, data).decrypt()
        with pytest.raises(PrivacyError, match="scheme|secret"):
            decrypt_vector(ctx, [data], 1)  # type: ignore[arg-type]


def test_public_material_holds_no_secret_galois_or_relin_keys(ckks_keys: HeKeys,
                                                              bfv_keys: HeKeys) -> None:
    for keys in (ckks_keys, bfv_keys):
        material = keys.public_material()
        ctx = ts.context_from(material)
        assert not ctx.has_secret_key() and not ctx.has_galois_keys()
        assert not ctx.has_relin_keys() and ctx.data.has_public_key()
        assert 400_000 < len(material) < 600_000  # DESIGN.md: about 0.47 MB for CKKS


def test_sum_material_is_the_minimal_galois_set(sum_material: bytes) -> None:
    ctx = ts.context_from(sum_material)
    assert not ctx.has_secret_key() and not ctx.has_relin_keys()
    assert ctx.data.galois_keys().size() == 12
    assert len(sum_material) < 18_000_000  # default galois set: 33.9 MB


def test_load_refuses_secret_relin_and_foreign_parameters(ckks_keys: HeKeys) -> None:
    with pytest.raises(PrivacyError, match="secret key"):
        PublicContext.load(ckks_keys.secret_material())
    with pytest.raises(PrivacyError, match="relinearisation"):
        PublicContext.load(ckks_keys._ctx.serialize(save_secret_key=False, save_galois_keys=False,
                                                    save_relin_keys=True))
    weak = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=4096,
                      coeff_mod_bit_sizes=[40, 20, 40])
    weak.global_scale = 2**20
    with pytest.raises(PrivacyError, match="parameters"):
        PublicContext.load(weak.serialize(save_secret_key=False, save_galois_keys=False,
                                          save_relin_keys=False))
    with pytest.raises(PrivacyError, match="not a TenSEAL context"):
        PublicContext.load(b"\x00garbage")


def test_default_galois_keys_refused(ckks_keys: HeKeys) -> None:
    ctx = ts.context_from(ckks_keys.secret_material())
    ctx.generate_galois_keys()
    with pytest.raises(PrivacyError, match="Galois"):
        PublicContext.load(ctx.serialize(save_secret_key=False, save_galois_keys=True,
                                         save_relin_keys=False))


def test_ciphertext_size_per_4096_values(public_ctx: PublicContext) -> None:
    (data,) = encrypt_column(public_ctx, [1.0] * SLOTS)
    assert 300_000 < len(data) < 360_000  # DESIGN.md: about 324 KiB


def test_pool_runs_recipes_and_refuses_others(ckks_keys: HeKeys, public_ctx: PublicContext) -> None:
    with HePool(workers=1) as pool:
        chunks = pool.submit(encrypt_column, public_ctx, [1.0, 2.0, 3.0]).result()
        scored = pool.submit(weighted_sum, public_ctx, [chunks], [2.0], 1.0, count=3).result()
        with pytest.raises(PrivacyError, match="recipe"):
            pool.submit(decrypt_vector, ckks_keys, chunks, 3)
    assert np.allclose(decrypt_vector(ckks_keys, scored, 3), [3.0, 5.0, 7.0], atol=TOL)


def test_secret_keys_do_not_pickle(ckks_keys: HeKeys) -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(ckks_keys)


def test_scores_fill_exactly_the_people_slots(ckks_keys: HeKeys, public_ctx: PublicContext,
                                              all_slots: Callable[..., list[float]]) -> None:
    """A full chunk gets the bias in every slot (as a scalar); the last, partial one in its
    people's slots only, so its padding stays 0 for a later sum."""
    n, rng = SLOTS + 3, np.random.default_rng(11)
    x = rng.uniform(-100, 100, n)
    full, part = weighted_sum(public_ctx, [encrypt_column(public_ctx, list(x))], [0.25], 7.0,
                              count=n)
    np.testing.assert_allclose(all_slots(ckks_keys, full), 0.25 * x[:SLOTS] + 7.0, atol=TOL)
    raw = np.asarray(all_slots(ckks_keys, part))
    np.testing.assert_allclose(raw[:3], 0.25 * x[SLOTS:] + 7.0, atol=TOL)
    assert np.abs(raw[3:]).max() < TOL
