"""A development token issuer for local runs and the demo. Not for production.

``DevIssuer.create`` writes two files into a directory:

* ``jwks.json``: the public keys, which a :class:`~gateway.auth.JwksKeySet` reads;
* ``issuer-keys.json``: the private JWKs (file mode 0600), newest last.

It starts with one Ed25519 key (EdDSA) and one P-256 key (ES256); ``kid`` is each
key's RFC 7638 thumbprint. :meth:`DevIssuer.rotate` adds a new Ed25519 key that
signs from then on, while every older key stays listed so outstanding tokens verify.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.auth._jwks import b64url_decode, b64url_encode, jwk_thumbprint
from gateway.auth._principal import Role
from gateway.errors import ConfigError

JWKS_FILE = "jwks.json"
PRIVATE_FILE = "issuer-keys.json"
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def _private_jwk(key: PrivateKey) -> dict[str, str]:
    """Serialise a private key as a JWK with ``kid`` = RFC 7638 thumbprint and pinned ``alg``."""
    jwk: dict[str, str]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        x = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(x), "alg": "EdDSA"}
        d = key.private_bytes_raw()
    else:
        numbers = key.private_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "alg": "ES256",
               "x": b64url_encode(numbers.public_numbers.x.to_bytes(32, "big")),
               "y": b64url_encode(numbers.public_numbers.y.to_bytes(32, "big"))}
        d = numbers.private_value.to_bytes(32, "big")
    jwk.update(use="sig", kid=jwk_thumbprint(jwk), d=b64url_encode(d))
    return jwk


def _load_private(jwk: dict[str, Any]) -> PrivateKey:
    d = b64url_decode(jwk["d"])
    if jwk["kty"] == "OKP":
        return ed25519.Ed25519PrivateKey.from_private_bytes(d)
    return ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())


def _write(path: Path, data: Any, mode: int) -> None:
    """Write JSON atomically (temp file + rename) with the given permission bits."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.chmod(tmp, mode)  # the umask may have narrowed the mode given to os.open
    os.replace(tmp, path)


class DevIssuer:
    """Issues signed pgw tokens from keys kept in a directory (development only)."""

    def __init__(self, directory: Path, jwks: list[dict[str, Any]], *, issuer: str,
                 audience: str) -> None:
        self.directory = Path(directory)
        self.issuer = issuer
        self.audience = audience
        self._jwks = jwks

    @classmethod
    def create(cls, directory: Path, *, issuer: str, audience: str) -> DevIssuer:
        """Make fresh Ed25519 and P-256 keys in ``directory``; refuse to overwrite keys."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / PRIVATE_FILE).exists():
            raise ConfigError(f"{directory / PRIVATE_FILE} exists; use DevIssuer.load")
        keys = [_private_jwk(ed25519.Ed25519PrivateKey.generate()),
                _private_jwk(ec.generate_private_key(ec.SECP256R1()))]
        made = cls(directory, keys, issuer=issuer, audience=audience)
        made._save()
        return made

    @classmethod
    def load(cls, directory: Path, *, issuer: str, audience: str) -> DevIssuer:
        """Load the keys a previous :meth:`create` wrote."""
        path = Path(directory) / PRIVATE_FILE
        try:
            keys = json.loads(path.read_text(encoding="utf-8"))["keys"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"dev issuer keys {path}: cannot load ({exc})") from exc
        return cls(Path(directory), keys, issuer=issuer, audience=audience)

    @property
    def jwks_path(self) -> Path:
        """Where the public JWKS lives (hand this to :class:`JwksKeySet`)."""
        return self.directory / JWKS_FILE

    def signing_kid(self, alg: str = "EdDSA") -> str:
        """The ``kid`` of the key that signs ``alg`` tokens: the newest key of that type."""
        for jwk in reversed(self._jwks):
            if jwk["alg"] == alg:
                return str(jwk["kid"])
        raise ValueError(f"no {alg} key; want EdDSA or ES256")

    def private_key(self, kid: str) -> PrivateKey:
        """The private key for ``kid`` (tests use it to craft hostile tokens)."""
        for jwk in self._jwks:
            if jwk["kid"] == kid:
                return _load_private(jwk)
        raise KeyError(kid)

    def issue(self, org: str, roles: Iterable[Role | str], *, subject: str = "dev",
              ttl_s: int = 900, alg: str = "EdDSA", now: float | None = None) -> str:
        """A signed token for ``org`` with ``roles``, valid ``ttl_s`` seconds from ``now``."""
        kid = self.signing_kid(alg)
        issued = int(time.time() if now is None else now)
        claims = {"iss": self.issuer, "aud": self.audience, "sub": subject, "org": org,
                  "roles": sorted(Role.parse(r).value for r in roles),
                  "iat": issued, "nbf": issued, "exp": issued + ttl_s, "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self.private_key(kid), algorithm=alg,
                          headers={"kid": kid, "typ": "JWT"})

    def rotate(self) -> str:
        """Add a new Ed25519 key that signs from now on; return its ``kid``."""
        self._jwks.append(_private_jwk(ed25519.Ed25519PrivateKey.generate()))
        self._save()
        return str(self._jwks[-1]["kid"])

    def _save(self) -> None:
        _write(self.directory / PRIVATE_FILE, {"keys": self._jwks}, 0o600)
        public = [{k: v for k, v in jwk.items() if k != "d"} for jwk in self._jwks]
        _write(self.jwks_path, {"keys": public}, 0o644)
