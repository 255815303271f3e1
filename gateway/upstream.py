"""A partner connector's gRPC failure, mapped into the pgw error tree in one place.

The Query path (``dispatch``: ``Describe`` and ``Fetch``), encrypted compute (``_compute_he``:
``Encrypt``; ``_compute_aggregate``: ``Aggregate``) and private joins (``join_service``) all
dial connectors; a failed call enters here as a ``grpc.aio.AioRpcError`` and leaves as a
:class:`GatewayError`, whose code ``gateway.status`` sends to the requester:

====================  ====================  ====================  ======================
connector answered    query                 compute               join
====================  ====================  ====================  ======================
DEADLINE_EXCEEDED     DeadlineExceeded      DeadlineExceeded      DeadlineExceeded
RESOURCE_EXHAUSTED    ResourceExhausted     ResourceExhausted     ResourceExhausted
PERMISSION_DENIED,    FailedPrecondition    FailedPrecondition    FailedPrecondition
UNAUTHENTICATED       (spec refused)        (spec refused)        (spec refused)
INVALID_ARGUMENT      FailedPrecondition    FailedPrecondition    PrivacyError
                      (spec refused)        (spec refused)        (with details)
FAILED_PRECONDITION   Unavailable           FailedPrecondition    FailedPrecondition
                                            (with details)        (with details)
anything else         Unavailable           Unavailable           Unavailable
====================  ====================  ====================  ======================

A connector's details text is personal-data-free by the connector's own rules; it reaches the
requester only where the connector's refusal *is* the answer ("cohort smaller than min_k", a
join's bad data). Reasons (logs, audit) also carry it for RESOURCE_EXHAUSTED and for a join's
refused spec. Every failure logs one ``connector_call_failed`` warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import grpc

from gateway.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    GatewayError,
    ResourceExhausted,
    Unavailable,
)
from gateway.logs import get_logger

__all__ = ["REFUSALS", "Operation", "partner_failure"]

log = get_logger("pgw.upstream")
Operation = Literal["query", "compute", "join"]
#: A spec refused by the connector: it does not grant, or does not trust, what was signed.
REFUSALS = frozenset({grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
                      grpc.StatusCode.INVALID_ARGUMENT})


@dataclass(frozen=True)
class _Wording:
    """How the messages of one operation name what the partner did not do."""

    late: str  #: what the partner did not do before the deadline
    spec: str  #: the spec it refused
    less: str  #: how to ask for less after RESOURCE_EXHAUSTED
    refusal_details: bool  #: whether a refused spec's reason carries the connector's details


_WORDING: dict[Operation, _Wording] = {
    "query": _Wording("answer", "release spec", "ask for fewer subjects or fields", False),
    "compute": _Wording("answer", "release spec", "ask for fewer subjects", False),
    "join": _Wording("finish the join", "join spec", "join fewer items", True),
}


def partner_failure(partner: str, err: grpc.aio.AioRpcError, *,
                    operation: Operation) -> GatewayError:
    """``err``, from ``partner``'s connector during ``operation``, in the pgw error tree.

    Raise the result ``from None``: the grpc error is third-party and stays out of tracebacks.
    """
    code, said, words = err.code(), err.details() or "", _WORDING[operation]
    log.warning("connector_call_failed", partner=partner, code=code.name, operation=operation)
    answered = f"connector answered {code.name}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"partner {partner} did not {words.late} before the deadline")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:  # e.g. an answer over MAX_MESSAGE
        return ResourceExhausted(f"partner {partner} answered more than the gateway accepts; "
                                 f"{words.less}", reason=f"{answered}: {said}")
    if code == grpc.StatusCode.INVALID_ARGUMENT and operation == "join":
        # imported here so the Query path does not load TenSEAL
        from gateway.privacy import PrivacyError
        return PrivacyError(f"partner {partner} rejected the join data: {said}",
                            reason=f"{answered}: {said}")
    if code in REFUSALS:
        return FailedPrecondition(f"partner {partner} refused the {words.spec}",
                                  reason=f"{answered}: {said}" if words.refusal_details
                                  else answered)
    # The SDK's Describe and Fetch never refuse with FAILED_PRECONDITION: a query keeps
    # treating it as an outage.
    if code == grpc.StatusCode.FAILED_PRECONDITION and operation != "query":
        return FailedPrecondition(f"partner {partner} refused: {said}",
                                  reason=f"{answered}: {said}")
    return Unavailable(f"partner {partner} is unavailable; retry later", reason=answered)
