"""Coalesced Fetch calls: the specs waiting for one partner share one gRPC call.

Every Query sends one signed spec to each partner it reads, and a grpc.aio call costs about
0.2 ms of CPU on each side: with many queries in flight the calls, not the work, bound the
gateway. So, per partner, while fewer than ``max_inflight`` calls are in flight a spec goes out
at once as a plain ``Fetch`` (an idle gateway behaves exactly as before); otherwise it queues,
and when a call completes everything queued (up to :data:`MAX_BATCH` items and
:data:`MAX_BATCH_SPEC_BYTES`) goes out as one ``FetchBatch``.

Only the transport is shared. Each spec is signed for its own query and verified,
replay-checked and answered by the connector on its own; each caller gets its own answer or the
error a Fetch of its spec would have given (``gateway.upstream.partner_failure``, per item), and
the caller still checks its answer against its spec. A failed call fails each of its items as a
failed Fetch would.

* A full batch goes out at once whatever is in flight, so a slow partner's throughput is not
  capped at ``max_inflight`` batches per answer time.
* Deadlines: a batch's timeout is the latest deadline among its items (each already capped by
  the configured timeout), and each caller stops waiting at its own deadline.
* Cancellation: a caller leaving while its spec is queued takes the spec out of the queue
  (never sent); a call whose callers have all left is cancelled, as a lone Fetch is.
* A connector answering ``UNIMPLEMENTED`` to FetchBatch (an older SDK) gets those items, and
  every spec after them, as plain Fetch calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from connectors.sdk._fetch_batch import MAX_BATCH
from gateway._fetch_call import Outcome, fetch_batch, fetch_one, raise_or_return
from gateway.logs import get_logger
from gateway.pb.pgw.v1 import connector_pb2, connector_pb2_grpc

__all__ = ["DEFAULT_MAX_INFLIGHT", "MAX_BATCH", "MAX_BATCH_SPEC_BYTES", "FetchLanes"]

log = get_logger("pgw.dispatch")
#: Calls in flight per partner before specs queue for a FetchBatch ([gateway]
#: connector_max_inflight); a large value turns coalescing off. 1 measured best
#: (bench/query_path.py, docs/benchmarks.md): with 2 or more, most specs find a free slot and
#: go alone, and the batches stay too small to pay for themselves.
DEFAULT_MAX_INFLIGHT = 1
#: Most signed-spec bytes in one batch (its first item goes whatever its size): a proxy for
#: the answers' size, which must stay under the 16 MiB message limit. An answer is a few times
#: its spec per field released (measured: 50 subjects x 4 fields, 1.4 kB of spec, 14 kB of
#: answer), so 256 KiB of specs stays far below the limit; a batch whose answers overflow it
#: anyway fails each item with RESOURCE_EXHAUSTED, as an oversized lone answer does.
MAX_BATCH_SPEC_BYTES = 256 * 1024
Stubs = Callable[[str], connector_pb2_grpc.ConnectorServiceStub]


@dataclass(eq=False)
class _Item:
    """One caller's spec on its way: its deadline (loop time) and where its outcome lands."""

    signed: connector_pb2.SignedReleaseSpec
    deadline: float
    done: asyncio.Future[Outcome]
    call: asyncio.Task[None] | None = None   #: the call carrying it, once sent
    batch: list[_Item] = field(default_factory=list)  #: every item of that call


@dataclass(eq=False)
class _Lane:
    """One partner's calls in flight and specs waiting."""

    inflight: int = 0
    queue: deque[_Item] = field(default_factory=deque)
    queued_bytes: int = 0    #: signed-spec bytes in ``queue``
    batching: bool = True    #: False once the connector answered UNIMPLEMENTED to FetchBatch
    calls: set[asyncio.Task[None]] = field(default_factory=set)

    def full(self) -> bool:
        """Whether the queue holds a whole batch."""
        return len(self.queue) >= MAX_BATCH or self.queued_bytes >= MAX_BATCH_SPEC_BYTES


