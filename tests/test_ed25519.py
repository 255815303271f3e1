"""The libsodium Ed25519 hot path agrees with cryptography's and refuses what it must."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.ed25519 import Signer, Verifier, signer_for
from gateway.keys import key_id


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_signatures_are_byte_identical_to_openssl(key: Ed25519PrivateKey) -> None:
    signer = Signer(key)
    for size in (0, 1, 400, 5000):
        message = os.urandom(size)
        assert signer.sign(message) == key.sign(message)


def test_each_library_verifies_the_other(key: Ed25519PrivateKey) -> None:
    message = os.urandom(300)
    key.public_key().verify(Signer(key).sign(message), message)  # raises if invalid
    assert Verifier(key.public_key()).verify(key.sign(message), message)


@pytest.mark.parametrize("attack", ["flipped message bit", "flipped signature bit",
                                    "other key", "truncated signature", "long signature",
                                    "signature with message appended", "empty signature"])
def test_forgeries_are_refused(key: Ed25519PrivateKey, attack: str) -> None:
    message = b"release spec bytes " + os.urandom(64)
    signature = Signer(key).sign(message)
    public = key.public_key()
    if attack == "flipped message bit":
        message = bytes([message[0] ^ 1]) + message[1:]
    elif attack == "flipped signature bit":
        signature = signature[:10] + bytes([signature[10] ^ 0x80]) + signature[11:]
    elif attack == "other key":
        public = Ed25519PrivateKey.generate().public_key()
    elif attack == "truncated signature":
        signature = signature[:63]
    elif attack == "long signature":
        signature = signature + b"\x00"
    elif attack == "signature with message appended":
        # crypto_sign_open takes signature||message: a caller must not be able to shift bytes
        signature, message = signature + message[:8], message[8:]
    else:
        signature = b""
    assert Verifier(public).verify(signature, message) is False
    if len(signature) == 64:  # OpenSSL agrees
        with pytest.raises(InvalidSignature):
            public.verify(signature, message)


def test_signer_is_derived_once_per_key_and_hides_its_secret(key: Ed25519PrivateKey) -> None:
    first = signer_for(key)
    assert signer_for(key) is first
    assert signer_for(Ed25519PrivateKey.generate()) is not first
    assert first.key_id == key_id(key.public_key())
    seed = key.private_bytes_raw()
    assert seed.hex() not in repr(first) and "Signer(key_id=" in repr(first)
