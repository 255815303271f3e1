"""Who is calling: the roles a token may grant and the authenticated principal.

A :class:`Principal` is what the rest of the gateway sees once a bearer token has
been verified; it never sees the token itself. Role checks go through
:meth:`Principal.require`, which raises :class:`~gateway.errors.PermissionDenied`
naming both the roles needed and the roles the token carries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from gateway.errors import PermissionDenied


class Role(StrEnum):
    """The four roles a pgw token may carry (DESIGN.md, "Who uses it")."""

    REQUESTER = "requester"
    AUDITOR = "auditor"
    POLICY_ADMIN = "policy-admin"
    INTEGRATOR = "integrator"

    @classmethod
    def parse(cls, value: object) -> Role:
        """Return the role named ``value``; raise ``ValueError`` for anything unknown."""
        if isinstance(value, Role):
            return value
        if not isinstance(value, str):
            raise ValueError(f"role must be a string, got {type(value).__name__}")
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(r.value for r in cls)
            raise ValueError(f"unknown role {value!r}; want one of {known}") from None


def _names(roles: Iterable[Role]) -> str:
    names = sorted(r.value for r in roles)
    return ", ".join(names) if names else "no roles"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, built only from a verified token.

    ``token_id`` is the token's ``jti`` (for audit and replay bookkeeping) and
    ``key_id`` the ``kid`` of the key that verified it.
    """

    org: str
    subject: str
    roles: frozenset[Role]
    token_id: str
    key_id: str

    def has(self, *roles: Role) -> bool:
        """True if the principal holds at least one of ``roles``."""
        return any(r in self.roles for r in roles)

    def require(self, *roles: Role) -> None:
        """Raise ``PermissionDenied`` unless the principal holds one of ``roles``.

        >>> Principal("hpf", "alice", frozenset({Role.REQUESTER}), "j", "k").require(
        ...     Role.AUDITOR)
        Traceback (most recent call last):
        gateway.errors.PermissionDenied: requires role auditor; token has requester
        """
        if not roles:
            raise ValueError("require() needs at least one role")
        if self.has(*roles):
            return
        wanted = " or ".join(sorted(r.value for r in roles))
        message = f"requires role {wanted}; token has {_names(self.roles)}"
        raise PermissionDenied(message, reason=f"{message} (org {self.org})")
