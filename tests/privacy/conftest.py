"""Fixtures for the privacy tests: HE keys made once per session, and a raw decrypt.

_all_slots: decrypt *every* slot of a CKKS ciphertext with raw SEAL.

TenSEAL's ``decrypt`` returns only a vector's declared size; a curious requester can read all
4096 slots, so tests that claim "no per-person slot leaks" must look at all of them.
"""

from __future__ import annotations

import os
import tempfile

import pytest
import tenseal as ts
import tenseal.sealapi as seal

from gateway.privacy import HeKeys, PublicContext


def _all_slots(keys: HeKeys, data: bytes) -> list[float]:
    ctx = keys._ctx
    vec = ts.ckks_vector_from(ctx, data)
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(8192)
    parms.set_coeff_modulus(seal.CoeffModulus.Create(8192, [60, 40, 40, 60]))
    context = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
    with tempfile.TemporaryDirectory() as tmp:
        sk_path, ct_path = os.path.join(tmp, "sk"), os.path.join(tmp, "ct")
        ctx.data.secret_key().save(sk_path)
        vec.data.ciphertext()[0].save(ct_path)
        secret = seal.SecretKey()
        secret.load(context, sk_path)
        cipher = seal.Ciphertext()
        cipher.load(context, ct_path)
    plain = seal.Plaintext()
    seal.Decryptor(context, secret).decrypt(cipher, plain)
    return list(seal.CKKSEncoder(context).decode_double(plain))


@pytest.fixture(scope="session")
def all_slots():  # type: ignore[no-untyped-def]
    return _all_slots


@pytest.fixture(scope="session")
def ckks_keys() -> HeKeys:
    return HeKeys.ckks()


@pytest.fixture(scope="session")
def bfv_keys() -> HeKeys:
    return HeKeys.bfv()


@pytest.fixture(scope="session")
def public_ctx(ckks_keys: HeKeys) -> PublicContext:
    return PublicContext.load(ckks_keys.public_material())


@pytest.fixture(scope="session")
def sum_material(ckks_keys: HeKeys) -> bytes:
    return ckks_keys.galois_for_sum()


@pytest.fixture(scope="session")
def sum_ctx(sum_material: bytes) -> PublicContext:
    return PublicContext.load(sum_material)


@pytest.fixture(scope="session")
def bfv_ctx(bfv_keys: HeKeys) -> PublicContext:
    return PublicContext.load(bfv_keys.public_material())
