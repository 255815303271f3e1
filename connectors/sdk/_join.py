"""The partner's side of a private join, and the wire helpers shared by the three parties.

``PartnerJoinService`` runs in the partner's network next to the ``ConnectorService``. A job
opens with a gateway-signed ReleaseSpec (operation ``join``); the connector verifies it, checks
it against its *own* agreement copy (purpose, org, validity, join grant: mode and output,
requester set size, the aggregate grant and its ``min_k`` for intersection-sum), reads its set
of people from its own database (the agreement's ``where``, never the spec's), and answers:

* ecdh-psi: a fresh scalar b per job; (H(x)^a)^b for each requester point (in the requester's
  order for membership, shuffled otherwise) and H(y)^b for its own people, shuffled; for
  intersection-sum also Enc_R(v_y), slot j of ciphertext i for point 4096 i + j.
* keyed-hash: an ephemeral X25519 key; HMAC_K(y) for its own people, shuffled.

Blinding and HMACs run in a spawned :class:`PsiPool`; chunks are pipelined so the pool always
has work while the gateway streams.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import hashlib
import hmac
import importlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from connectors.sdk._schema import Schema
from connectors.sdk._spec import SpecVerifier
from gateway.errors import FailedPrecondition, GatewayError, InvalidArgument, FieldViolation
from gateway.errors import NotFound, PermissionDenied
from gateway.logs import bind_request_id, get_logger
from gateway.pb.pgw.v1 import connector_pb2, join_pb2, join_pb2_grpc
from gateway.policy import Agreement, PolicySet, check_spec_against
from gateway.privacy import (
    KeyedJob,
    PrivacyError,
    PsiKey,
    PsiPool,
    PublicContext,
    Scheme,
    encrypt_column,
    hash_to_point,
    shuffle,
)
from gateway.status import new_request_id, to_status

log = get_logger("pgw.join")

POINT = 32
#: Points per chunk on the wire by default (512 KiB) and at most (2 MiB).
CHUNK_ITEMS = 16384
MAX_CHUNK_ITEMS = 65536
#: Byte strings (HE material, ciphertexts) travel in pieces of at most this size.
BYTES_CHUNK = 1 << 20
#: gRPC message ceiling for join streams, both directions, all three parties.
MAX_JOIN_MESSAGE = 4 * 1024 * 1024
#: Hard ceiling on either set in one job, whatever an agreement says.
MAX_JOIN_ITEMS = 1 << 22
#: Below this much work (points to blind or HMAC), a job runs in a thread, not the pool.
POOL_THRESHOLD = 8192
#: Chunks a party keeps in flight in its pool (bounded memory, always some queued work).
WINDOW = 4
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MAX_JOIN_MESSAGE),
                   ("grpc.max_send_message_length", MAX_JOIN_MESSAGE)]

MODES = {join_pb2.JOIN_MODE_ECDH_PSI: "ecdh-psi", join_pb2.JOIN_MODE_KEYED_HASH: "keyed-hash"}
OUTPUTS = {join_pb2.JOIN_OUTPUT_MEMBERSHIP: "membership",
           join_pb2.JOIN_OUTPUT_CARDINALITY: "cardinality",
           join_pb2.JOIN_OUTPUT_INTERSECTION_SUM: "intersection-sum"}
MODE_OF = {v: k for k, v in MODES.items()}
OUTPUT_OF = {v: k for k, v in OUTPUTS.items()}


# ---------------------------------------------------------------------------- wire helpers

def split(packed: bytes, size: int = POINT) -> list[bytes]:
    """Concatenated fixed-size values -> list (raises PrivacyError on a ragged length)."""
    if len(packed) % size:
        raise PrivacyError(f"packed points: got {len(packed)} bytes, want a multiple of {size}")
    return [packed[i:i + size] for i in range(0, len(packed), size)]


def chunk_of(offset: int, values: Sequence[bytes]) -> join_pb2.PointChunk:
    return join_pb2.PointChunk(offset=offset, packed=b"".join(values))


def byte_chunks(data: bytes) -> list[join_pb2.BytesChunk]:
    """``data`` cut into :data:`BYTES_CHUNK` pieces, the last one flagged."""
    pieces = [data[i:i + BYTES_CHUNK] for i in range(0, len(data), BYTES_CHUNK)] or [b""]
    return [join_pb2.BytesChunk(data=p, last=i == len(pieces) - 1) for i, p in enumerate(pieces)]


def item_bytes(person_id: str) -> bytes:
    """What both sides hash or HMAC for a (normalised) person id."""
    return person_id.encode("ascii")


def hmac_packed(key: bytes, items: Sequence[bytes]) -> bytes:
    """Pool worker: concatenated HMAC-SHA256 tags of ``items`` under ``key``."""
    base = hmac.new(key, digestmod=hashlib.sha256)
    out = []
    for item in items:
        mac = base.copy()
        mac.update(item)
        out.append(mac.digest())
    return b"".join(out)


def hash_and_blind(key: PsiKey, items: Sequence[bytes], pool: PsiPool | None) -> list[bytes]:
    """H(item)^key for ``items`` (run in a thread: hashing here, blinding on the pool)."""
    return key.blind_many([hash_to_point(i) for i in items], pool=pool, chunk=max(1, len(items)))


def blind(key: PsiKey, points: Sequence[bytes], pool: PsiPool | None) -> list[bytes]:
    return key.blind_many(points, pool=pool, chunk=max(1, len(points)))


async def pipelined(jobs: AsyncIterator[Callable[[], Any]] | Sequence[Callable[[], Any]],
                    emit: Callable[[Any], Awaitable[None]], window: int = WINDOW) -> None:
    """Run blocking jobs in threads, at most ``window`` at once, emitting results in order."""
    pending: list[asyncio.Future[Any]] = []
    try:
        if isinstance(jobs, Sequence):
            for job in jobs:
                pending.append(asyncio.ensure_future(asyncio.to_thread(job)))
                while len(pending) >= window:
                    await emit(await pending.pop(0))
        else:
            async for job in jobs:
                pending.append(asyncio.ensure_future(asyncio.to_thread(job)))
                while len(pending) >= window or (pending and pending[0].done()):
                    await emit(await pending.pop(0))
        while pending:
            await emit(await pending.pop(0))
    finally:
        for f in pending:
            f.cancel()


def stream_rpc(method: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """The streaming twin of :func:`gateway.status.rpc`: request id, logging, error mapping.

    The wrapped method takes ``(self, request_iterator, context, rid)`` and writes its answers
    with ``context.write``. A :class:`GatewayError` becomes its status with ``google.rpc``
    details; anything else a bare INTERNAL, never a stack trace.
    """

    @functools.wraps(method)
    async def wrapper(self: Any, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        rid = new_request_id()
        bind_request_id(rid)
        started = time.perf_counter()
        name = method.__name__
        try:
            await method(self, request_iterator, context, rid)
        except GatewayError as err:
            status = to_status(err)
            log.info("rpc_refused", method=name, code=err.code.name, reason=err.reason,
                     duration_ms=round((time.perf_counter() - started) * 1000, 2))
            await context.abort(status.code, status.details, status.trailing_metadata)
        except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # noqa: BLE001 - last line of defence: no stack trace outward
            log.error("rpc_internal_error", method=name, exc_info=exc)
            await context.abort(grpc.StatusCode.INTERNAL,
                                f"internal error (request id {rid}); the operators have the log")
        else:
            log.debug("rpc_ok", method=name, code="OK",
                      duration_ms=round((time.perf_counter() - started) * 1000, 2))

    return wrapper


# ---------------------------------------------------------------------------- grant checks

def sum_grant(agreement: Agreement, value_field: str) -> tuple[str, int] | str:
    """(field, min_k) of the aggregate grant usable for intersection-sum, or why not."""
    usable = [g for g in agreement.fields if g.transform == "aggregate"
              and "intersection-sum" in (g.param_dict.get("ops") or ())]
    if value_field:
        usable = [g for g in usable if g.field == value_field]
    if len(usable) != 1:
        what = f"field {value_field}" if value_field else "exactly one field"
        return f"intersection-sum needs {what} granted as aggregate with op intersection-sum " \
               f"by {agreement.label}"
    return usable[0].field, int(usable[0].param_dict["min_k"])


def join_problems(agreement: Agreement, mode: str, output: str) -> list[str]:
    """Why the agreement's join grant does not cover (mode, output); empty if it does."""
    grant = agreement.join
    if grant is None:
        return [f"{agreement.label} grants no private join"]
    problems = []
    if mode not in grant.modes:
        problems.append(f"join mode {mode} not granted by {agreement.label} "
                        f"(granted: {', '.join(grant.modes)})")
    if output not in grant.outputs:
        problems.append(f"join output {output} not granted by {agreement.label} "
                        f"(granted: {', '.join(grant.outputs)})")
    if mode == "keyed-hash" and output == "intersection-sum":
        problems.append("intersection-sum needs mode ecdh-psi")
    return problems


