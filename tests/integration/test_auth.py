"""Bearer tokens at the real server: every hostile token is UNAUTHENTICATED, generically.

Hostile tokens are crafted by hand (base64url segments, raw signatures) where pyjwt would
refuse to make them. The outward message never says what was wrong with the token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from grpc_status import rpc_status
from pgw_it_harness import HPF, RawData, Stack

from gateway.auth import DevIssuer
from gateway.auth._jwks import b64url_decode, b64url_encode
from gateway.pb.pgw.v1 import common_pb2, gateway_pb2

GENERIC = "authentication failed: present a valid bearer token"
# words a leaked reason would contain
REASON_WORDS = ("expired", "audience", "issuer", "kid", "signature", "alg", "nbf", "future",
                "malformed", "scheme", "HS256", "none")


def segment(obj: Any) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode())


def craft(header: dict[str, Any], payload: dict[str, Any],
          sign: Callable[[bytes], bytes] | None = None) -> str:
    """A compact JWS built by hand; ``sign`` gets the signing input (None: empty signature)."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64url_encode(signature)}"


def claims(stack: Stack, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": stack.cfg.issuer, "aud": stack.cfg.audience, "sub": "officer-7", "org": HPF,
            "roles": ["requester"], "iat": now, "nbf": now, "exp": now + 600,
            "jti": str(uuid.uuid4())}
    return base | overrides


def ed_kid(stack: Stack) -> str:
    return stack.issuer.signing_kid("EdDSA")


def ed_sign(stack: Stack) -> Callable[[bytes], bytes]:
    key = stack.issuer.private_key(ed_kid(stack))
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.sign


def request(raw: RawData) -> gateway_pb2.QueryRequest:
    return gateway_pb2.QueryRequest(
        purpose="loan-eligibility", subjects=raw.in_all[:1],
        selections=[common_pb2.Selection(partner="education", fields=["highest_degree"])])


def call(stack: Stack, raw: RawData, md: list[tuple[str, str]]) -> grpc.RpcError | None:
    try:
        stack.stub.Query(request(raw), metadata=md, timeout=10)
    except grpc.RpcError as err:
        return err
    return None


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def assert_refused(err: grpc.RpcError | None) -> None:
    assert err is not None, "the token was accepted"
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (err.code(), err.details())
    assert err.details() == GENERIC
    for word in REASON_WORDS:
        assert word not in err.details()
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is None or (list(status.details) == [] and status.message == GENERIC)


def test_a_valid_token_is_accepted(stack: Stack, raw: RawData) -> None:
    assert call(stack, raw, bearer(stack.token())) is None
    es = stack.issuer.issue(HPF, ["requester"], alg="ES256")
    assert call(stack, raw, bearer(es)) is None
    hand = craft({"alg": "EdDSA", "kid": ed_kid(stack), "typ": "JWT"}, claims(stack),
                 ed_sign(stack))
    assert call(stack, raw, bearer(hand)) is None  # the crafting itself is sound


def other_issuer(stack: Stack, *, issuer: str | None = None,
                 audience: str | None = None) -> DevIssuer:
    """The real signing keys, with another ``iss`` or ``aud`` in the claims."""
    cfg = stack.cfg
    return DevIssuer.load(cfg.dev_issuer_dir, issuer=issuer or cfg.issuer,
                          audience=audience or cfg.audience)


