"""``FetchBatch``: several Fetch requests in one call, each settled exactly as a Fetch of it.

The gateway coalesces the specs waiting for one partner into one call (``gateway._coalesce``)
because a gRPC call costs far more CPU than verifying and answering a small spec. Only the
transport is shared: every item goes through the connector's one per-spec path
(``ConnectorService._release``: signature, freshness, replay, own agreement, subjects,
transforms), the items run concurrently, and an item's refusal or crash never touches another.
A failed item carries the status a unary Fetch of it would have ended with, built by the same
mapping (``gateway.status.settle``); no error text is made here.

Replay holds inside a batch too: each item verifies its spec before its first ``await``, and
the items start in request order, so of two items with one request id the second is refused.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence

from google.rpc import status_pb2

from gateway.errors import FieldViolation, InvalidArgument
from gateway.pb.pgw.v1 import connector_pb2
from gateway.status import settle

__all__ = ["MAX_BATCH", "Release", "fetch_batch"]

#: Most items one FetchBatch may carry; a larger batch is refused whole (the gateway never
#: sends more: ``gateway._coalesce`` uses this cap).
MAX_BATCH = 64
#: The per-spec path a batch item goes through: the very one a unary Fetch uses.
Release = Callable[[connector_pb2.SignedReleaseSpec], Awaitable[connector_pb2.FetchResponse]]


async def fetch_batch(release: Release, requests: Sequence[connector_pb2.FetchRequest]
                      ) -> connector_pb2.FetchBatchResponse:
    """Settle every request with ``release``, concurrently; outcomes in request order."""
    if len(requests) > MAX_BATCH:
        raise InvalidArgument(FieldViolation(
            "requests", f"got {len(requests)} items, want at most {MAX_BATCH}"))
    settled = await asyncio.gather(*(
        settle(functools.partial(release, r.signed_spec), method="FetchBatch")
        for r in requests))
    return connector_pb2.FetchBatchResponse(outcomes=[_outcome(s) for s in settled])


def _outcome(settled: connector_pb2.FetchResponse | status_pb2.Status
             ) -> connector_pb2.FetchOutcome:
    if isinstance(settled, status_pb2.Status):
        return connector_pb2.FetchOutcome(error=connector_pb2.FetchError(
            code=settled.code, message=settled.message, details=settled.details))
    return connector_pb2.FetchOutcome(answer=settled)
