"""Errors raised by the privacy primitives, mapped onto the one pgw error tree.

Third-party failures (TenSEAL, OpenSSL through ``cryptography``) are converted where they enter,
so callers see one opaque :class:`PrivacyError` that names what was wrong in got/want form and
never carries personal data (no items, no values).
"""

from __future__ import annotations

import grpc

from gateway.errors import GatewayError


class PrivacyError(GatewayError):
    """Malformed or unacceptable cryptographic material (context, ciphertext, point, key)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class BelowMinimum(PrivacyError):
    """A cohort or intersection is smaller than the agreement's minimum: nothing is released."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, what: str, *, got: int, minimum: int) -> None:
        super().__init__(f"{what}: got {got}, want at least {minimum}; nothing released")
        self.got = got
        self.minimum = minimum
