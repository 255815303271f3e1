"""Raw TenSEAL: fixed, reviewed parameters, key material and its (de)serialisation.

Nothing outside ``gateway.privacy`` imports TenSEAL. The parameters are fixed here and checked
on every load, so a requester cannot hand connectors or the gateway a weak context:

* CKKS: poly modulus 8192, coefficient modulus [60, 40, 40, 60] bits, global scale 2^40.
  One multiplicative level is used by the recipes (plaintext weights, or the match mask of an
  intersection-sum), so values stay exact to about 1e-6 relative and may reach about 2^59.
* BFV: poly modulus 8192, the default 128-bit-secure coefficient modulus, plain modulus 1032193
  (a prime = 1 mod 16384, so it supports batching): counts are exact modulo 1032193.

Public material is the context serialised *without* secret, Galois or relinearisation keys.
The sum material adds a minimal Galois key set: left rotations by 1, 2, 4, ..., 2048 (12 keys,
against 24 in TenSEAL's default set), enough for a rotate-and-sum over all 4096 slots.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from typing import Any

import tenseal as ts

from gateway.privacy._errors import PrivacyError

POLY_MODULUS = 8192
SLOTS = POLY_MODULUS // 2
CKKS_COEFF_BITS = (60, 40, 40, 60)
CKKS_SCALE = 2.0**40
BFV_PLAIN_MODULUS = 1032193
#: Rotation steps of the sum material: 2^0 .. 2^11, a full rotate-and-sum over 4096 slots.
SUM_STEPS = tuple(1 << i for i in range(SLOTS.bit_length() - 1))


class Scheme(Enum):
    CKKS = "ckks"
    BFV = "bfv"


def _new_context(scheme: Scheme) -> ts.Context:
    if scheme is Scheme.CKKS:
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=POLY_MODULUS,
                         coeff_mod_bit_sizes=list(CKKS_COEFF_BITS))
        ctx.global_scale = CKKS_SCALE
    else:
        ctx = ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=POLY_MODULUS,
                         plain_modulus=BFV_PLAIN_MODULUS)
    return ctx


def _fingerprint(ctx: ts.Context) -> tuple[object, ...]:
    """What identifies the encryption parameters (scheme, degree, moduli, plain modulus)."""
    seal = ctx.data.seal_context()
    key = seal.key_context_data()
    first = seal.first_context_data()
    return (str(key.parms().scheme()), key.parms().poly_modulus_degree(),
            key.total_coeff_modulus(), key.total_coeff_modulus_bit_count(),
            first.total_coeff_modulus_bit_count(), key.chain_index(),
            key.plain_upper_half_threshold())


_EXPECTED = {scheme: _fingerprint(_new_context(scheme)) for scheme in Scheme}


def _galois_elements() -> list[int]:
    # SEAL: a left rotation by `step` of the 4096 slots is the automorphism x -> x^(3^step mod 2N).
    return [pow(3, step, 2 * POLY_MODULUS) for step in SUM_STEPS]


def _install_sum_keys(ctx: ts.Context) -> None:
    """Give a secret-key context exactly the SUM_STEPS Galois keys, nothing more.

    TenSEAL only generates its default set (24 keys, 33.7 MiB serialised), so the minimal set is
    made with TenSEAL's own bound SEAL KeyGenerator and loaded over the default one in place.
    """
    keygen = ts._ts_cpp.KeyGenerator(ctx.data.seal_context(), ctx.data.secret_key())
    keys = ts._ts_cpp.GaloisKeys()
    keygen.create_galois_keys(_galois_elements(), keys)
    ctx.data.generate_galois_keys()
    with tempfile.TemporaryDirectory(prefix="pgw-he-") as tmp:
        path = os.path.join(tmp, "galois")
        keys.save(path)
        ctx.data.galois_keys().load(ctx.data.seal_context(), path)


def _has_only_sum_keys(ctx: ts.Context) -> bool:
    keys = ctx.data.galois_keys()
    return keys.size() == len(SUM_STEPS) and all(keys.has_key(e) for e in _galois_elements())


@dataclass(frozen=True, eq=False)
class HeKeys:
    """The requester's HE key pair. Its secret never leaves the requester: not picklable."""

    scheme: Scheme
    _ctx: Any

    @classmethod
    def ckks(cls) -> HeKeys:
        """Fresh CKKS keys (reals) with the fixed parameters."""
        return cls(Scheme.CKKS, _new_context(Scheme.CKKS))

    @classmethod
    def bfv(cls) -> HeKeys:
        """Fresh BFV keys (exact integers modulo 1032193) with the fixed parameters."""
        return cls(Scheme.BFV, _new_context(Scheme.BFV))

    @classmethod
    def from_secret_material(cls, data: bytes) -> HeKeys:
        ctx = _deserialize(data)
        if not ctx.is_private():
            raise PrivacyError("HE secret material: got a context without a secret key")
        return cls(_scheme_of(ctx), ctx)

    def public_material(self) -> bytes:
        """Parameters and public key only: for connectors (encrypt) and the gateway (compute)."""
        return bytes(self._ctx.serialize(save_public_key=True, save_secret_key=False,
                                         save_galois_keys=False, save_relin_keys=False))

    def galois_for_sum(self) -> bytes:
        """Public material plus the 12 Galois keys of a slot sum (CKKS only; about 16 MiB)."""
        if self.scheme is not Scheme.CKKS:
            raise PrivacyError(f"sum material: got scheme {self.scheme.value}, want ckks")
        ctx = _deserialize(self.secret_material())
        _install_sum_keys(ctx)
        return bytes(ctx.serialize(save_public_key=True, save_secret_key=False,
                                   save_galois_keys=True, save_relin_keys=False))

    def secret_material(self) -> bytes:
        """Everything, secret key included: store it encrypted at rest, never send it."""
        return bytes(self._ctx.serialize(save_public_key=True, save_secret_key=True,
                                         save_galois_keys=False, save_relin_keys=False))

    def __reduce__(self) -> Any:
        raise TypeError("HeKeys holds a secret key and is not picklable")