HOSTILE: dict[str, Callable[[Stack], str]] = {
    "expired": lambda s: s.issuer.issue(HPF, ["requester"], ttl_s=60, now=time.time() - 3600),
    "not-yet-valid": lambda s: s.issuer.issue(HPF, ["requester"], now=time.time() + 3600),
    "other-audience": lambda s: other_issuer(s, audience="another-gateway").issue(
        HPF, ["requester"]),
    "other-issuer": lambda s: other_issuer(s, issuer="https://idp.evil.example").issue(
        HPF, ["requester"]),
    "alg-none": lambda s: craft({"alg": "none", "typ": "JWT", "kid": ed_kid(s)}, claims(s)),
    "alg-none-with-signature": lambda s: craft({"alg": "none", "kid": ed_kid(s)}, claims(s),
                                               ed_sign(s)),
    "hs256-public-key-as-secret-pem": lambda s: craft(
        {"alg": "HS256", "typ": "JWT", "kid": ed_kid(s)}, claims(s),
        lambda data: hmac.new(s.issuer.private_key(ed_kid(s)).public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo), data, hashlib.sha256).digest()),
    "hs256-public-key-as-secret-raw": lambda s: craft(
        {"alg": "HS256", "kid": ed_kid(s)}, claims(s),
        lambda data: hmac.new(s.issuer.private_key(ed_kid(s)).public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw), data, hashlib.sha256).digest()),
    "unknown-kid": lambda s: craft({"alg": "EdDSA", "kid": "no-such-key"}, claims(s),
                                   ed25519.Ed25519PrivateKey.generate().sign),
    "known-kid-foreign-key": lambda s: craft({"alg": "EdDSA", "kid": ed_kid(s)}, claims(s),
                                             ed25519.Ed25519PrivateKey.generate().sign),
    "no-kid": lambda s: craft({"alg": "EdDSA"}, claims(s), ed_sign(s)),
    "es256-header-on-eddsa-key": lambda s: craft({"alg": "ES256", "kid": ed_kid(s)},
                                                 claims(s), ed_sign(s)),
    "tampered-payload": lambda s: _swap_payload(s.token(org="other-org"), claims(s)),
    "missing-jti": lambda s: craft({"alg": "EdDSA", "kid": ed_kid(s)},
                                   {k: v for k, v in claims(s).items() if k != "jti"},
                                   ed_sign(s)),
    "unknown-role": lambda s: craft({"alg": "EdDSA", "kid": ed_kid(s)},
                                    claims(s, roles=["superuser"]), ed_sign(s)),
    "crit-header": lambda s: craft({"alg": "EdDSA", "kid": ed_kid(s), "crit": ["exp"]},
                                   claims(s), ed_sign(s)),
    "two-segments": lambda s: ".".join(s.token().split(".")[:2]),
    "garbage": lambda s: "not-a-jwt",
}


def _swap_payload(token: str, payload: dict[str, Any]) -> str:
    head, _, sig = token.split(".")
    return f"{head}.{segment(payload)}.{sig}"


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_token_is_unauthenticated(stack: Stack, raw: RawData, case: str) -> None:
    before = len(stack.audit())
    assert_refused(call(stack, raw, bearer(HOSTILE[case](stack))))
    assert len(stack.audit()) == before  # nothing was decided, nothing released


@pytest.mark.parametrize("md", [
    pytest.param([], id="no-metadata"),
    pytest.param([("authorization", "")], id="empty"),
    pytest.param([("authorization", "Bearer")], id="bearer-without-token"),
    pytest.param([("authorization", "Basic b2ZmaWNlcjpodW50ZXIy")], id="basic-scheme"),
    pytest.param([("authorization", "Token abc.def.ghi")], id="other-scheme"),
    pytest.param([("authorization", "Bearer abc def.ghi")], id="space-inside-token"),
])
def test_missing_or_malformed_header_is_unauthenticated(stack: Stack, raw: RawData,
                                                        md: list[tuple[str, str]]) -> None:
    assert_refused(call(stack, raw, md))


def test_two_authorization_entries_are_unauthenticated(stack: Stack, raw: RawData) -> None:
    good = stack.token()
    assert_refused(call(stack, raw, [("authorization", f"Bearer {good}"),
                                     ("authorization", f"Bearer {good}")]))


def test_explain_needs_a_token_too(stack: Stack) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stack.explain("loan-eligibility", {"education": ["highest_degree"]}, token=None)
    assert_refused(info.value)


def test_a_rotated_issuer_key_is_picked_up_by_the_running_gateway(stack: Stack,
                                                                   raw: RawData) -> None:
    """Rotation from day one: the newest key signs, the JWKS is re-read once on its new kid,
    and tokens from the older key keep verifying."""
    cfg = stack.cfg
    rotating = DevIssuer.load(cfg.dev_issuer_dir, issuer=cfg.issuer, audience=cfg.audience)
    old = rotating.issue(HPF, ["requester"])
    new_kid = rotating.rotate()
    new = rotating.issue(HPF, ["requester"])
    assert json.loads(b64url_decode(new.split(".")[0]))["kid"] == new_kid
    assert call(stack, raw, bearer(new)) is None
    assert call(stack, raw, bearer(old)) is None
