"""One error tree for pgw.

Every error that may cross a service boundary is a :class:`GatewayError` subclass that
carries its gRPC status code. One interceptor (``gateway.interceptors``) maps them to a
status plus ``google.rpc`` details; nothing else in the code base calls ``context.abort``.

Messages must never contain raw personal data (ids, names, amounts): they name the
offending *field* and say what was expected, in got/want form.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2

DOMAIN = "pgw.gov.cn"


@dataclass(frozen=True)
class FieldViolation:
    """One offending request field, reported as a google.rpc.BadRequest violation."""

    field: str
    description: str


class GatewayError(Exception):
    """Base of all pgw errors. ``code`` is the gRPC status the error maps to."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    #: The message shown to the caller; subclasses may keep it generic.
    public_message: str | None = None

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: A precise reason for logs and the audit log (never personal data).
        self.reason = reason or message

    def outward_message(self) -> str:
        return self.public_message or self.message

    def details(self) -> list[Message]:
        """``google.rpc`` detail messages sent with the status (none by default)."""
        return []


def error_info(reason: str, **metadata: str) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)


class InvalidArgument(GatewayError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: list[FieldViolation] | FieldViolation) -> None:
        if isinstance(violations, FieldViolation):
            violations = [violations]
        self.violations = list(violations)
        names = ", ".join(v.field for v in self.violations)
        detail = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(f"invalid request ({names}): {detail}")

    def details(self) -> list[Message]:
        return [error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in self.violations])]


class Unauthenticated(GatewayError):
    """Outward message stays generic; the precise reason goes to logs and audit."""

    code = grpc.StatusCode.UNAUTHENTICATED
    public_message = "authentication failed: present a valid bearer token"


class PermissionDenied(GatewayError):
    code = grpc.StatusCode.PERMISSION_DENIED

    def __init__(self, message: str, *, refused_fields: list[str] | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.refused_fields = list(refused_fields or [])

    def details(self) -> list[Message]:
        if not self.refused_fields:
            return []
        return [error_info("FIELDS_NOT_GRANTED", refused_fields=",".join(self.refused_fields))]


class NotFound(GatewayError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(GatewayError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(GatewayError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(GatewayError):
    """A dependency (audit store, connector) cannot be reached: fail closed."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(GatewayError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class UpstreamViolation(GatewayError):
    """A connector answered outside its signed spec (extra field, wrong shape)."""

    code = grpc.StatusCode.INTERNAL
    public_message = "a partner answered outside the release spec; nothing was released"


class ConfigError(GatewayError):
    """Bad configuration or agreement files; raised at start-up and by ``lint``."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class AuditDataLoss(GatewayError):
    """Stored audit data is missing or corrupt (a subject set that does not match its entry's
    digest): an answer built on it would be wrong, so none is given. Names the entry index,
    never its content; ``pgw audit verify`` tells the officer the rest."""

    code = grpc.StatusCode.DATA_LOSS


class AuditUnavailable(Unavailable):
    public_message = "the audit log cannot be written; nothing was released, retry later"
