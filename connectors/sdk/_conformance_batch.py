"""The conformance check of ``FetchBatch``: each item answered exactly as a lone Fetch would be.

The gateway coalesces the specs waiting for one partner into one ``FetchBatch`` call
(``gateway/_coalesce.py``), so a connector that checked its ``Fetch`` but not its batch path
would release under a tampered or replayed spec. The check sends three items: a valid spec, the
same spec tampered after signing, and the valid spec again (a replay); it wants the first
answered within its spec, the second refused, the third refused as a replay. A connector that
does not serve FetchBatch (``UNIMPLEMENTED``) passes: the gateway then sends every spec alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from connectors.sdk._conformance_checks import REFUSED
from connectors.sdk._spec import sign_spec
from gateway.pb.pgw.v1 import connector_pb2

if TYPE_CHECKING:
    from connectors.sdk._conformance_checks import Battery

__all__ = ["NAME", "batch"]

NAME = "FetchBatch answers each item as Fetch does"
_REFUSED = {code.value[0] for code in REFUSED}  # as google.rpc codes


async def batch(b: Battery) -> None:
    """Record whether ``b``'s connector answers a FetchBatch item by item (see the module)."""
    spec = b.spec()
    good = sign_spec(spec, b.key)
    tampered = connector_pb2.ReleaseSpec.FromString(good.spec)
    tampered.purpose += "-x"
    forged = connector_pb2.SignedReleaseSpec(
        spec=tampered.SerializeToString(deterministic=True), signature=good.signature,
        key_id=good.key_id)
    request = connector_pb2.FetchBatchRequest(requests=[
        connector_pb2.FetchRequest(signed_spec=s) for s in (good, forged, good)])
    try:
        answer = await b.stub.FetchBatch(request, timeout=b.timeout)
    except grpc.aio.AioRpcError as err:
        unimplemented = err.code() == grpc.StatusCode.UNIMPLEMENTED
        b.record(NAME, unimplemented, "not served: the gateway sends each spec as a Fetch"
                 if unimplemented else f"FetchBatch failed: {err.code().name}")
        return
    outcomes = list(answer.outcomes)
    if len(outcomes) != 3:
        b.record(NAME, False, f"got {len(outcomes)} outcomes for 3 items, want 3")
        return
    problems = []
    first = outcomes[0]
    if first.WhichOneof("outcome") != "answer":
        problems.append(f"valid item: got error {first.error.code}, want an answer")
    elif (why := b.shape(spec, first.answer)) is not None:
        problems.append(f"valid item: {why}")
    for what, outcome in (("tampered item", outcomes[1]), ("replayed item", outcomes[2])):
        if outcome.WhichOneof("outcome") != "error" or outcome.error.code not in _REFUSED:
            got = (f"{sum(len(r.values) for r in outcome.answer.rows)} values released"
                   if outcome.WhichOneof("outcome") == "answer"
                   else f"error {outcome.error.code}")
            problems.append(f"{what}: got {got}, want PERMISSION_DENIED or UNAUTHENTICATED")
    b.record(NAME, not problems, "; ".join(problems)
             or "valid item answered; tampered and replayed items refused")