class FetchLanes:
    """Per-partner Fetch dispatch with coalescing; ``fetch`` raises what a lone Fetch raised."""

    def __init__(self, stubs: Stubs, *, max_inflight: int = DEFAULT_MAX_INFLIGHT) -> None:
        if max_inflight < 1:
            raise ValueError(f"max_inflight: got {max_inflight}, want >= 1")
        self._stubs, self._max = stubs, max_inflight
        self._lanes: dict[str, _Lane] = {}

    async def fetch(self, partner: str, signed: connector_pb2.SignedReleaseSpec,
                    timeout: float) -> connector_pb2.FetchResponse:
        """``partner``'s answer to ``signed`` within ``timeout`` seconds, or its GatewayError."""
        lane = self._lanes.get(partner)
        if lane is None:
            lane = self._lanes[partner] = _Lane()
        if lane.inflight < self._max or not lane.batching:
            lane.inflight += 1
            try:  # in the caller's own task: cancelling the caller cancels the call
                outcome = await fetch_one(self._stubs(partner), partner, signed, timeout)
            finally:
                lane.inflight -= 1
                self._drain(partner, lane)
        else:
            outcome = await self._queued(partner, lane, signed, timeout)
        return raise_or_return(partner, outcome)

    async def _queued(self, partner: str, lane: _Lane, signed: connector_pb2.SignedReleaseSpec,
                      timeout: float) -> Outcome:
        loop = asyncio.get_running_loop()
        item = _Item(signed, loop.time() + timeout, loop.create_future())
        lane.queue.append(item)
        lane.queued_bytes += len(signed.spec)
        if lane.full():
            self._drain(partner, lane)
        try:
            async with asyncio.timeout(timeout):
                return await item.done
        except TimeoutError:
            return grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                        details="Deadline Exceeded")
        finally:
            if item.done.cancelled():   # the caller left: cancelled, or its deadline passed
                self._abandon(lane, item)

    def _abandon(self, lane: _Lane, item: _Item) -> None:
        if item.call is None:
            with contextlib.suppress(ValueError):   # aclose may have emptied the queue
                lane.queue.remove(item)             # never sent
                lane.queued_bytes -= len(item.signed.spec)
        elif all(i.done.cancelled() for i in item.batch):
            item.call.cancel()          # nobody waits for this call any more

    def _drain(self, partner: str, lane: _Lane) -> None:
        """Send what is queued while the lane has room, and any full batch at once (so a slow
        partner's throughput is not capped at ``max_inflight`` batches per answer time);
        everything, once batching is off."""
        while lane.queue and (lane.inflight < self._max or not lane.batching or lane.full()):
            items = [lane.queue.popleft()]
            size = len(items[0].signed.spec)
            while (lane.queue and len(items) < MAX_BATCH
                   and size + len(lane.queue[0].signed.spec) <= MAX_BATCH_SPEC_BYTES):
                size += len(lane.queue[0].signed.spec)
                items.append(lane.queue.popleft())
            lane.queued_bytes -= size
            lane.inflight += 1
            task = asyncio.get_running_loop().create_task(self._call(partner, lane, items))
            lane.calls.add(task)
            for item in items:
                item.call, item.batch = task, items

    async def _call(self, partner: str, lane: _Lane, items: list[_Item]) -> None:
        """One call for ``items`` (a batch, or Fetch for one); each outcome to its caller."""
        outcomes: list[Outcome] = []
        try:
            loop = asyncio.get_running_loop()
            left = [max(0.001, i.deadline - loop.time()) for i in items]
            stub = self._stubs(partner)
            got = None
            if len(items) > 1 and lane.batching:
                got = await fetch_batch(stub, partner, [i.signed for i in items], max(left))
                if got is None:   # an older connector: these items and all later as Fetch
                    lane.batching = False
                    log.info("connector_without_fetch_batch", partner=partner)
            if got is None:
                got = list(await asyncio.gather(*(fetch_one(stub, partner, i.signed, t)
                                                  for i, t in zip(items, left, strict=True))))
            outcomes = got
        except Exception as exc:  # noqa: BLE001 - handed to each caller, who raises it
            outcomes = [exc] * len(items)
        finally:  # cancelled (no outcomes): any caller still waiting sees CANCELLED
            cancelled = grpc.aio.AioRpcError(grpc.StatusCode.CANCELLED)
            for n, item in enumerate(items):
                if not item.done.done():
                    item.done.set_result(outcomes[n] if n < len(outcomes) else cancelled)
            lane.inflight -= 1
            lane.calls.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._drain(partner, lane)

    async def aclose(self) -> None:
        """Cancel the calls in flight; queued callers are released with ``CANCELLED``."""
        for lane in self._lanes.values():
            for item in lane.queue:
                if not item.done.done():
                    item.done.set_result(grpc.aio.AioRpcError(grpc.StatusCode.CANCELLED))
            lane.queue.clear()
            lane.queued_bytes = 0
            calls = list(lane.calls)
            for task in calls:
                task.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
        self._lanes.clear()
