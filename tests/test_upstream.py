"""gateway.upstream: every gRPC status a connector can answer, for every operation, maps to one
pgw error (class, status sent to the requester, message), logs one warning, and lets the
connector's details text through only where the contract says so."""

from __future__ import annotations

from typing import get_args

import grpc
import pytest
from structlog.testing import capture_logs

from gateway.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    GatewayError,
    ResourceExhausted,
    Unavailable,
)
from gateway.privacy import PrivacyError
from gateway.status import to_status
from gateway.upstream import Operation, partner_failure

S = grpc.StatusCode
OPERATIONS: tuple[Operation, ...] = get_args(Operation)
#: A connector's details text; it must appear only where the table says "with details".
SAID = "cohort smaller than min_k 10; nothing released"
LESS = "partner bank answered more than the gateway accepts; "
REFUSED = "partner bank refused the release spec"
DOWN = "partner bank is unavailable; retry later"

#: (code, operation) -> (error class, status sent, message, connector details in the reason).
#: Codes not listed here are an outage: Unavailable for every operation.
TABLE: dict[tuple[S, str], tuple[type[GatewayError], S, str, bool]] = {
    (S.DEADLINE_EXCEEDED, "query"): (DeadlineExceeded, S.DEADLINE_EXCEEDED,
                                     "partner bank did not answer before the deadline", False),
    (S.DEADLINE_EXCEEDED, "compute"): (DeadlineExceeded, S.DEADLINE_EXCEEDED,
                                       "partner bank did not answer before the deadline", False),
    (S.DEADLINE_EXCEEDED, "join"): (
        DeadlineExceeded, S.DEADLINE_EXCEEDED,
        "partner bank did not finish the join before the deadline", False),
    (S.RESOURCE_EXHAUSTED, "query"): (ResourceExhausted, S.RESOURCE_EXHAUSTED,
                                      LESS + "ask for fewer subjects or fields", True),
    (S.RESOURCE_EXHAUSTED, "compute"): (ResourceExhausted, S.RESOURCE_EXHAUSTED,
                                        LESS + "ask for fewer subjects", True),
    (S.RESOURCE_EXHAUSTED, "join"): (ResourceExhausted, S.RESOURCE_EXHAUSTED,
                                     LESS + "join fewer items", True),
    **{(code, op): (FailedPrecondition, S.FAILED_PRECONDITION, REFUSED, False)
       for code in (S.PERMISSION_DENIED, S.UNAUTHENTICATED, S.INVALID_ARGUMENT)
       for op in ("query", "compute")},
    **{(code, "join"): (FailedPrecondition, S.FAILED_PRECONDITION,
                        "partner bank refused the join spec", True)
       for code in (S.PERMISSION_DENIED, S.UNAUTHENTICATED)},
    (S.INVALID_ARGUMENT, "join"): (PrivacyError, S.INVALID_ARGUMENT,
                                   f"partner bank rejected the join data: {SAID}", True),
    (S.FAILED_PRECONDITION, "query"): (Unavailable, S.UNAVAILABLE, DOWN, False),
    (S.FAILED_PRECONDITION, "compute"): (FailedPrecondition, S.FAILED_PRECONDITION,
                                         f"partner bank refused: {SAID}", True),
    (S.FAILED_PRECONDITION, "join"): (FailedPrecondition, S.FAILED_PRECONDITION,
                                      f"partner bank refused: {SAID}", True),
}
CODES = [code for code in S if code != S.OK]


def rpc_error(code: S, details: str | None = SAID) -> grpc.aio.AioRpcError:
    """A real client-side failure, as a connector call raises it."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


def expected(code: S, operation: str) -> tuple[type[GatewayError], S, str, bool]:
    return TABLE.get((code, operation), (Unavailable, S.UNAVAILABLE, DOWN, False))


def test_the_table_names_only_real_cells() -> None:
    assert {op for _, op in TABLE} == set(OPERATIONS) == {"query", "compute", "join"}
    assert {code for code, _ in TABLE} <= set(CODES)


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("code", CODES, ids=lambda c: c.name)
def test_every_code_maps_to_one_error(code: S, operation: Operation) -> None:
    cls, status, message, with_details = expected(code, operation)
    with capture_logs() as events:
        err = partner_failure("bank", rpc_error(code), operation=operation)
    assert type(err) is cls
    sent = to_status(err)
    assert (sent.code, sent.details) == (status, message)
    # the reason (logs, audit) says what the connector answered; a deadline's is its message
    assert err.reason.startswith(f"connector answered {code.name}") or err.reason == message
    assert (SAID in err.reason) is with_details
    assert events == [{"event": "connector_call_failed", "log_level": "warning",
                       "partner": "bank", "code": code.name, "operation": operation}]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("code", CODES, ids=lambda c: c.name)
def test_missing_details_never_print_none(code: S, operation: Operation) -> None:
    err = partner_failure("bank", rpc_error(code, details=None), operation=operation)
    assert "None" not in err.message and "None" not in err.reason
