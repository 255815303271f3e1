"""SpecVerifier unit tests with an injected clock: replay window, pruning, lifetime cap."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.sdk._spec import MAX_TTL_MS, SpecVerifier, sign_spec
from gateway.errors import PermissionDenied
from gateway.pb.pgw.v1 import connector_pb2


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def spec(clock: Clock, rid: str, ttl_ms: int = 30_000) -> connector_pb2.ReleaseSpec:
    now = int(clock.now * 1000)
    return connector_pb2.ReleaseSpec(request_id=rid, issued_at_ms=now, expires_at_ms=now + ttl_ms)


@pytest.fixture
def setup() -> tuple[Ed25519PrivateKey, Clock, SpecVerifier]:
    key, clock = Ed25519PrivateKey.generate(), Clock()
    return key, clock, SpecVerifier([key.public_key()], clock=clock)


def test_a_replay_is_refused_while_the_spec_lives(setup) -> None:  # type: ignore[no-untyped-def]
    key, clock, verifier = setup
    signed = sign_spec(spec(clock, "r1"), key)
    verifier.verify(signed)
    clock.now += 29
    with pytest.raises(PermissionDenied, match="replayed"):
        verifier.verify(signed)
    clock.now += 2   # now expired: refused as expired, never released twice
    with pytest.raises(PermissionDenied, match="expired"):
        verifier.verify(signed)


def test_expired_ids_are_forgotten_as_time_passes(setup) -> None:  # type: ignore[no-untyped-def]
    key, clock, verifier = setup
    for i in range(5000):
        verifier.verify(sign_spec(spec(clock, f"a{i}"), key))
    assert len(verifier._seen) == 5000
    clock.now += 31
    verifier.verify(sign_spec(spec(clock, "b"), key))
    assert verifier._seen == {"b"}   # the 5000 expired ids were dropped in one pass


def test_a_spec_claiming_a_long_life_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    key, clock, verifier = setup
    with pytest.raises(PermissionDenied, match="lives too long"):
        verifier.verify(sign_spec(spec(clock, "long", ttl_ms=MAX_TTL_MS + 1), key))
