"""JWKS loading, key pinning, refresh-once and the dev issuer's key files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from gateway.auth import DevIssuer, JwksKeySet, jwk_thumbprint
from gateway.auth._jwks import b64url_encode
from gateway.errors import ConfigError

ISS, AUD = "https://issuer.pgw.test", "pgw-gateway"


def _write_jwks(path: Path, keys: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"keys": keys}), encoding="utf-8")


def _public(issuer: DevIssuer) -> list[dict[str, Any]]:
    return list(json.loads(issuer.jwks_path.read_text())["keys"])


def _bump_mtime(path: Path, seconds: int = 10) -> None:
    """Move the mtime forward explicitly: filesystem timestamps can be coarse."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 10**9))


@pytest.fixture
def issuer(tmp_path: Path) -> DevIssuer:
    return DevIssuer.create(tmp_path / "keys", issuer=ISS, audience=AUD)


def test_rfc8037_thumbprint_vector() -> None:
    """RFC 8037 appendix A.3: the RFC 7638 thumbprint of the example Ed25519 key."""
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_loads_both_key_types_with_pinned_algorithms(issuer: DevIssuer) -> None:
    keyset = JwksKeySet(issuer.jwks_path)
    algs = {keyset.get(kid).alg for kid in keyset.kids}  # type: ignore[union-attr]
    assert algs == {"EdDSA", "ES256"}
    assert keyset.reads == 1


def _ok_okp() -> dict[str, Any]:
    x = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(x), "kid": "good"}


@pytest.mark.parametrize(("jwk", "fragment"), [
    ({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac-1"}, "key 'hmac-1': kty 'oct'"),
    ({"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa-1"}, "key 'rsa-1': kty 'RSA'"),
    ({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "p384"}, "crv 'P-384' not allowed"),
    ({"kty": "OKP", "crv": "X25519", "x": "AA", "kid": "xdh"}, "key 'xdh': kty 'OKP' crv 'X25519'"),
    ({**_ok_okp(), "alg": "HS256"}, "alg 'HS256' does not match"),
    ({**_ok_okp(), "use": "enc"}, "use 'enc'"),
    ({**_ok_okp(), "d": "AAAA"}, "private key material"),
    ({**_ok_okp(), "x": "AAAA"}, "'x' is 3 bytes; want 32"),
    ({k: v for k, v in _ok_okp().items() if k != "kid"}, "no 'kid'"),
    ({"kty": "EC", "crv": "P-256", "x": "A" * 43, "y": "A" * 43, "kid": "off-curve"}, "off-curve"),
])
def test_refuses_keys_that_are_not_ed25519_or_p256(
        tmp_path: Path, jwk: dict[str, Any], fragment: str) -> None:
    """RFC 8725 §3.1/§3.2: only EdDSA and ES256 keys load; the error names the kid."""
    path = tmp_path / "jwks.json"
    _write_jwks(path, [_ok_okp() | {"kid": "other"}, jwk])
    with pytest.raises(ConfigError) as info:
        JwksKeySet(path)
    assert str(path) in info.value.message
    assert fragment in info.value.message


@pytest.mark.parametrize("document", ['{"keys": []}', "[]", "{not json", '{"keys": {}}'])
def test_refuses_malformed_documents(tmp_path: Path, document: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(document)
    with pytest.raises(ConfigError, match="JWKS"):
        JwksKeySet(path)


def test_refuses_duplicate_kid_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    _write_jwks(path, [_ok_okp(), _ok_okp()])
    with pytest.raises(ConfigError, match="'good' listed twice"):
        JwksKeySet(path)
    with pytest.raises(ConfigError, match="cannot read"):
        JwksKeySet(tmp_path / "absent.json")


def test_unknown_kid_without_change_does_not_reread(issuer: DevIssuer) -> None:
    keyset = JwksKeySet(issuer.jwks_path)
    assert keyset.get("nope") is None
    assert keyset.get("nope-again") is None
    assert keyset.reads == 1


def test_refresh_once_picks_up_added_key_then_stops(issuer: DevIssuer) -> None:
    """pyjwt jwks_client habit: on an unknown kid re-read once if changed, then fail."""
    keyset = JwksKeySet(issuer.jwks_path)
    added = _ok_okp() | {"kid": "added-later"}
    _write_jwks(issuer.jwks_path, [*_public(issuer), added])
    _bump_mtime(issuer.jwks_path)
    key = keyset.get("added-later")
    assert key is not None and key.alg == "EdDSA"
    assert keyset.reads == 2
    assert keyset.get("still-unknown") is None
    assert keyset.get("still-unknown-2") is None
    assert keyset.reads == 2


def test_failed_reload_keeps_current_keys(issuer: DevIssuer) -> None:
    keyset = JwksKeySet(issuer.jwks_path)
    kids = keyset.kids
    issuer.jwks_path.write_text('{"keys": [{"kty": "oct", "k": "AA", "kid": "bad"}]}')
    _bump_mtime(issuer.jwks_path)
    with pytest.raises(ConfigError, match="'bad'"):
        keyset.get("bad")
    assert keyset.kids == kids
    assert keyset.get("bad") is None  # same broken file: not read a third time
    assert keyset.reads == 2


def test_dev_issuer_files(issuer: DevIssuer) -> None:
    """Private keys are 0600; the public JWKS has no 'd'; kid = RFC 7638 thumbprint."""
    private = issuer.directory / "issuer-keys.json"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    public = _public(issuer)
    assert [(k["kty"], k["alg"]) for k in public] == [("OKP", "EdDSA"), ("EC", "ES256")]
    assert all("d" not in k and k["kid"] == jwk_thumbprint(k) for k in public)
    assert isinstance(issuer.private_key(issuer.signing_kid("ES256")), ec.EllipticCurvePrivateKey)


def test_dev_issuer_create_refuses_overwrite_and_load_round_trips(issuer: DevIssuer) -> None:
    with pytest.raises(ConfigError, match="exists"):
        DevIssuer.create(issuer.directory, issuer=ISS, audience=AUD)
    again = DevIssuer.load(issuer.directory, issuer=ISS, audience=AUD)
    assert again.signing_kid() == issuer.signing_kid()
    with pytest.raises(ConfigError, match="cannot load"):
        DevIssuer.load(issuer.directory / "missing", issuer=ISS, audience=AUD)


def test_rotate_adds_signer_and_keeps_old_keys(issuer: DevIssuer) -> None:
    old = issuer.signing_kid()
    new = issuer.rotate()
    assert issuer.signing_kid() == new != old
    kids = [k["kid"] for k in _public(issuer)]
    assert kids[-1] == new and old in kids and len(kids) == 3
    assert stat.S_IMODE((issuer.directory / "issuer-keys.json").stat().st_mode) == 0o600
