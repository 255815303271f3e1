"""Ask the partners' witnesses to cosign the audit log's checkpoints.

Every ``interval`` (and once more at shutdown) the gateway sends the latest checkpoint to each
connector's ``Cosign`` with a consistency proof from the size that witness last cosigned; the
cosignatures are stored beside the checkpoint and published by the Audit service. A witness
that refuses (inconsistent history) is logged loudly; officers see the missing cosignature.
"""

from __future__ import annotations

import asyncio

import grpc

from gateway.audit._log import AuditLog
from gateway.dispatch import ConnectorClients
from gateway.logs import get_logger
from gateway.pb.pgw.v1 import connector_pb2
from gateway.status import error_info

log = get_logger("pgw.witness")
WITNESS_TRIES = 6


class Witnessing:
    """Background cosigning rounds over all connectors."""

    def __init__(self, audit_log: AuditLog, clients: ConnectorClients, *,
                 interval_s: float = 1.0) -> None:
        self.log, self.clients, self.interval = audit_log, clients, interval_s
        self._known: dict[str, int] = {}   # partner -> size its witness holds
        self._task: asyncio.Task[None] | None = None
        self._round_lock = asyncio.Lock()   # one round at a time: overlapping rounds would
                                            # both start from stale witness sizes

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="witnessing")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.round()
            except Exception as exc:  # noqa: BLE001 - keep witnessing alive
                log.warning("witness_round_failed", exc_type=type(exc).__name__)

    async def round(self) -> int:
        """One cosigning round over the latest checkpoint; return how many witnesses signed."""
        async with self._round_lock:
            latest = self.log.latest_checkpoint()
            if latest is None:
                return 0
            size, note = latest
            results = await asyncio.gather(*(self._cosign(p, size, note)
                                             for p in self.clients.partners))
            return sum(results)

    async def _cosign(self, partner: str, size: int, note: str) -> bool:
        known = self._known.get(partner, 0)
        if known == size and known:
            return True
        # Retry after learning the witness's real size; several replicas moving the same
        # witness can make that answer stale again, hence a few tries, not just two.
        for _ in range(WITNESS_TRIES):
            proof = self.log.consistency_proof(known, size) if 0 < known <= size else []
            try:
                answer = await self.clients.cosign(partner, connector_pb2.CosignRequest(
                    checkpoint=note, old_size=known, consistency_proof=proof))
            except grpc.aio.AioRpcError as err:
                info = error_info(err, "WITNESS_SIZE")
                if info is not None and int(info["size"]) != known:
                    known = int(info["size"])
                    continue
                log.warning("witness_refused", partner=partner, code=err.code().name,
                            reason=err.details())
                return False
            await asyncio.to_thread(self.log.store.add_cosignature, size, partner,
                                    answer.cosignature)
            self._known[partner] = answer.size
            return True
        return False

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        try:
            await self.round()   # leave the final checkpoint cosigned
        except Exception as exc:  # noqa: BLE001
            log.warning("witness_round_failed", exc_type=type(exc).__name__)
