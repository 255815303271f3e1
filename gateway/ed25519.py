"""Ed25519 signing and verification on libsodium (PyNaCl), for the hot paths.

Keys are loaded and stored as ``cryptography`` objects (PEM files, JWKS, notes); the per-call
work (a signed ReleaseSpec per partner per query, a checkpoint per audit batch) runs on
libsodium, which signs about 1.5x and verifies about 1.8x faster than ``cryptography``'s
OpenSSL Ed25519 on this machine class (``python bench/signatures.py``; docs/benchmarks.md).
Ed25519 is deterministic (RFC 8032), so both produce the same signature bytes for the same key
and message, and each verifies the other's.

libsodium's verification is the stricter one: it also refuses non-canonical encodings and
small-order public keys, which no honest signer produces.
"""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError

from gateway.keys import key_id

__all__ = ["SIGNATURE_BYTES", "Signer", "Verifier", "signer_for"]

SIGNATURE_BYTES = 64


class Signer:
    """A private key ready to sign: the libsodium secret key and the key id, derived once."""

    __slots__ = ("_secret", "key_id", "public_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        _public, self._secret = crypto_sign_seed_keypair(key.private_bytes_raw())
        self.public_key = key.public_key()
        self.key_id = key_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """The raw 64-byte signature of ``message``."""
        return crypto_sign(message, self._secret)[:SIGNATURE_BYTES]

    def __repr__(self) -> str:  # never the secret
        return f"Signer(key_id={self.key_id!r})"


class Verifier:
    """A public key ready to verify."""

    __slots__ = ("_public",)

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._public = key.public_bytes_raw()

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when ``signature`` is a valid signature of exactly ``message``."""
        if len(signature) != SIGNATURE_BYTES:
            return False
        try:
            return crypto_sign_open(signature + message, self._public) == message
        except BadSignatureError:
            return False


_signers: dict[int, tuple[Ed25519PrivateKey, Signer]] = {}
_lock = threading.Lock()
_MAX_SIGNERS = 64


def signer_for(key: Ed25519PrivateKey) -> Signer:
    """The :class:`Signer` of ``key``, derived once per key object (the key is held, so its id
    cannot be reused while it is cached)."""
    cached = _signers.get(id(key))
    if cached is not None and cached[0] is key:
        return cached[1]
    signer = Signer(key)
    with _lock:
        if len(_signers) >= _MAX_SIGNERS:
            _signers.clear()
        _signers[id(key)] = (key, signer)
    return signer
