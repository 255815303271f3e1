"""Public verification keys from a JWKS file, with rotation and refresh-once.

Only two key types are accepted, and each pins its algorithm (RFC 8725 §3.1):
an OKP/Ed25519 key verifies EdDSA only, an EC/P-256 key verifies ES256 only.
Everything else, symmetric ``oct`` keys in particular, is refused at load with
an error naming the ``kid``, so a verifier can never be tricked into using a
public key as an HMAC secret.

Several keys may be listed at once (the newest signs, every listed key verifies).
On an unknown ``kid`` the file is re-read once if it changed on disk since the
last read; otherwise the lookup fails without touching the file again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from gateway.errors import ConfigError

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey

#: (kty, crv) -> the one algorithm such a key may verify.
PINNED_ALGS: Mapping[tuple[str, str], str] = {("OKP", "Ed25519"): "EdDSA", ("EC", "P-256"): "ES256"}
_THUMBPRINT_MEMBERS = {"OKP": ("crv", "kty", "x"), "EC": ("crv", "kty", "x", "y")}


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url (RFC 7515 §2), refusing padding and stray characters."""
    if not isinstance(text, str) or "=" in text:
        raise ValueError("want unpadded base64url text")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of an OKP or EC public JWK, base64url-encoded."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise ValueError(f"no thumbprint rule for kty {jwk.get('kty')!r}")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclass(frozen=True)
class VerificationKey:
    """One listed key: its ``kid``, its pinned algorithm and the public key."""

    kid: str
    alg: str
    public_key: PublicKey


def _coordinate(jwk: Mapping[str, Any], name: str, kid: str) -> bytes:
    try:
        raw = b64url_decode(jwk[name])
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"key {kid!r}: member {name!r} missing or not base64url") from exc
    if len(raw) != 32:
        raise ValueError(f"key {kid!r}: member {name!r} is {len(raw)} bytes; want 32")
    return raw


def parse_jwk(jwk: Any) -> VerificationKey:
    """Turn one public JWK into a :class:`VerificationKey`, or raise ``ValueError``."""
    if not isinstance(jwk, dict):
        raise ValueError(f"each key must be a JSON object, got {type(jwk).__name__}")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ValueError("a key has no 'kid' (a non-empty string is required)")
    kty, crv = str(jwk.get("kty")), str(jwk.get("crv"))
    alg = PINNED_ALGS.get((kty, crv))
    if alg is None:
        raise ValueError(f"key {kid!r}: kty {kty!r} crv {crv!r} not allowed; "
                         "want OKP/Ed25519 (EdDSA) or EC/P-256 (ES256)")
    if "d" in jwk:
        raise ValueError(f"key {kid!r}: private key material ('d') in a public key set")
    if jwk.get("alg", alg) != alg:
        raise ValueError(f"key {kid!r}: alg {jwk['alg']!r} does not match its type; want {alg}")
    if jwk.get("use", "sig") != "sig":
        raise ValueError(f"key {kid!r}: use {jwk['use']!r}; want 'sig'")
    public_key: PublicKey
    if kty == "OKP":
        public_key = ed25519.Ed25519PublicKey.from_public_bytes(_coordinate(jwk, "x", kid))
    else:
        x = int.from_bytes(_coordinate(jwk, "x", kid), "big")
        y = int.from_bytes(_coordinate(jwk, "y", kid), "big")
        try:  # cryptography refuses a point that is not on the curve
            public_key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        except ValueError:
            raise ValueError(f"key {kid!r}: point is not on curve P-256") from None
    return VerificationKey(kid=kid, alg=alg, public_key=public_key)


def parse_jwks(document: bytes, *, source: str) -> dict[str, VerificationKey]:
    """Parse a JWKS document into keys by ``kid``; errors name ``source`` and the kid."""
    try:
        data = json.loads(document)
        keys = data["keys"] if isinstance(data, dict) else None
        if not isinstance(keys, list) or not keys:
            raise ValueError("want an object with a non-empty 'keys' list")
        parsed: dict[str, VerificationKey] = {}
        for jwk in keys:
            key = parse_jwk(jwk)
            if key.kid in parsed:
                raise ValueError(f"key {key.kid!r} listed twice")
            parsed[key.kid] = key
    except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise ConfigError(f"JWKS {source}: {exc}", reason=f"bad JWKS {source}: {exc}") from exc
    return parsed


class JwksKeySet:
    """Verification keys loaded from a JWKS file, looked up by ``kid``.

    Raises :class:`~gateway.errors.ConfigError` at construction if the file is
    missing or holds any key that is not Ed25519 or P-256. ``reads`` counts how
    many times the file has been read (for metrics and tests).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.reads = 0
        self._lock = threading.Lock()
        self._keys, self._stamp = self._read()

    def _stat(self) -> tuple[int, int, int]:
        st = self.path.stat()
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read(self) -> tuple[dict[str, VerificationKey], tuple[int, int, int]]:
        try:
            stamp = self._stat()
            document = self.path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"JWKS {self.path}: cannot read ({exc.strerror})") from exc
        self.reads += 1
        return parse_jwks(document, source=str(self.path)), stamp

    @property
    def kids(self) -> tuple[str, ...]:
        """The ``kid`` of every key currently loaded, in file order."""
        return tuple(self._keys)

    def get(self, kid: str) -> VerificationKey | None:
        """The key for ``kid``, re-reading the file once if it changed; else ``None``.

        A failed re-read (a half-written file, say) keeps the current keys and is
        reported as ``ConfigError`` so the caller can log it; the changed file is
        tried again on the next unknown ``kid`` only if it changes again.
        """
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)  # another thread may have reloaded meanwhile
            if key is not None:
                return key
            try:
                stamp = self._stat()
            except OSError:
                return None
            if stamp == self._stamp:
                return None
            self._stamp = stamp
            keys, self._stamp = self._read()
            self._keys = keys
            return keys.get(kid)
