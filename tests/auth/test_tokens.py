"""Token verification: one test per RFC 8725 rule and per known JWT advisory.

Hostile tokens are crafted by hand (base64url segments, raw signatures) so that no
library safety net hides a verifier bug. Time is a :class:`FakeClock`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

import gateway.auth
from gateway.auth import (
    REQUIRED_CLAIMS,
    DevIssuer,
    JwksKeySet,
    Principal,
    Role,
    TokenVerifier,
    bearer_from_metadata,
)
from gateway.auth._jwks import b64url_encode
from gateway.errors import PermissionDenied, Unauthenticated

ISS, AUD, T0 = "https://issuer.pgw.test", "pgw-gateway", 1_800_000_000


class FakeClock:
    """A settable clock for ``TokenVerifier(clock=...)``."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer(tmp_path: Path) -> DevIssuer:
    return DevIssuer.create(tmp_path / "keys", issuer=ISS, audience=AUD)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def verifier(issuer: DevIssuer, clock: FakeClock) -> TokenVerifier:
    return TokenVerifier(JwksKeySet(issuer.jwks_path), issuer=ISS, audience=AUD, clock=clock)


def claims(**overrides: Any) -> dict[str, Any]:
    base = {"iss": ISS, "aud": AUD, "sub": "alice", "org": "hpf-changzhou", "roles": ["requester"],
            "iat": T0, "nbf": T0, "exp": T0 + 600, "jti": "jti-1"}
    return {k: v for k, v in (base | overrides).items() if v is not None}


def segment(obj: Any) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode())


