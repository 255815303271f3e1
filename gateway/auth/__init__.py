"""Authentication for pgw: bearer JWTs verified against a JWKS, and principals.

Request lifecycle step 1 (DESIGN.md): :func:`bearer_from_metadata` takes the token
from ``authorization: Bearer`` metadata, :class:`TokenVerifier` checks it (EdDSA or
ES256 only, keys from a :class:`JwksKeySet` with rotation) and returns a
:class:`Principal` whose :meth:`~Principal.require` enforces roles. :class:`DevIssuer`
mints tokens for local development and the demo.
"""

from gateway.auth._issuer import DevIssuer
from gateway.auth._jwks import JwksKeySet, VerificationKey, jwk_thumbprint
from gateway.auth._principal import Principal, Role
from gateway.auth._verify import (
    ALLOWED_ALGORITHMS,
    REQUIRED_CLAIMS,
    TokenVerifier,
    bearer_from_metadata,
)

__all__ = [
    "ALLOWED_ALGORITHMS",
    "DevIssuer",
    "JwksKeySet",
    "Principal",
    "REQUIRED_CLAIMS",
    "Role",
    "TokenVerifier",
    "VerificationKey",
    "bearer_from_metadata",
    "jwk_thumbprint",
]
