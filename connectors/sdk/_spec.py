"""Signed ReleaseSpecs: the gateway signs each dispatch, the connector verifies it.

The signature (Ed25519) covers the exact serialized ``ReleaseSpec`` bytes, so nothing has to be
re-canonicalised: the connector verifies the bytes first and parses them only afterwards.
A connector trusts several gateway keys at once (rotation) and refuses each request id twice.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.message import DecodeError

from gateway.ed25519 import Verifier, signer_for
from gateway.errors import PermissionDenied, Unauthenticated
from gateway.keys import key_id
from gateway.pb.pgw.v1 import connector_pb2

Clock = Callable[[], float]
#: Tolerated clock skew between gateway and connector.
SKEW_MS = 5_000
#: Longest lifetime a spec may claim (the gateway uses [gateway] spec_ttl_s, 30 s by default).
MAX_TTL_MS = 300_000


def sign_spec(spec: connector_pb2.ReleaseSpec,
              key: Ed25519PrivateKey) -> connector_pb2.SignedReleaseSpec:
    data = spec.SerializeToString(deterministic=True)
    signer = signer_for(key)
    return connector_pb2.SignedReleaseSpec(spec=data, signature=signer.sign(data),
                                           key_id=signer.key_id)


class SpecVerifier:
    """Checks signature, freshness and replay of incoming specs for one connector."""

    def __init__(self, trusted: Iterable[Ed25519PublicKey], *, clock: Clock = time.time) -> None:
        self._keys = {key_id(k): Verifier(k) for k in trusted}
        if not self._keys:
            raise ValueError("a connector needs at least one trusted gateway key")
        self._clock = clock
        # Specs issued before start-up are refused, so replays cannot slip through a restart
        # that emptied the in-memory cache.
        self._started_ms = int(clock() * 1000) - SKEW_MS
        self._seen: set[str] = set()              # request ids not yet expired
        self._expiry: deque[tuple[int, str]] = deque()  # (expiry ms, request id), oldest first

    def verify(self, signed: connector_pb2.SignedReleaseSpec) -> connector_pb2.ReleaseSpec:
        key = self._keys.get(signed.key_id)
        if key is None:
            raise Unauthenticated("spec signed by an unknown key", reason="unknown spec key id")
        if not key.verify(signed.signature, signed.spec):
            raise Unauthenticated("bad spec signature", reason="spec signature invalid")
        spec = connector_pb2.ReleaseSpec()
        try:
            spec.ParseFromString(signed.spec)
        except DecodeError:
            raise Unauthenticated("spec unreadable", reason="spec bytes do not parse") from None
        now_ms = int(self._clock() * 1000)
        if spec.expires_at_ms <= now_ms:
            raise PermissionDenied("release spec expired", reason="spec expired")
        if spec.issued_at_ms > now_ms + SKEW_MS or spec.issued_at_ms < self._started_ms:
            raise PermissionDenied("release spec not fresh", reason="spec issued outside window")
        if spec.expires_at_ms - spec.issued_at_ms > MAX_TTL_MS:
            raise PermissionDenied("release spec lives too long",
                                   reason=f"spec lifetime over {MAX_TTL_MS} ms")
        if not spec.request_id:
            raise PermissionDenied("release spec has no request id", reason="spec without id")
        self._prune(now_ms)
        if spec.request_id in self._seen:
            raise PermissionDenied("release spec replayed", reason="spec request id replayed")
        self._seen.add(spec.request_id)
        self._expiry.append((spec.expires_at_ms, spec.request_id))
        return spec

    def _prune(self, now_ms: int) -> None:
        """Forget ids whose specs have expired (an expired spec is refused anyway): amortised
        O(1) per call. Lifetimes are capped, so the queue is close to expiry order."""
        while self._expiry and self._expiry[0][0] <= now_ms:
            self._seen.discard(self._expiry.popleft()[1])