# ---------------------------------------------------------------------------- partner's set

class JoinSet(abc.ABC):
    """The partner's people for joins: ids (and a value) of the rows matching ``where``."""

    @abc.abstractmethod
    async def members(self, where: Sequence[tuple[str, Any]],
                      value_field: str | None) -> list[tuple[str, float]]:
        """(person id, value or 0.0) for each distinct person whose row matches ``where``."""


class InMemoryJoinSet(JoinSet):
    """Rows in a dict: the unit-test seam."""

    def __init__(self, rows: Mapping[str, Mapping[str, Any]]) -> None:
        self._rows = {k: dict(v) for k, v in rows.items()}

    async def members(self, where: Sequence[tuple[str, Any]],
                      value_field: str | None) -> list[tuple[str, float]]:
        return [(pid, float(row.get(value_field) or 0.0) if value_field else 0.0)
                for pid, row in self._rows.items()
                if all(row.get(k) == v for k, v in where)]


class SqliteJoinSet(JoinSet):
    """The partner's SQLite table, opened read-only, one parameterised query per job.

    Column names come from the agreement (checked against the schema at load) and are checked
    again here against the schema and the table, then quoted; values are bound parameters.
    """

    def __init__(self, db_path: str | Path, table: str, schema: Schema,
                 key_column: str = "person_id") -> None:
        self._uri = Path(db_path).resolve().as_uri() + "?mode=ro"
        self._table, self._key, self._schema = table, key_column, schema
        conn = sqlite3.connect(self._uri, uri=True)
        try:
            self._columns = {r[0] for r in conn.execute(
                "SELECT name FROM pragma_table_info(?)", (table,))}
        finally:
            conn.close()
        if key_column not in self._columns:
            raise ValueError(f"table {table!r} lacks the key column {key_column!r}")

    def _column(self, name: str) -> str:
        if name not in self._schema.names or name not in self._columns:
            raise PermissionDenied("join set names a column outside the catalogue",
                                   reason=f"join column {name!r} not in schema or table")
        return '"' + name.replace('"', '""') + '"'

    def _read(self, where: Sequence[tuple[str, Any]], value_field: str | None
              ) -> list[tuple[str, float]]:
        cols = [self._column(k) for k, _ in where]
        value = self._column(value_field) if value_field else "0.0"
        sql = (f'SELECT "{self._key}", {value} FROM "{self._table}"'
               + (" WHERE " + " AND ".join(f"{c} = ?" for c in cols) if cols else ""))
        conn = sqlite3.connect(self._uri, uri=True)
        try:
            return [(pid, float(v or 0.0))
                    for pid, v in conn.execute(sql, [v for _, v in where])]
        finally:
            conn.close()

    async def members(self, where: Sequence[tuple[str, Any]],
                      value_field: str | None) -> list[tuple[str, float]]:
        return await asyncio.to_thread(self._read, where, value_field)


