"""The security officers' API (role ``auditor`` only): checkpoints, entries, search, proofs.

Officers search by a person's id: the server turns it into the keyed pseudonym the entries
carry, so raw ids are never stored and never needed to answer "who accessed this person?".
Bulk entries keep their subjects in a subject set beside the entry: search reads a set only
for an entry that has one and matches the rest of the criteria, checks it against the entry's
digest (a set that does not match fails the search with DATA_LOSS naming the index, rather
than silently missing the person), and matches whole 32-byte items only: the person's set
item in a ``"v": 3`` entry, their HMAC pseudonym in an older ``"v": 2`` one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any

import grpc

from gateway._audit_sets import checked_set, set_parts
from gateway.audit._log import AuditLog
from gateway.audit._store import check_range, iter_entries
from gateway.audit_search import matches, names_person, search_criteria
from gateway.auth import Principal, Role, TokenVerifier, bearer_from_metadata
from gateway.errors import FieldViolation, InvalidArgument
from gateway.pb.pgw.v1 import audit_pb2, audit_pb2_grpc, common_pb2
from gateway.recorder import AuditRecorder
from gateway.status import rpc

MAX_PAGE = 1000


class AuditService(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, *, verifier: TokenVerifier, audit_log: AuditLog,
                 recorder: AuditRecorder) -> None:
        self.verifier, self.log, self.recorder = verifier, audit_log, recorder

    def _auditor(self, context: grpc.aio.ServicerContext) -> Principal:
        principal = self.verifier.verify(bearer_from_metadata(context.invocation_metadata()))
        principal.require(Role.AUDITOR)
        return principal

    def published_note(self, size: int, note: str) -> tuple[str, list[str]]:
        """The checkpoint note with its stored cosignature lines appended."""
        cosigs = self.log.store.cosignatures(size)
        return note + "".join(line for _, line in cosigs), [name for name, _ in cosigs]

    @rpc
    async def GetCheckpoint(self, request: audit_pb2.GetCheckpointRequest,
                            context: grpc.aio.ServicerContext,
                            rid: str) -> audit_pb2.GetCheckpointResponse:
        self._auditor(context)
        latest = self.log.latest_checkpoint()
        if latest is None:
            return audit_pb2.GetCheckpointResponse()
        note, names = await asyncio.to_thread(self.published_note, *latest)
        return audit_pb2.GetCheckpointResponse(checkpoint=note, size=latest[0], witnesses=names)

    @rpc
    async def GetEntries(self, request: audit_pb2.GetEntriesRequest,
                         context: grpc.aio.ServicerContext,
                         rid: str) -> audit_pb2.GetEntriesResponse:
        self._auditor(context)
        end = min(request.end, request.start + MAX_PAGE)
        check_range(request.start, end, self.log.size)
        entries = await asyncio.to_thread(self.log.store.read, request.start, end)
        return audit_pb2.GetEntriesResponse(entries=[
            audit_pb2.LogEntry(index=request.start + i, entry=e) for i, e in enumerate(entries)])

    @rpc
    async def Search(self, request: audit_pb2.SearchRequest, context: grpc.aio.ServicerContext,
                     rid: str) -> audit_pb2.SearchResponse:
        self._auditor(context)
        match = self._matcher(request)
        limit = min(request.limit or 100, MAX_PAGE)
        found = await asyncio.to_thread(lambda: list(_take(match, self.log, limit)))
        return audit_pb2.SearchResponse(entries=found)

    def _matcher(self, request: audit_pb2.SearchRequest) -> dict[str, Any]:
        return search_criteria(
            self.recorder.person_forms, requester_org=request.requester_org,
            purpose=request.purpose, partner=request.partner, decision=request.decision,
            time_from=request.time_from, time_to=request.time_to, subject=request.subject)

    @rpc
    async def GetInclusionProof(self, request: audit_pb2.GetInclusionProofRequest,
                                context: grpc.aio.ServicerContext,
                                rid: str) -> audit_pb2.GetInclusionProofResponse:
        self._auditor(context)
        size = await self._within_log("tree_size", request.tree_size)
        return audit_pb2.GetInclusionProofResponse(
            receipt=await asyncio.to_thread(self.receipt, request.index, size))

    async def _within_log(self, field: str, size: int) -> int:
        """``size`` (0: the latest checkpoint's) if this replica's tree reaches it, after one
        catch-up with entries other replicas appended; else INVALID_ARGUMENT naming ``field``.
        Checked before the store sees it: a uint64 past 2**63 is no SQL integer."""
        if not size:
            latest = self.log.latest_checkpoint()
            return latest[0] if latest else 0
        if size > self.log.size:
            await self.log.refresh()
        if size > self.log.size:
            raise InvalidArgument(FieldViolation(
                field, f"no checkpoint at size {size}: the log holds {self.log.size} entries"))
        return size

    def receipt(self, index: int, size: int) -> common_pb2.AuditReceipt:
        note = self.log.store.checkpoint_at(size)
        if note is None:
            raise InvalidArgument(FieldViolation("tree_size", f"no checkpoint at size {size}"))
        if index >= size:
            raise InvalidArgument(FieldViolation("index", f"got {index}, want < {size}"))
        entry = self.log.store.read(index, index + 1)[0]
        return common_pb2.AuditReceipt(
            leaf_index=index, tree_size=size, entry=entry, checkpoint=note,
            inclusion_proof=self.log.inclusion_proof(index, size), hash=self.log.hasher.name)

    @rpc
    async def GetConsistencyProof(self, request: audit_pb2.GetConsistencyProofRequest,
                                  context: grpc.aio.ServicerContext,
                                  rid: str) -> audit_pb2.GetConsistencyProofResponse:
        self._auditor(context)
        new = await self._within_log("new_size", request.new_size)
        note = await asyncio.to_thread(self.log.store.checkpoint_at, new)
        if note is None:
            raise InvalidArgument(FieldViolation("new_size", f"no checkpoint at size {new}"))
        if not 0 < request.old_size <= new:
            raise InvalidArgument(FieldViolation("old_size", f"want 0 < old_size <= {new}"))
        return audit_pb2.GetConsistencyProofResponse(
            old_size=request.old_size, new_size=new, checkpoint=note,
            proof=self.log.consistency_proof(request.old_size, new))

    async def Export(self, request: audit_pb2.ExportRequest,
                     context: grpc.aio.ServicerContext) -> AsyncIterator[audit_pb2.ExportResponse]:
        receipt = await _export_first(self, request, context)
        if receipt is None:
            return
        size, start, end = receipt
        for index, entry in iter_entries(self.log.store, start, end):
            yield audit_pb2.ExportResponse(
                entry=audit_pb2.LogEntry(index=index, entry=entry), tree_size=size,
                inclusion_proof=self.log.inclusion_proof(index, size))

    async def GetSubjectSet(self, request: audit_pb2.GetSubjectSetRequest,
                            context: grpc.aio.ServicerContext
                            ) -> AsyncIterator[audit_pb2.GetSubjectSetResponse]:
        blob = await _set_first(self, request, context)
        for part in set_parts(blob):
            yield audit_pb2.GetSubjectSetResponse(pseudonyms=part)


@rpc
async def _set_first(self: AuditService, request: audit_pb2.GetSubjectSetRequest,
                     context: grpc.aio.ServicerContext, rid: str) -> bytes:
    """Authorise, validate and read a subject set (errors mapped by ``rpc``)."""
    self._auditor(context)
    latest = self.log.latest_checkpoint()
    size = latest[0] if latest else 0
    if request.index >= size:
        raise InvalidArgument(FieldViolation("index", f"got {request.index}, want < {size} "
                                                      "(the latest checkpoint's size)"))
    return await asyncio.to_thread(checked_set, self.log.store, request.index)


@rpc
async def _export_first(self: AuditService, request: audit_pb2.ExportRequest,
                        context: grpc.aio.ServicerContext, rid: str) -> tuple[int, int, int] | None:
    """Authorise and validate an export (errors mapped by ``rpc``); the checkpoint size it uses."""
    self._auditor(context)
    latest = self.log.latest_checkpoint()
    if latest is None:
        return None
    size = latest[0]
    end = request.end or size
    check_range(request.start, end, size)
    return size, request.start, end


def _take(criteria: dict[str, Any], audit_log: AuditLog, limit: int
          ) -> Iterator[audit_pb2.LogEntry]:
    count = 0
    store = audit_log.store
    for index, data in iter_entries(store):
        entry = json.loads(data)
        if matches(entry, criteria) and names_person(
                entry, criteria, partial(checked_set, store, index, entry)):
            yield audit_pb2.LogEntry(index=index, entry=data)
            count += 1
            if count >= limit:
                return
