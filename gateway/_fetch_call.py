"""One gateway-to-connector ``Fetch`` or ``FetchBatch`` call, with its failures kept as values.

Why values: a FetchBatch's outcomes go to many callers, each in its own task, and each caller
turns its own outcome into its answer or its :class:`GatewayError` (:func:`raise_or_return`).
So the one mapping, ``gateway.upstream.partner_failure``, runs once per spec whether the spec
travelled alone or in a batch, and logs its warning per spec as before. A failed batch item
comes back as the ``grpc.aio.AioRpcError`` a unary Fetch of it would have raised (code, message
and ``google.rpc`` details), so nothing downstream can tell the two transports apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import grpc

from gateway.errors import UpstreamViolation
from gateway.metrics import CONNECTOR_BATCH_ITEMS, CONNECTOR_CALL_SECONDS
from gateway.pb.pgw.v1 import connector_pb2, connector_pb2_grpc
from gateway.upstream import partner_failure

__all__ = ["Outcome", "fetch_batch", "fetch_one", "raise_or_return"]

#: What one spec's call ended with: the answer, the connector's status, or another failure.
Outcome: TypeAlias = connector_pb2.FetchResponse | grpc.aio.AioRpcError | Exception
_CODES = {code.value[0]: code for code in grpc.StatusCode}
_DETAILS_KEY = "grpc-status-details-bin"


async def fetch_one(stub: connector_pb2_grpc.ConnectorServiceStub, partner: str,
                    signed: connector_pb2.SignedReleaseSpec, timeout: float) -> Outcome:
    """A unary Fetch of one spec."""
    CONNECTOR_BATCH_ITEMS.observe(1, partner=partner)
    try:
        with CONNECTOR_CALL_SECONDS.time(partner=partner, method="Fetch"):
            answer = await stub.Fetch(connector_pb2.FetchRequest(signed_spec=signed),
                                      timeout=timeout)
    except grpc.aio.AioRpcError as err:
        return err
    if answer is None:  # grpc.aio answers None (and logs) for bytes it cannot decode
        return _undecodable(partner, "FetchResponse")
    return answer  # type: ignore[no-any-return]


async def fetch_batch(stub: connector_pb2_grpc.ConnectorServiceStub, partner: str,
                      specs: Sequence[connector_pb2.SignedReleaseSpec],
                      timeout: float) -> list[Outcome] | None:
    """One FetchBatch of ``specs``: an outcome per spec, in order; ``None`` if the connector
    has no FetchBatch (``UNIMPLEMENTED``: its handler never ran, so it saw none of them)."""
    CONNECTOR_BATCH_ITEMS.observe(len(specs), partner=partner)
    request = connector_pb2.FetchBatchRequest(
        requests=[connector_pb2.FetchRequest(signed_spec=s) for s in specs])
    try:
        with CONNECTOR_CALL_SECONDS.time(partner=partner, method="FetchBatch"):
            response = await stub.FetchBatch(request, timeout=timeout)
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.UNIMPLEMENTED:
            return None
        return [err] * len(specs)   # the whole call failed: each item as a failed Fetch
    if response is None:
        return [_undecodable(partner, "FetchBatchResponse") for _ in specs]
    if len(response.outcomes) != len(specs):
        return [UpstreamViolation(
            f"partner {partner} answered outside the release spec",
            reason=f"{partner}: {len(response.outcomes)} batch outcomes for {len(specs)} specs")
            for _ in specs]
    return [_outcome(partner, o) for o in response.outcomes]


def raise_or_return(partner: str, outcome: Outcome) -> connector_pb2.FetchResponse:
    """The caller's side: its answer, or the error tree's version of what went wrong."""
    if isinstance(outcome, connector_pb2.FetchResponse):
        return outcome
    if isinstance(outcome, grpc.aio.AioRpcError):
        raise partner_failure(partner, outcome, operation="query") from None
    raise outcome


def _outcome(partner: str, outcome: connector_pb2.FetchOutcome) -> Outcome:
    which = outcome.WhichOneof("outcome")
    if which == "answer":
        return outcome.answer
    error = outcome.error
    if which != "error" or error.code == 0:
        return UpstreamViolation(f"partner {partner} answered outside the release spec",
                                 reason=f"{partner}: batch outcome with no answer and no error")
    code = _CODES.get(error.code)
    # FetchError is google.rpc.Status field for field: its bytes are the status details
    trailing = (grpc.aio.Metadata((_DETAILS_KEY, error.SerializeToString())) if code
                else grpc.aio.Metadata())
    return grpc.aio.AioRpcError(code or grpc.StatusCode.UNKNOWN, grpc.aio.Metadata(), trailing,
                                details=error.message)


def _undecodable(partner: str, what: str) -> UpstreamViolation:
    return UpstreamViolation(f"partner {partner} answered bytes that are not a {what}",
                             reason=f"undecodable answer from {partner}")