def open_join_set(partner: str, db_path: str | Path, schema: Schema) -> SqliteJoinSet | None:
    """The partner's join set over its SQLite database, or None when no table is known.

    The table comes from the partner's plug-in (``table``) or its ``source.TABLE``.
    """
    table = None
    try:
        from connectors import registry

        table = getattr(registry.plugin(partner), "table", None)  # type: ignore[attr-defined]
    except (AttributeError, ValueError, ImportError):
        pass
    if table is None:
        try:
            module = importlib.import_module(f"connectors.{partner.replace('-', '_')}.source")
            table = module.TABLE
        except (ImportError, AttributeError):
            return None
    return SqliteJoinSet(db_path, table, schema)


# ---------------------------------------------------------------------------- the service

class PartnerJoinService(join_pb2_grpc.PartnerJoinServiceServicer):
    """One partner's join endpoint; the pool is started on the first job and reused."""

    def __init__(self, partner: str, join_set: JoinSet, policies: PolicySet,
                 verifier: SpecVerifier, *, today: Callable[[], date] = date.today,
                 workers: int | None = None) -> None:
        self.partner, self.join_set, self.policies = partner, join_set, policies
        self.verifier, self._today, self._workers = verifier, today, workers
        self._pool: PsiPool | None = None

    @property
    def pool(self) -> PsiPool:
        if self._pool is None:
            self._pool = PsiPool(self._workers)
        return self._pool

    def _pool_for(self, work: int) -> PsiPool | None:
        """The pool for large jobs; small ones run in a thread (no worker start-up)."""
        return self.pool if work >= POOL_THRESHOLD else None

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.close)

    def _check(self, spec: connector_pb2.ReleaseSpec) -> tuple[Agreement, join_pb2.JoinParams,
                                                                  str | None, int]:
        if spec.operation != "join":
            raise PermissionDenied("this endpoint takes join specs only",
                                   reason=f"spec for operation {spec.operation!r} sent to join")
        if spec.partner != self.partner:
            raise PermissionDenied("spec is for another partner", reason="spec partner mismatch")
        params = join_pb2.JoinParams()
        try:
            params.ParseFromString(spec.operation_spec)
        except DecodeError:
            raise PermissionDenied("join parameters unreadable",
                                   reason="operation_spec does not parse") from None
        try:
            agreement = self.policies.agreement(spec.agreement.id)
        except NotFound:
            raise PermissionDenied("no such agreement at this partner",
                                   reason="spec names an agreement unknown here") from None
        mode, output = MODES.get(params.mode, "?"), OUTPUTS.get(params.output, "?")
        problems = check_spec_against(
            agreement, org=spec.requester_org, purpose=spec.purpose, fields={},
            today=self._today(), content_hash=spec.agreement.content_hash,
            subject_count=params.requester_count)
        if agreement.partner != self.partner or agreement.version != spec.agreement.version:
            problems.append("agreement differs from this partner's copy")
        problems += join_problems(agreement, mode, output)
        value_field, min_k = None, 0
        if output == "intersection-sum" and not problems:
            found = sum_grant(agreement, params.value_field)
            if isinstance(found, str):
                problems.append(found)
            else:
                value_field, min_k = found
                if params.min_count < min_k:
                    problems.append(f"min_count: got {params.min_count}, want at least {min_k}")
        if not 1 <= params.requester_count <= MAX_JOIN_ITEMS:
            problems.append(f"requester_count: got {params.requester_count}, "
                            f"want 1..{MAX_JOIN_ITEMS}")
        if problems:
            raise PermissionDenied("join spec is wider than the agreement",
                                   reason="; ".join(problems))
        return agreement, params, value_field, min_k

    @stream_rpc
    async def PartnerJoin(self, request_iterator: AsyncIterator[join_pb2.PartnerJoinRequest],
                          context: grpc.aio.ServicerContext, rid: str) -> None:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("kind") != "spec":
            raise InvalidArgument(FieldViolation("spec", "missing: a join opens with its spec"))
        spec = self.verifier.verify(first.spec)
        agreement, params, value_field, _ = self._check(spec)
        assert agreement.join is not None
        members = await self.join_set.members(agreement.join.where, value_field)
        totals: dict[str, float] = {}
        for pid, value in members:
            totals[pid] = totals.get(pid, 0.0) + value
        if len(totals) > MAX_JOIN_ITEMS:
            raise FailedPrecondition("the partner's set is larger than one job allows",
                                     reason=f"partner set {len(totals)} > {MAX_JOIN_ITEMS}")
        pairs = shuffle(list(totals.items()))
        lock = asyncio.Lock()

        async def write(msg: join_pb2.PartnerJoinResponse) -> None:
            async with lock:
                await context.write(msg)

        log.info("join_accepted", request_id=spec.request_id, mode=MODES[params.mode],
                 output=OUTPUTS[params.output], requester=params.requester_count,
                 partner=len(pairs))
        if params.mode == join_pb2.JOIN_MODE_KEYED_HASH:
            await self._keyed(params, pairs, write)
        else:
            await self._psi(params, pairs, requests, write)

    async def _keyed(self, params: join_pb2.JoinParams, pairs: list[tuple[str, float]],
                     write: Callable[[join_pb2.PartnerJoinResponse], Awaitable[None]]) -> None:
        job, public = KeyedJob.start()
        key = job.derive(params.keyed_public_key)
        await write(join_pb2.PartnerJoinResponse(accepted=join_pb2.PartnerAccepted(
            partner_count=len(pairs), keyed_public_key=public)))
        items = [item_bytes(pid) for pid, _ in pairs]
        pool = self._pool_for(len(items))
        offset = 0

        async def emit(packed: bytes) -> None:
            nonlocal offset
            await write(join_pb2.PartnerJoinResponse(partner_points=join_pb2.PointChunk(
                offset=offset, packed=packed)))
            offset += len(packed) // POINT

        chunks = [items[i:i + CHUNK_ITEMS] for i in range(0, len(items), CHUNK_ITEMS)]
        def mac(chunk: list[bytes]) -> bytes:
            return pool._submit(hmac_packed, key, chunk).result() if pool else \
                hmac_packed(key, chunk)

        await pipelined([functools.partial(mac, c) for c in chunks], emit)
        await write(join_pb2.PartnerJoinResponse(done=join_pb2.PartnerDone(
            partner_point_count=offset)))

    async def _psi(self, params: join_pb2.JoinParams, pairs: list[tuple[str, float]],
                   requests: AsyncIterator[join_pb2.PartnerJoinRequest],
                   write: Callable[[join_pb2.PartnerJoinResponse], Awaitable[None]]) -> None:
        ctx = None
        if params.output == join_pb2.JOIN_OUTPUT_INTERSECTION_SUM:
            ctx = await asyncio.to_thread(PublicContext.load, params.he_public)
            if ctx.scheme is not Scheme.CKKS or ctx.can_sum:
                raise PrivacyError("HE public material: want CKKS public material without "
                                   "Galois keys")
        key, pool = PsiKey.generate(), self._pool_for(len(pairs) + params.requester_count)
        await write(join_pb2.PartnerJoinResponse(accepted=join_pb2.PartnerAccepted(
            partner_count=len(pairs))))
        in_order = params.output == join_pb2.JOIN_OUTPUT_MEMBERSHIP
        own_done = [0]

        async def emit_own(points: list[bytes]) -> None:
            await write(join_pb2.PartnerJoinResponse(partner_points=chunk_of(own_done[0], points)))
            own_done[0] += len(points)

        async def own() -> None:
            ids = [item_bytes(pid) for pid, _ in pairs]
            await pipelined([functools.partial(hash_and_blind, key, ids[i:i + CHUNK_ITEMS], pool)
                             for i in range(0, len(ids), CHUNK_ITEMS)], emit_own)
            if ctx is not None and pairs:
                values = [v for _, v in pairs]
                for data in await asyncio.to_thread(encrypt_column, ctx, values):
                    for piece in byte_chunks(data):
                        await write(join_pb2.PartnerJoinResponse(ciphertext=piece))

        theirs: list[bytes] = []  # kept only when they must be shuffled before leaving
        received, sent = [0], [0]

        async def emit_double(points: list[bytes]) -> None:
            if in_order:
                await write(join_pb2.PartnerJoinResponse(
                    double_blinded=chunk_of(sent[0], points)))
            else:
                theirs.extend(points)
            sent[0] += len(points)

        async def incoming() -> AsyncIterator[Callable[[], Any]]:
            async for msg in requests:
                kind = msg.WhichOneof("kind")
                if kind == "end":
                    return
                if kind != "items":
                    raise InvalidArgument(FieldViolation("kind", f"got {kind}, want items"))
                points = split(msg.items.packed)
                if msg.items.offset != received[0] or len(points) > MAX_CHUNK_ITEMS:
                    raise InvalidArgument(FieldViolation("items.offset", "chunks out of order "
                                                         "or too large"))
                received[0] += len(points)
                if received[0] > params.requester_count:
                    raise InvalidArgument(FieldViolation("items", "more items than announced"))
                yield functools.partial(blind, key, points, pool)

        own_task = asyncio.ensure_future(own())
        try:
            await pipelined(incoming(), emit_double)
            if received[0] != params.requester_count:
                raise InvalidArgument(FieldViolation(
                    "items", f"got {received[0]} items, want {params.requester_count}"))
            if not in_order:
                shuffled = shuffle(theirs)
                for i in range(0, len(shuffled), CHUNK_ITEMS):
                    await write(join_pb2.PartnerJoinResponse(
                        double_blinded=chunk_of(i, shuffled[i:i + CHUNK_ITEMS])))
            await own_task
        finally:
            own_task.cancel()
        ciphertexts = -(-len(pairs) // 4096) if ctx is not None and pairs else 0
        await write(join_pb2.PartnerJoinResponse(done=join_pb2.PartnerDone(
            double_blinded_count=received[0], partner_point_count=own_done[0],
            ciphertext_count=ciphertexts)))
