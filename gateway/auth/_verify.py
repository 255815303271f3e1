"""Bearer-token verification: RFC 8725 rules over pyjwt, with an injected clock.

The order of checks is fixed and every refusal is an
:class:`~gateway.errors.Unauthenticated` whose ``reason`` says exactly what failed
(for logs and the audit chain) while the outward message stays generic.

1. header: parseable, ``alg`` in the allow-list (EdDSA, ES256), ``kid`` present,
   ``typ`` absent or ``JWT``/``at+jwt``, no ``crit`` extensions;
2. key: looked up by ``kid`` (refresh-once), and its *pinned* algorithm must equal
   the header ``alg``; that pinned algorithm is the only one passed to pyjwt;
3. signature, ``iss`` (exact match), ``aud`` and presence of every required claim
   (pyjwt);
4. ``exp``/``nbf``/``iat`` against the injected clock with the leeway (here, not in
   pyjwt, which reads the wall clock);
5. ``sub``, ``jti``, ``org`` non-empty strings; ``roles`` a non-empty list of known roles.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import jwt
from jwt.exceptions import InvalidJTIError, InvalidSubjectError

from gateway.auth._jwks import JwksKeySet
from gateway.auth._principal import Principal, Role
from gateway.errors import ConfigError, Unauthenticated

#: Algorithms a pgw token may use (DESIGN.md step 1). Never read from the token.
ALLOWED_ALGORITHMS: frozenset[str] = frozenset({"EdDSA", "ES256"})
#: Claims every token must carry.
REQUIRED_CLAIMS: tuple[str, ...] = ("iss", "aud", "exp", "nbf", "iat", "jti", "sub", "org", "roles")
_ALLOWED_TYP = frozenset({"jwt", "at+jwt"})  # media types compare case-insensitively


def _refuse(reason: str) -> Unauthenticated:
    return Unauthenticated(f"token refused: {reason}", reason=reason)


def _numeric_date(claims: dict[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _refuse(f"invalid claim {name}: want a NumericDate")
    return float(value)


def _text_claim(claims: dict[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value:
        raise _refuse(f"invalid claim {name}: want a non-empty string")
    return value


def _roles(claims: dict[str, Any]) -> frozenset[Role]:
    value = claims["roles"]
    if not isinstance(value, list) or not value:
        raise _refuse("invalid claim roles: want a non-empty list")
    try:
        return frozenset(Role.parse(v) for v in value)
    except ValueError as exc:
        raise _refuse(f"invalid claim roles: {exc}") from None


_CACHE_SIZE = 10_000
_SPACE = re.compile(r"\s")


class TokenVerifier:
    """Verify pgw bearer tokens against a :class:`JwksKeySet`.

    ``issuer`` and ``audience`` are required and compared exactly; ``leeway_s``
    applies to ``exp``, ``nbf`` and ``iat``; ``clock`` returns seconds since the
    epoch and is the only source of time.
    """

    def __init__(self, keyset: JwksKeySet, *, issuer: str, audience: str, leeway_s: int = 30,
                 clock: Callable[[], float] = time.time) -> None:
        if not issuer or not audience:
            raise ValueError("issuer and audience must be non-empty")
        if leeway_s < 0:
            raise ValueError(f"leeway_s must be >= 0, got {leeway_s}")
        self._keyset = keyset
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_s
        self._clock = clock
        # Verified tokens -> (principal, exp, nbf, iat). A hit skips the signature check but
        # re-checks the times; bounded, and emptied wholesale when full.
        self._cache: dict[str, tuple[Principal, float, float, float]] = {}

    def verify(self, token: str) -> Principal:
        """Return the :class:`Principal` for ``token`` or raise ``Unauthenticated``."""
        cached = self._cache.get(token) if isinstance(token, str) else None
        if cached is not None:
            principal, exp, nbf, iat = cached
            self._check_time_values(exp, nbf, iat)
            return principal
        principal, times = self._verify_fully(token)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[token] = (principal, *times)
        return principal

    def _verify_fully(self, token: str) -> tuple[Principal, tuple[float, float, float]]:
        if not isinstance(token, str) or token.count(".") != 2:
            raise _refuse("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _refuse(f"malformed token header: {exc}") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise _refuse(f"algorithm not allowed: {alg}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _refuse("missing kid")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in _ALLOWED_TYP):
            raise _refuse(f"typ not allowed: {typ}")
        if "crit" in header:
            raise _refuse(f"critical header extensions not supported: {header['crit']}")
        try:
            key = self._keyset.get(kid)
        except ConfigError as exc:
            raise _refuse(f"unknown kid (JWKS reload failed: {exc.reason})") from None
        if key is None:
            raise _refuse("unknown kid")
        if key.alg != alg:
            raise _refuse(f"algorithm does not match key: token {alg}, key {key.alg}")
        claims = self._decode(token, key.public_key, key.alg)
        times = (_numeric_date(claims, "exp"), _numeric_date(claims, "nbf"),
                 _numeric_date(claims, "iat"))
        self._check_time_values(*times)
        principal = Principal(org=_text_claim(claims, "org"), subject=_text_claim(claims, "sub"),
                              roles=_roles(claims), token_id=_text_claim(claims, "jti"),
                              key_id=kid)
        return principal, times

    def _decode(self, token: str, public_key: Any, pinned_alg: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token, public_key,
                algorithms=[pinned_alg],  # the key's pinned algorithm, never the header's
                issuer=self._issuer, audience=self._audience,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "require": list(REQUIRED_CLAIMS)},
            )
        except jwt.InvalidSignatureError:
            raise _refuse("invalid signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _refuse(f"missing claim: {exc.claim}") from None
        except jwt.InvalidAudienceError:
            raise _refuse("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise _refuse("wrong issuer") from None
        except (InvalidSubjectError, InvalidJTIError) as exc:
            raise _refuse(f"invalid claim: {exc}") from None
        except jwt.PyJWTError as exc:
            raise _refuse(f"malformed token: {type(exc).__name__}") from None

    def _check_time_values(self, exp: float, nbf: float, iat: float) -> None:
        now, leeway = self._clock(), self._leeway
        if now >= exp + leeway:
            raise _refuse("token expired")
        if nbf > now + leeway:
            raise _refuse("token not yet valid (nbf in the future)")
        if iat > now + leeway:
            raise _refuse("token issued in the future (iat)")


def bearer_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """Return the token from exactly one ``authorization: Bearer <token>`` entry.

    ``metadata`` is gRPC invocation metadata (key/value pairs, keys lower-case).
    A missing, repeated or malformed header raises ``Unauthenticated``.
    """
    values = [v for k, v in (metadata or ()) if k.lower() == "authorization"]
    if not values:
        raise _refuse("no authorization metadata")
    if len(values) > 1:
        raise _refuse("more than one authorization metadata entry")
    value = values[0]
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer":
        raise _refuse("authorization scheme is not Bearer")
    if not token or _SPACE.search(token):
        raise _refuse("malformed bearer token")
    return token