def craft(header: dict[str, Any], payload: dict[str, Any],
          sign: Callable[[bytes], bytes] | None = None) -> str:
    """Build a compact JWS by hand; ``sign`` gets the signing input (None = empty signature)."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64url_encode(signature)}"


def signed(issuer: DevIssuer, payload: dict[str, Any], *, alg: str = "EdDSA",
           **header: Any) -> str:
    kid = issuer.signing_kid(alg)
    return jwt.encode(payload, issuer.private_key(kid), algorithm=alg,
                      headers={"kid": kid, **header})


def ed25519_signer(issuer: DevIssuer) -> Callable[[bytes], bytes]:
    key = issuer.private_key(issuer.signing_kid("EdDSA"))
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.sign


def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as info:
        verifier.verify(token)
    assert info.value.outward_message() == Unauthenticated.public_message
    return info.value.reason


# --- accepted tokens ---------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_valid_token_yields_principal(issuer: DevIssuer, verifier: TokenVerifier,
                                      alg: str) -> None:
    """RFC 8725 §3.2: both allow-listed algorithms verify; the principal mirrors the claims."""
    token = issuer.issue("hpf-changzhou", [Role.REQUESTER, "auditor"], subject="alice",
                         alg=alg, now=T0)
    p = verifier.verify(token)
    assert (p.org, p.subject, p.roles) == ("hpf-changzhou", "alice",
                                           frozenset({Role.REQUESTER, Role.AUDITOR}))
    assert p.key_id == issuer.signing_kid(alg) and len(p.token_id) == 36


def test_default_clock_is_wall_time(issuer: DevIssuer) -> None:
    """RFC 7519 §4.1.4: without an injected clock, time.time() is used."""
    verifier = TokenVerifier(JwksKeySet(issuer.jwks_path), issuer=ISS, audience=AUD)
    assert verifier.verify(issuer.issue("hpf", ["integrator"])).org == "hpf"


@pytest.fixture(scope="module")
def shared_issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer.create(tmp_path_factory.mktemp("shared"), issuer=ISS, audience=AUD)


@given(org=st.text(min_size=1, max_size=20), subject=st.text(min_size=1, max_size=20),
       roles=st.sets(st.sampled_from(list(Role)), min_size=1))
@settings(max_examples=40, deadline=None)
def test_round_trip_any_claims(shared_issuer: DevIssuer, org: str, subject: str,
                               roles: set[Role]) -> None:
    """Whatever org, subject and roles are issued come back unchanged."""
    verifier = TokenVerifier(JwksKeySet(shared_issuer.jwks_path), issuer=ISS, audience=AUD,
                             clock=FakeClock())
    p = verifier.verify(shared_issuer.issue(org, roles, subject=subject, now=T0))
    assert (p.org, p.subject, p.roles) == (org, subject, frozenset(roles))


# --- time claims (RFC 7519 §4.1.4-4.1.6) with leeway on both sides ------------------------

@pytest.mark.parametrize(("offset", "reason"), [
    (600 + 29, None), (600 + 30, "token expired"), (600 + 31, "token expired"),
    (-29, None), (-31, "token not yet valid (nbf in the future)"),
])
def test_exp_and_nbf_with_leeway(issuer: DevIssuer, verifier: TokenVerifier, clock: FakeClock,
                                 offset: int, reason: str | None) -> None:
    """RFC 7519 §4.1.4/§4.1.5: exp and nbf checked against the injected clock, 30 s leeway."""
    token = issuer.issue("hpf", ["requester"], ttl_s=600, now=T0)
    clock.now = T0 + offset
    if reason is None:
        assert verifier.verify(token).org == "hpf"
    else:
        assert refused(verifier, token) == reason


@pytest.mark.parametrize(("iat_ahead", "ok"), [(29, True), (31, False)])
def test_iat_in_the_future(issuer: DevIssuer, verifier: TokenVerifier, iat_ahead: int,
                           ok: bool) -> None:
    """RFC 7519 §4.1.6: a token issued in the future (beyond leeway) is refused."""
    token = signed(issuer, claims(iat=T0 + iat_ahead, nbf=T0 - 5))
    if ok:
        verifier.verify(token)
    else:
        assert refused(verifier, token) == "token issued in the future (iat)"


@pytest.mark.parametrize(("claim", "bad"), [
    ("exp", "1800000600"), ("exp", True), ("nbf", [T0]), ("iat", float("inf")),
])
def test_time_claims_must_be_numeric_dates(issuer: DevIssuer, verifier: TokenVerifier,
                                           claim: str, bad: Any) -> None:
    """RFC 7519 §2: exp, nbf and iat are NumericDates, not strings, booleans or lists."""
    reason = refused(verifier, signed(issuer, claims(**{claim: bad})))
    assert reason == f"invalid claim {claim}: want a NumericDate"


# --- claims ------------------------------------------------------------------------------

@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_missing_required_claim(issuer: DevIssuer, verifier: TokenVerifier, claim: str) -> None:
    """RFC 8725 §3.8/§3.9: iss, aud and the other claims pgw relies on are required."""
    assert refused(verifier, signed(issuer, claims(**{claim: None}))) == f"missing claim: {claim}"


def test_other_audience(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    """RFC 8725 §3.9: a token minted for another relying party is refused."""
    assert refused(verifier, signed(issuer, claims(aud="bank-connector"))) == "wrong audience"


def test_other_issuer(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    """RFC 8725 §3.8: the issuer must match exactly."""
    assert refused(verifier, signed(issuer, claims(iss="https://evil.test"))) == "wrong issuer"


def test_issuer_prefix_is_not_a_match(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    """CVE-2024-53861 (pyjwt 2.10.0 partial issuer match): a substring of iss is refused."""
    assert refused(verifier, signed(issuer, claims(iss=ISS[:-1]))) == "wrong issuer"


@pytest.mark.parametrize(("roles", "fragment"), [
    ([], "want a non-empty list"), ("requester", "want a non-empty list"),
    (["requester", "root"], "unknown role 'root'"), ([7], "role must be a string"),
])
def test_roles_must_be_known(issuer: DevIssuer, verifier: TokenVerifier, roles: Any,
                             fragment: str) -> None:
    """RFC 8725 §3.10: received claims are validated, not trusted."""
    reason = refused(verifier, signed(issuer, claims(roles=roles)))
    assert reason.startswith("invalid claim roles") and fragment in reason


@pytest.mark.parametrize("claim", ["org", "sub", "jti"])
def test_identity_claims_must_be_non_empty_strings(issuer: DevIssuer, verifier: TokenVerifier,
                                                   claim: str) -> None:
    """RFC 8725 §3.8/§3.10: sub, org and jti are validated, not trusted."""
    assert refused(verifier, signed(issuer, claims(**{claim: ""}))).startswith("invalid claim")


# --- header, algorithm and key (advisories) ----------------------------------------------

def test_alg_none_is_refused(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    """RFC 8725 §2.1/§3.1 (the 2015 "alg: none" disclosures): an unsigned token is refused."""
    for alg in ("none", "None", "NONE"):
        token = craft({"alg": alg, "typ": "JWT", "kid": issuer.signing_kid()}, claims())
        assert token.endswith(".")
        assert refused(verifier, token) == f"algorithm not allowed: {alg}"


@pytest.mark.parametrize(("alg", "encoding"), [
    ("EdDSA", Encoding.PEM), ("ES256", Encoding.PEM), ("ES256", Encoding.OpenSSH),
    ("EdDSA", Encoding.OpenSSH),
])
def test_hs256_with_public_key_as_secret(issuer: DevIssuer, verifier: TokenVerifier, alg: str,
                                         encoding: Encoding) -> None:
    """CVE-2017-11424 and CVE-2022-29217 (key confusion): HS256 keyed with the listed public key.

    RFC 8725 §2.1/§3.1. pyjwt refuses PEM/SSH keys as HMAC secrets, so the token is made
    by hand with ``hmac``: the verifier must refuse it on the algorithm alone.
    """
    kid = issuer.signing_kid(alg)
    fmt = PublicFormat.SubjectPublicKeyInfo if encoding is Encoding.PEM else PublicFormat.OpenSSH
    secret = issuer.private_key(kid).public_key().public_bytes(encoding, fmt)
    token = craft({"alg": "HS256", "typ": "JWT", "kid": kid}, claims(),
                  lambda data: hmac.new(secret, data, hashlib.sha256).digest())
    assert refused(verifier, token) == "algorithm not allowed: HS256"


@pytest.mark.parametrize("alg", ["RS256", "ES384", "HS512", "PS256", "ES256K", "", None, ["EdDSA"]])
def test_other_algorithms_are_refused(issuer: DevIssuer, verifier: TokenVerifier, alg: Any) -> None:
    """RFC 8725 §3.2: the allow-list is EdDSA and ES256, whatever else the header says."""
    token = craft({"alg": alg, "kid": issuer.signing_kid()}, claims(), lambda d: b"x" * 64)
    assert refused(verifier, token) == f"algorithm not allowed: {alg}"


@pytest.mark.parametrize(("signed_with", "claimed"), [("ES256", "EdDSA"), ("EdDSA", "ES256")])
def test_alg_must_match_the_keys_pinned_alg(issuer: DevIssuer, verifier: TokenVerifier,
                                            signed_with: str, claimed: str) -> None:
    """RFC 8725 §3.1: each key is used with exactly one algorithm (header alg/key mismatch)."""
    kid = issuer.signing_kid(signed_with)
    valid = signed(issuer, claims(), alg=signed_with)
    _, payload, signature = valid.split(".")
    forged = f"{segment({'alg': claimed, 'kid': kid, 'typ': 'JWT'})}.{payload}.{signature}"
    assert refused(verifier, forged) == (
        f"algorithm does not match key: token {claimed}, key {signed_with}")


def test_unknown_kid(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    """RFC 8725 §3.10: kid is only a lookup hint; an unlisted kid is refused."""
    assert refused(verifier, signed(issuer, claims(), kid="not-listed")) == "unknown kid"


@pytest.mark.parametrize("kid", [None, ""])
def test_missing_kid(issuer: DevIssuer, verifier: TokenVerifier, kid: str | None) -> None:
    """RFC 8725 §3.10: pgw keys are found only by kid; a token without one is refused."""
    header = {"alg": "EdDSA", "typ": "JWT"} | ({} if kid is None else {"kid": kid})
    token = craft(header, claims(), ed25519_signer(issuer))
    assert refused(verifier, token) == "missing kid"


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_foreign_key_claiming_a_listed_kid(issuer: DevIssuer, verifier: TokenVerifier,
                                           alg: str) -> None:
    """RFC 8725 §3.3: a signature by a key outside the JWKS fails even with a listed kid."""
    foreign = (ed25519.Ed25519PrivateKey.generate() if alg == "EdDSA"
               else ec.generate_private_key(ec.SECP256R1()))
    token = jwt.encode(claims(), foreign, algorithm=alg, headers={"kid": issuer.signing_kid(alg)})
    assert refused(verifier, token) == "invalid signature"


def test_embedded_jwk_header_is_ignored(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    """CVE-2018-0114 (node-jose trusted an embedded "jwk"): keys come only from the JWKS."""
    attacker = ed25519.Ed25519PrivateKey.generate()
    x = b64url_encode(attacker.public_key().public_bytes_raw())
    token = jwt.encode(claims(), attacker, algorithm="EdDSA", headers={
        "kid": issuer.signing_kid(), "jwk": {"kty": "OKP", "crv": "Ed25519", "x": x},
        "jku": "https://evil.test/jwks.json"})
    assert refused(verifier, token) == "invalid signature"


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_tampered_payload(issuer: DevIssuer, verifier: TokenVerifier, alg: str) -> None:
    """RFC 8725 §3.3: widening the roles of a valid token breaks its signature."""
    header, _, signature = signed(issuer, claims(), alg=alg).split(".")
    widened = segment(claims(roles=["requester", "policy-admin"]))
    assert refused(verifier, f"{header}.{widened}.{signature}") == "invalid signature"


@pytest.mark.parametrize(("typ", "ok"), [("JWT", True), ("at+jwt", True), ("jwt", True),
                                         ("secevent+jwt", False), ("JOSE", False), (1, False)])
def test_explicit_typ(issuer: DevIssuer, verifier: TokenVerifier, typ: Any, ok: bool) -> None:
    """RFC 8725 §3.11/§3.12: another kind of JWT (say, a SET) is not an access token."""
    token = signed(issuer, claims(), typ=typ)
    if ok:
        verifier.verify(token)
    else:
        assert refused(verifier, token) == f"typ not allowed: {typ}"


@pytest.mark.parametrize(("extra", "reason"), [
    ({"crit": ["exp"], "exp": 1}, "malformed token header: Unsupported critical extension: exp"),
    ({"crit": ["b64"], "b64": True}, "critical header extensions not supported: ['b64']"),
])
def test_critical_header_extensions_are_refused(issuer: DevIssuer, verifier: TokenVerifier,
                                                extra: dict[str, Any], reason: str) -> None:
    """RFC 7515 §4.1.11: pgw implements no crit extension, so any crit header is refused."""
    kid = issuer.signing_kid()
    token = craft({"alg": "EdDSA", "kid": kid} | extra, claims(), ed25519_signer(issuer))
    assert refused(verifier, token) == reason


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "!!!.e30.", "W10.e30.",
                                   b"a.b.c", None])
def test_malformed_tokens(verifier: TokenVerifier, token: Any) -> None:
    """RFC 8725 §3.4 (validate cryptographic inputs): garbage never reaches a key."""
    assert refused(verifier, token).startswith("malformed token")


# --- rotation and refresh-once -----------------------------------------------------------

def test_rotation_old_and_new_keys_verify(issuer: DevIssuer, clock: FakeClock) -> None:
    """STYLE habit 7: the newest key signs and every listed key verifies."""
    old = issuer.issue("hpf", ["requester"], now=T0)
    new_kid = issuer.rotate()
    new = issuer.issue("hpf", ["requester"], now=T0)
    verifier = TokenVerifier(JwksKeySet(issuer.jwks_path), issuer=ISS, audience=AUD, clock=clock)
    assert verifier.verify(new).key_id == new_kid
    assert verifier.verify(old).key_id != new_kid


def test_refresh_once_for_a_key_added_after_start(issuer: DevIssuer, clock: FakeClock) -> None:
    """pyjwt jwks_client habit: an unknown kid re-reads a changed JWKS once, then fails."""
    keyset = JwksKeySet(issuer.jwks_path)
    verifier = TokenVerifier(keyset, issuer=ISS, audience=AUD, clock=clock)
    issuer.rotate()
    st = issuer.jwks_path.stat()  # filesystem timestamps can be coarse: move mtime on
    os.utime(issuer.jwks_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**10))
    assert keyset.reads == 1
    assert verifier.verify(issuer.issue("hpf", ["auditor"], now=T0)).roles == {Role.AUDITOR}
    assert keyset.reads == 2
    for kid in ("stranger-1", "stranger-2"):
        assert refused(verifier, signed(issuer, claims(), kid=kid)) == "unknown kid"
    assert keyset.reads == 2


def test_broken_jwks_on_reload_is_reported(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    """Refresh-once habit: a broken JWKS on reload keeps the old keys and names the failure."""
    issuer.jwks_path.write_text("{")
    st = issuer.jwks_path.stat()
    os.utime(issuer.jwks_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**10))
    reason = refused(verifier, signed(issuer, claims(), kid="new"))
    assert reason.startswith("unknown kid (JWKS reload failed")
    assert verifier.verify(signed(issuer, claims())).org == "hpf-changzhou"


# --- metadata, principal and the public surface ------------------------------------------

@pytest.mark.parametrize(("metadata", "expected"), [
    ([("authorization", "Bearer abc.def.ghi")], "abc.def.ghi"),
    ([("x-request-id", "1"), ("authorization", "bearer  abc.def.ghi ")], "abc.def.ghi"),
    ((("authorization", b"Bearer t.o.k"),), "t.o.k"),
])
def test_bearer_from_metadata(metadata: Any, expected: str) -> None:
    """RFC 6750 §2.1: the token comes from one ``authorization: Bearer`` entry."""
    assert bearer_from_metadata(metadata) == expected


@pytest.mark.parametrize(("metadata", "reason"), [
    (None, "no authorization metadata"), ([("x-other", "Bearer a")], "no authorization metadata"),
    ([("authorization", "Basic dXNlcjpwdw==")], "authorization scheme is not Bearer"),
    ([("authorization", "Bearer")], "malformed bearer token"),
    ([("authorization", "Bearer ")], "malformed bearer token"),
    ([("authorization", "Bearer a b")], "malformed bearer token"),
    ([("authorization", "Bearer a"), ("authorization", "Bearer b")],
     "more than one authorization metadata entry"),
])
def test_bearer_from_metadata_refuses(metadata: Any, reason: str) -> None:
    """RFC 6750 §2.1: missing, repeated or malformed bearer metadata is refused."""
    with pytest.raises(Unauthenticated) as info:
        bearer_from_metadata(metadata)
    assert info.value.reason == reason


def test_principal_require() -> None:
    """Roles are explicit (DESIGN.md): PermissionDenied names what is needed and held."""
    p = Principal("hpf", "alice", frozenset({Role.REQUESTER}), "jti", "kid")
    p.require(Role.REQUESTER)
    p.require(Role.AUDITOR, Role.REQUESTER)
    with pytest.raises(PermissionDenied, match=r"^requires role auditor; token has requester$"):
        p.require(Role.AUDITOR)
    with pytest.raises(PermissionDenied, match="requires role auditor or policy-admin"):
        p.require(Role.POLICY_ADMIN, Role.AUDITOR)


def test_public_surface() -> None:
    """STYLE habit 1: the package front door re-exports a sorted, fixed __all__."""
    assert gateway.auth.__all__ == sorted(gateway.auth.__all__) == [
        "ALLOWED_ALGORITHMS", "DevIssuer", "JwksKeySet", "Principal", "REQUIRED_CLAIMS", "Role",
        "TokenVerifier", "VerificationKey", "bearer_from_metadata", "jwk_thumbprint"]
    assert {"EdDSA", "ES256"} == gateway.auth.ALLOWED_ALGORITHMS


def test_cached_token_is_still_refused_once_expired(issuer: DevIssuer, verifier: TokenVerifier,
                                                    clock: FakeClock) -> None:
    """The verified-token cache skips the signature, never the time checks (RFC 8725 §3.10)."""
    token = signed(issuer, claims())
    assert verifier.verify(token).org == "hpf-changzhou"   # verified and cached
    clock.now = T0 + 600 + 31                                # past exp + leeway
    assert refused(verifier, token) == "token expired"


def test_cache_does_not_admit_a_tampered_copy(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    """A cached good token does not make a modified token with the same prefix pass."""
    token = signed(issuer, claims())
    verifier.verify(token)
    head, payload, sig = token.split(".")
    tampered = ".".join([head, payload, sig[:-2] + ("AA" if sig[-2:] != "AA" else "BA")])
    assert refused(verifier, tampered) == "invalid signature"
