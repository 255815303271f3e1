"""Keyed-hash join: a per-job HMAC key agreed over X25519, and HMAC matching.

R and P each make an ephemeral X25519 key, exchange public keys through G and derive
``K = HKDF-SHA256(X25519(r, P_pub), salt=None, info=DOMAIN || sorted public keys)``. G relays
both public keys but holds neither private key, so it cannot derive K. R sends HMAC_K(x), P sends
HMAC_K(y) to G, and G matches them.

Weaker than ECDH-PSI: whoever holds K (R or P) and also sees the other side's HMACs can run a
dictionary over the 18-digit id space. G must therefore never give one side the other's HMACs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.hmac_pads import hmac_sha256_many
from gateway.privacy._errors import PrivacyError
from gateway.privacy._match import match_packed

KEYED_INFO = b"pgw/keyed-hash/x25519-hkdf-sha256/v1"
MAC_BYTES = 32


@dataclass(eq=False)
class KeyedJob:
    """One side's ephemeral key for one job. Derive once, then drop the job."""

    _private: X25519PrivateKey | None
    public_key: bytes

    @classmethod
    def start(cls) -> tuple[KeyedJob, bytes]:
        """A fresh job and the public key to send to the peer (through G)."""
        private = X25519PrivateKey.generate()
        public = private.public_key().public_bytes_raw()
        return cls(private, public), public

    def derive(self, peer_public: bytes) -> bytes:
        """The shared 32-byte HMAC key. One use: the private key is dropped afterwards."""
        if self._private is None:
            raise PrivacyError("keyed-hash job: got a second derive, want one per job")
        if len(peer_public) != 32 or peer_public == self.public_key:
            raise PrivacyError("keyed-hash peer key: got a malformed or reflected public key")
        try:
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(peer_public))
        except ValueError as exc:  # low-order peer key: the shared secret would be zero
            raise PrivacyError("keyed-hash peer key: got a low-order public key") from exc
        self._private = None
        lo, hi = sorted((self.public_key, bytes(peer_public)))
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=KEYED_INFO + lo + hi).derive(shared)


def hmac_packed(key: bytes, items: Sequence[bytes]) -> bytes:
    """HMAC-SHA256 of each item under ``key``, concatenated (also a pool task); the keyed
    states are made once per batch (:mod:`gateway.hmac_pads`)."""
    if len(key) != 32:
        raise PrivacyError(f"HMAC key: got {len(key)} bytes, want 32")
    return b"".join(hmac_sha256_many(key, items))  # type: ignore[arg-type]


def hmac_items(key: bytes, items: Sequence[bytes]) -> list[bytes]:
    """HMAC-SHA256 of each item under ``key``; the keyed state is set up once per batch."""
    packed = hmac_packed(key, items)
    return [packed[i:i + MAC_BYTES] for i in range(0, len(packed), MAC_BYTES)]


def match(requester_macs: Sequence[bytes], partner_macs: Sequence[bytes]) -> list[bool]:
    """G: for each requester HMAC, in order, whether the partner sent the same HMAC."""
    if any(len(m) != MAC_BYTES for m in (*requester_macs, *partner_macs)):
        raise PrivacyError(f"HMACs: got a value that is not {MAC_BYTES} bytes")
    flags: list[bool] = match_packed(b"".join(requester_macs), b"".join(partner_macs)).tolist()
    return flags