@dataclass(frozen=True, eq=False)
class PublicContext:
    """A requester's public HE material as loaded by a connector or the gateway.

    Holds no secret key (``load`` refuses one), so nothing it touches can be decrypted here.
    ``can_sum`` is true when it carries the minimal Galois keys for :func:`sum_slots`.
    Pickles as its bytes, so it can be passed to an :class:`HePool`.
    """

    scheme: Scheme
    material: bytes
    can_sum: bool
    _ctx: Any

    @classmethod
    def load(cls, data: bytes) -> PublicContext:
        """Check and load public material; refuses secret, relinearisation or extra Galois keys."""
        ctx = _deserialize(data)
        if ctx.is_private() or ctx.data.has_secret_key():
            raise PrivacyError("HE public material: got a secret key, want public material only")
        if not ctx.data.has_public_key():
            raise PrivacyError("HE public material: got no public key")
        if ctx.has_relin_keys():
            raise PrivacyError("HE public material: got relinearisation keys, want none")
        scheme = _scheme_of(ctx)
        can_sum = ctx.has_galois_keys()
        if can_sum and (scheme is not Scheme.CKKS or not _has_only_sum_keys(ctx)):
            raise PrivacyError("HE public material: got Galois keys other than the sum set")
        return cls(scheme, bytes(data), can_sum, ctx)

    def __reduce__(self) -> Any:
        return (_load_cached, (self.material,))


_CACHE: OrderedDict[bytes, PublicContext] = OrderedDict()


def _load_cached(material: bytes) -> PublicContext:
    """Unpickle (in pool workers): reuse a recently loaded context with the same bytes."""
    digest = hashlib.sha256(material).digest()
    if (hit := _CACHE.get(digest)) is not None:
        _CACHE.move_to_end(digest)
        return hit
    ctx = PublicContext.load(material)
    _CACHE[digest] = ctx
    while len(_CACHE) > 4:
        _CACHE.popitem(last=False)
    return ctx


def _deserialize(data: bytes) -> ts.Context:
    if not isinstance(data, bytes | bytearray | memoryview) or not data:
        raise PrivacyError("HE material: got no bytes")
    try:
        return ts.context_from(bytes(data))
    except Exception as exc:  # TenSEAL raises bare ValueError/RuntimeError
        raise PrivacyError("HE material: got bytes that are not a TenSEAL context") from exc


def _scheme_of(ctx: ts.Context) -> Scheme:
    got = _fingerprint(ctx)
    for scheme, want in _EXPECTED.items():
        if got == want:
            if scheme is Scheme.CKKS and ctx.global_scale != CKKS_SCALE:
                raise PrivacyError(f"HE material: got scale {ctx.global_scale}, want 2^40")
            return scheme
    raise PrivacyError("HE material: got parameters other than the fixed CKKS or BFV recipe")
